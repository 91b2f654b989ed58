//! Dify document names derived from page URLs.
//!
//! The name is the only key Dify lets a client choose: a create-by-text with
//! the name of an enabled document replaces that document in place. Crash
//! safety and state recovery both rest on that rule (see [`crate::dify_sink`]),
//! so a name must be a pure function of the URL, and two URLs must never share
//! one.
//!
//! Plain `https` URLs without query, fragment, credentials or percent escapes
//! get the readable form `host[:port]/path`, which is injective on its own: a
//! host cannot contain `/`. Every other URL (another scheme, a query, escapes,
//! or a readable form over [`MAX_NAME_CHARS`]) gets a readable prefix followed
//! by [`HASH_SEPARATOR`] and a 64-bit BLAKE3 hash of the full URL. The
//! separator holds a space, which the URL serializer always escapes, so a
//! hashed name can never equal a plain one, and hashed names differ by their
//! hash.

use url::Url;

/// Dify silently truncates document names on create to this many characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Separates the readable prefix from the URL hash in hashed names.
pub const HASH_SEPARATOR: &str = " #";

/// Hex digits of the URL hash appended to hashed names (64 bits).
const HASH_HEX_CHARS: usize = 16;

/// Derives the Dify document name of a page from its identity URL.
///
/// The result is at most [`MAX_NAME_CHARS`] characters, the same for the same
/// URL on every run and machine, and different for different URLs.
pub fn document_name(url: &Url) -> String {
    let readable = readable_form(url);
    if is_plain(url) && readable.chars().count() <= MAX_NAME_CHARS {
        return readable;
    }

    let keep = MAX_NAME_CHARS - HASH_SEPARATOR.len() - HASH_HEX_CHARS;
    let mut name: String = readable.chars().take(keep).collect();
    name.push_str(HASH_SEPARATOR);
    name.push_str(&url_hash(url));
    name
}

/// Whether a name has the hashed form, i.e. was not readable on its own.
pub fn is_hashed(name: &str) -> bool {
    name.len() > HASH_SEPARATOR.len() + HASH_HEX_CHARS
        && name.is_char_boundary(name.len() - HASH_HEX_CHARS - HASH_SEPARATOR.len())
        && name[..name.len() - HASH_HEX_CHARS].ends_with(HASH_SEPARATOR)
}

/// A URL whose `host/path` form alone identifies it.
fn is_plain(url: &Url) -> bool {
    url.scheme() == "https"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && url.host_str().is_some()
        && !url.path().contains('%')
}

/// `host[:port]/path?query`, with the scheme kept when it is not `https` and
/// percent escapes decoded for reading (hashed names only, see [`is_plain`]).
fn readable_form(url: &Url) -> String {
    let mut out = String::new();
    if url.scheme() != "https" {
        out.push_str(url.scheme());
        out.push_str("://");
    }
    if let Some(host) = url.host_str() {
        out.push_str(host);
    }
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(&percent_decode_lossy(url.path()));
    if let Some(query) = url.query() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Decodes `%XX` escapes; invalid UTF-8 becomes U+FFFD. Only used for names
/// that carry a hash, so the lossy step cannot merge two names.
fn percent_decode_lossy(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The first 64 bits of the BLAKE3 hash of the serialized URL, as hex.
fn url_hash(url: &Url) -> String {
    let hex = blake3::hash(url.as_str().as_bytes()).to_hex();
    hex[..HASH_HEX_CHARS].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn name(url: &str) -> String {
        document_name(&Url::parse(url).unwrap())
    }

    #[test]
    fn plain_https_urls_are_host_and_path() {
        assert_eq!(
            name("https://docs.example.com/guide/install"),
            "docs.example.com/guide/install"
        );
        assert_eq!(name("https://docs.example.com/"), "docs.example.com/");
        assert_eq!(name("https://docs.example.com:8443/a"), "docs.example.com:8443/a");
    }

    #[test]
    fn trailing_slash_and_scheme_stay_distinct() {
        let names =
            [name("https://a.example/x"), name("https://a.example/x/"), name("http://a.example/x")];
        assert_ne!(names[0], names[1]);
        assert_ne!(names[0], names[2]);
        assert!(names[2].starts_with("http://a.example/x"));
        assert!(is_hashed(&names[2]));
    }

    #[test]
    fn queries_and_escapes_get_a_hash() {
        let query = name("https://a.example/search?q=rust");
        assert!(query.starts_with("a.example/search?q=rust #"));
        assert!(is_hashed(&query));

        let escaped = name("https://a.example/caf%C3%A9");
        assert!(escaped.starts_with("a.example/café #"));
        assert_eq!(escaped, name("https://a.example/café"), "the parser escapes é itself");
    }

    #[test]
    fn long_urls_are_cut_and_hashed() {
        let long = format!("https://a.example/{}", "é".repeat(300));
        let cut = name(&long);
        assert_eq!(cut.chars().count(), MAX_NAME_CHARS);
        assert!(is_hashed(&cut));

        let exact = format!("https://a.example/{}", "x".repeat(MAX_NAME_CHARS - 10));
        assert_eq!(name(&exact).chars().count(), MAX_NAME_CHARS);
        assert!(!is_hashed(&name(&exact)));
    }

    #[test]
    fn a_plain_path_that_looks_hashed_cannot_collide() {
        let hashed = name("http://a.example/x");
        let suffix = &hashed[hashed.len() - HASH_HEX_CHARS..];
        let lookalike = name(&format!("https://a.example/x%20#{suffix}"));
        assert_ne!(hashed, lookalike);
    }

    fn url_strategy() -> impl Strategy<Value = Url> {
        let scheme = prop_oneof![Just("https"), Just("http")];
        let host = prop_oneof![Just("a.example"), Just("b.example"), Just("a.example:8443")];
        let segment = "[a-zA-Z0-9_.~%é -]{0,40}";
        let path = prop::collection::vec(segment, 0..8);
        let query = prop::option::of("[a-z0-9=&%]{0,30}");
        (scheme, host, path, query, any::<bool>()).prop_filter_map(
            "unparsable url",
            |(scheme, host, path, query, slash)| {
                let mut text = format!("{scheme}://{host}/{}", path.join("/"));
                if slash {
                    text.push('/');
                }
                if let Some(q) = query {
                    text.push('?');
                    text.push_str(&q);
                }
                Url::parse(&text).ok()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn names_are_short_and_deterministic(url in url_strategy()) {
            let first = document_name(&url);
            prop_assert!(first.chars().count() <= MAX_NAME_CHARS);
            prop_assert_eq!(&first, &document_name(&url.clone()));
        }

        #[test]
        fn distinct_urls_get_distinct_names(urls in prop::collection::vec(url_strategy(), 2..60)) {
            let mut seen: HashMap<String, String> = HashMap::new();
            for url in urls {
                let name = document_name(&url);
                if let Some(other) = seen.insert(name.clone(), url.to_string()) {
                    prop_assert_eq!(other, url.to_string(), "name {} shared", name);
                }
            }
        }
    }
}
