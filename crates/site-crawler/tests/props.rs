//! Property tests: normalization is idempotent, and no parser panics on
//! arbitrary input.

use proptest::prelude::*;
use site_crawler::{charset, links, robots::RobotsRules, sitemap, url_norm};
use url::Url;

/// URL-ish strings: a scheme, optional credentials, a fixed or random
/// host, an optional port, and a path/query/fragment soup with escapes,
/// unicode and separators.
fn url_strategy() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![Just("http"), Just("https"), Just("HTTP"), Just("ftp")];
    let userinfo =
        prop_oneof![Just(String::new()), "[a-z]{1,5}@", "[a-z]{1,5}:[a-zA-Z0-9%]{0,6}@",];
    let host = prop_oneof![
        Just("Example.COM".to_owned()),
        Just("xn--bcher-kva.example".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("bücher.de".to_owned()),
        "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z0-9-]{1,8}){0,3}",
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":80".to_owned()),
        Just(":443".to_owned()),
        (0u32..70_000).prop_map(|port| format!(":{port}")),
    ];
    let tail = proptest::string::string_regex(r"(/|\.\./|\./|%[0-9a-fA-F]{2}|%[g-z]|[a-zA-Z0-9~_.-]|é|日|\?|&|=|utm_source|gclid|#| ){0,40}").unwrap();
    (scheme, userinfo, host, port, tail).prop_map(|(scheme, userinfo, host, port, tail)| {
        format!("{scheme}://{userinfo}{host}{port}/{tail}")
    })
}

/// A plain spelling of an http(s) URL and a variant that must normalize
/// to the same URL: host case changed, the default port spelt out,
/// unreserved characters percent-encoded and escapes in lower-case hex.
fn equivalent_spellings() -> impl Strategy<Value = (String, String)> {
    let https = any::<bool>();
    let host = "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,6}){0,2}";
    // Unreserved characters, and escapes that must stay escaped.
    let piece = prop_oneof![
        "[a-zA-Z0-9._~-]".prop_map(|c| (c.clone(), c)),
        Just(("%2F".to_owned(), "%2f".to_owned())),
        Just(("%20".to_owned(), "%20".to_owned())),
        Just(("%E2%82%AC".to_owned(), "%e2%82%ac".to_owned())),
    ];
    let segment = proptest::collection::vec((piece, any::<bool>()), 1..6);
    let path = proptest::collection::vec(segment, 0..4);
    let query = proptest::option::of("[a-z]{1,4}=[a-z0-9~]{0,4}");
    (https, host, path, query, any::<bool>()).prop_map(|(https, host, path, query, upper)| {
        let scheme = if https { "https" } else { "http" };
        let port = if https { ":443" } else { ":80" };
        let mut plain = String::new();
        let mut variant = String::new();
        for segment in path {
            plain.push('/');
            variant.push('/');
            for ((plain_piece, variant_piece), encode) in segment {
                plain.push_str(&plain_piece);
                let single = plain_piece.len() == 1;
                if single && encode {
                    variant.push_str(&format!("%{:02x}", plain_piece.as_bytes()[0]));
                } else {
                    variant.push_str(&variant_piece);
                }
            }
        }
        let variant_host = if upper { host.to_uppercase() } else { host.clone() };
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        let variant_query = query.replace('~', "%7e");
        (
            format!("{scheme}://{host}{plain}{query}"),
            format!("{scheme}://{variant_host}{port}{variant}{variant_query}"),
        )
    })
}

proptest! {
    #[test]
    fn normalize_is_idempotent(input in url_strategy()) {
        if let Ok(url) = Url::parse(&input)
            && let Some(once) = url_norm::normalize(&url)
        {
            let twice = url_norm::normalize(&once);
            prop_assert_eq!(Some(&once), twice.as_ref());
            prop_assert!(once.fragment().is_none());
        }
    }

    #[test]
    fn equivalent_spellings_normalize_to_one_url((plain, variant) in equivalent_spellings()) {
        let plain_url = Url::parse(&plain).unwrap();
        let variant_url = Url::parse(&variant).unwrap();
        prop_assert_eq!(url_norm::normalize(&plain_url), url_norm::normalize(&variant_url), "{} vs {}", plain, variant);
    }

    #[test]
    fn gzipped_sitemaps_read_like_plain_ones(paths in proptest::collection::vec("[a-z0-9/]{0,12}", 0..20)) {
        let entries: Vec<(String, Option<String>)> =
            paths.iter().map(|path| (format!("https://example.com/{path}"), None)).collect();
        let xml = test_support::site::sitemap_xml(&entries);
        let plain = sitemap::parse(xml.as_bytes());
        let gzipped = sitemap::parse(&test_support::site::sitemap_gz(&xml));
        prop_assert_eq!(&plain, &gzipped);
        prop_assert_eq!(plain.pages.len(), entries.len());
    }

    #[test]
    fn gzipped_garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = sitemap::parse(&test_support::site::gzip(&body));
    }

    #[test]
    fn normalize_and_resolve_never_panic(base in url_strategy(), href in any::<String>()) {
        if let Ok(base) = Url::parse(&base) {
            let _ = url_norm::normalize(&base);
            if let Some(resolved) = url_norm::resolve(&base, &href) {
                prop_assert!(matches!(resolved.scheme(), "http" | "https"));
            }
        }
    }

    #[test]
    fn robots_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048), path in "/[ -~]{0,30}") {
        let rules = RobotsRules::parse(&body, "dify-crawl/1.0");
        if let Ok(url) = Url::parse(&format!("http://example.com{path}")) {
            let _ = rules.is_allowed(&url);
        }
        let _ = rules.crawl_delay();
    }

    #[test]
    fn robots_text_parsing_never_panics(body in "((User-agent|Allow|Disallow|Crawl-delay|Sitemap): ?[ -~]{0,20}\n){0,20}") {
        let rules = RobotsRules::parse(body.as_bytes(), "dify-crawl");
        let _ = rules.is_allowed(&Url::parse("http://example.com/a/b?c").unwrap());
    }

    #[test]
    fn sitemap_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = sitemap::parse(&body);
    }

    #[test]
    fn sitemap_xml_parsing_never_panics(body in "(<urlset>|<sitemapindex>|<url>|</url>|<loc>|</loc>|<lastmod>|</lastmod>|<sitemap>|https://e.com/[a-z]{0,5}|20[0-9]{2}-[0-9]{2}-[0-9]{2}|&amp;|<!--|\\]\\]>| ){0,40}") {
        let _ = sitemap::parse(body.as_bytes());
    }

    #[test]
    fn link_extraction_never_panics(html in "(<a href=\"[ -~]{0,15}\">|<base href=\"[ -~]{0,15}\">|<link rel=canonical href=[a-z:/]{0,10}>|<meta name=robots content=[a-z,]{0,12}>|<area href=x>|</a>|<p>|text|&amp;|<!--|-->|<script>|</script>){0,30}") {
        let base = Url::parse("https://example.com/dir/page").unwrap();
        let found = links::extract(&html, &base);
        prop_assert!(found.links.iter().all(|url| matches!(url.scheme(), "http" | "https")));
    }

    #[test]
    fn link_extraction_of_arbitrary_text_never_panics(html in any::<String>()) {
        let _ = links::extract(&html, &Url::parse("https://example.com/").unwrap());
    }

    #[test]
    fn charset_decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048), header in proptest::option::of("text/html; charset=[a-zA-Z0-9_-]{0,12}")) {
        if let Ok((text, _)) = charset::decode(&body, header.as_deref()) {
            prop_assert!(text.len() < body.len() * 4 + 16);
        }
    }
}
