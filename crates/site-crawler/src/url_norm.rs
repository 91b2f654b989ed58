//! URL normalization: one spelling per page, so dedup is a set lookup.
//!
//! The WHATWG parser in `url` already lowercases the scheme and host, drops
//! default ports, resolves dot segments and encodes what must be encoded.
//! On top of that [`normalize`] drops the fragment and any credentials,
//! rewrites percent-escapes to one form (unreserved characters decoded,
//! hex digits upper case) and removes tracking parameters. Query order and
//! trailing slashes are kept: servers may treat them as meaningful, and a
//! wrong merge loses a page while a missed merge only costs a fetch, which
//! `<link rel=canonical>` usually repairs anyway.

use url::Url;

/// Query parameters that only track the visitor, matched case-insensitively.
const TRACKING_PARAMS: &[&str] = &[
    "gclid",
    "gclsrc",
    "dclid",
    "fbclid",
    "msclkid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "vero_id",
    "oly_anon_id",
    "oly_enc_id",
    "wickedid",
    "twclid",
    "ttclid",
    "srsltid",
];

/// Returns the normalized form of an `http(s)` URL with a host, or `None`
/// for any other URL. Idempotent: normalizing twice changes nothing.
///
/// ```
/// use site_crawler::url_norm::normalize;
/// use url::Url;
///
/// let url = Url::parse("HTTP://Example.COM:80/a/%7euser/../b?utm_source=x&q=1#top").unwrap();
/// assert_eq!(normalize(&url).unwrap().as_str(), "http://example.com/a/b?q=1");
/// ```
#[must_use]
pub fn normalize(url: &Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }

    let mut out = url.clone();
    out.set_fragment(None);
    // Setting empty credentials only fails for URLs that cannot have them,
    // and http(s) URLs with a host always can.
    let _ = out.set_username("");
    let _ = out.set_password(None);

    let path = normalize_escapes(out.path());
    if path != out.path() {
        out.set_path(&path);
    }

    let query = out.query().map(clean_query);
    out.set_query(query.as_deref().filter(|query| !query.is_empty()));
    Some(out)
}

/// Resolves a link found in a page against the page's base URL and
/// normalizes it. Returns `None` for links that cannot be fetched
/// (`javascript:`, `mailto:`, `data:`, `tel:` and any other non-http
/// scheme) and for unparsable ones.
#[must_use]
pub fn resolve(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }

    normalize(&base.join(href).ok()?)
}

/// Whether a query parameter name is a known tracking parameter.
#[must_use]
pub fn is_tracking_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_") || TRACKING_PARAMS.contains(&name.as_str())
}

/// Drops tracking parameters and normalizes escapes, keeping the order.
fn clean_query(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            !is_tracking_param(&normalize_escapes(name))
        })
        .map(normalize_escapes)
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes escapes of unreserved characters (RFC 3986 section 2.3) and
/// upper-cases the hex digits of the others. Malformed escapes are kept.
fn normalize_escapes(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some((hex_value(*bytes.get(i + 1)?)?, hex_value(*bytes.get(i + 2)?)?)))
            .flatten();
        match escaped {
            Some((high, low)) => {
                push_escape(&mut out, high << 4 | low);
                i += 3;
            }
            None => {
                let len = utf8_len(bytes[i]);
                out.push_str(&input[i..(i + len).min(input.len())]);
                i += len;
            }
        }
    }
    out
}

fn push_escape(out: &mut String, byte: u8) {
    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
        out.push(char::from(byte));
    } else {
        out.push_str(&format!("%{byte:02X}"));
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok())
}

/// Length of the UTF-8 sequence starting with `lead`, so slicing stays on
/// character boundaries (the input is a `&str`, so it is well formed).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(input: &str) -> String {
        normalize(&Url::parse(input).unwrap()).unwrap().to_string()
    }

    #[test]
    fn lowercases_scheme_and_host_and_drops_default_port() {
        assert_eq!(norm("HTTPS://WWW.Example.Com:443/Path"), "https://www.example.com/Path");
        assert_eq!(norm("http://example.com:8080/"), "http://example.com:8080/");
    }

    #[test]
    fn drops_fragment_and_credentials() {
        assert_eq!(norm("https://user:pw@example.com/a#frag"), "https://example.com/a");
    }

    #[test]
    fn decodes_unreserved_and_uppercases_hex() {
        assert_eq!(
            norm("https://example.com/%7Euser/%41%2f%e2%82%ac"),
            "https://example.com/~user/A%2F%E2%82%AC"
        );
        assert_eq!(norm("https://example.com/?q=%7e%2a"), "https://example.com/?q=~%2A");
    }

    #[test]
    fn keeps_malformed_escapes() {
        assert_eq!(norm("https://example.com/100%25/%zz"), "https://example.com/100%25/%zz");
    }

    #[test]
    fn removes_tracking_params_and_empty_query() {
        assert_eq!(
            norm("https://example.com/?utm_source=a&UTM_Medium=b&gclid=1&fbclid=2"),
            "https://example.com/"
        );
        assert_eq!(
            norm("https://example.com/p?b=2&mc_cid=x&a=1&mc_eid=y"),
            "https://example.com/p?b=2&a=1"
        );
        assert_eq!(norm("https://example.com/p?"), "https://example.com/p");
    }

    #[test]
    fn resolves_dot_segments_and_empty_path() {
        assert_eq!(norm("https://example.com"), "https://example.com/");
        assert_eq!(norm("https://example.com/a/./b/../c"), "https://example.com/a/c");
    }

    #[test]
    fn rejects_non_http_schemes() {
        for url in [
            "mailto:a@example.com",
            "javascript:alert(1)",
            "data:text/html,hi",
            "tel:+123",
            "ftp://example.com/",
        ] {
            assert!(normalize(&Url::parse(url).unwrap()).is_none(), "{url}");
        }
    }

    #[test]
    fn resolve_joins_relative_links_and_skips_unfetchable() {
        let base = Url::parse("https://example.com/docs/intro").unwrap();
        assert_eq!(
            resolve(&base, " guide?utm_campaign=x#h ").unwrap().as_str(),
            "https://example.com/docs/guide"
        );
        assert_eq!(
            resolve(&base, "//Other.example.com").unwrap().as_str(),
            "https://other.example.com/"
        );
        for href in ["javascript:void(0)", "mailto:x@y", "data:,x", "tel:1", "", "   "] {
            assert!(resolve(&base, href).is_none(), "{href}");
        }
    }
}
