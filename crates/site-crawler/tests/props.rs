//! Property tests: normalization is idempotent, and no parser panics on
//! arbitrary input.

use proptest::prelude::*;
use site_crawler::{charset, links, robots::RobotsRules, sitemap, url_norm};
use url::Url;

/// URL-ish strings: a scheme, a host, and a path/query/fragment soup with
/// escapes, unicode and separators.
fn url_strategy() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![Just("http"), Just("https"), Just("HTTP"), Just("ftp")];
    let host = prop_oneof![
        Just("Example.COM"),
        Just("xn--bcher-kva.example"),
        Just("127.0.0.1:80"),
        Just("[::1]:8080"),
        Just("bücher.de")
    ];
    let tail = proptest::string::string_regex(r"(/|\.\./|\./|%[0-9a-fA-F]{2}|%[g-z]|[a-zA-Z0-9~_.-]|é|日|\?|&|=|utm_source|gclid|#| ){0,40}").unwrap();
    (scheme, host, tail).prop_map(|(scheme, host, tail)| format!("{scheme}://{host}/{tail}"))
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
