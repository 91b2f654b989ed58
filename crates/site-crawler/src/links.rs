//! Link discovery in a fetched page.
//!
//! Uses `dom_query` (an html5ever tree, shared with the extractor) rather
//! than a hand-written scanner, so links inside comments, scripts or broken
//! markup are treated exactly as a browser would. The page is parsed once
//! for everything the crawler needs: `<base href>`, `a[href]`,
//! `area[href]`, `<link rel=canonical>` and `<meta name=robots>`.

use std::collections::HashSet;

use dom_query::Document;
use url::Url;

use crate::url_norm;

/// What a page tells the crawler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageLinks {
    /// Followable links, normalized, deduplicated, in document order.
    /// Empty when the page is `nofollow`. Not yet filtered by scope.
    pub links: Vec<Url>,
    /// The `<link rel=canonical>` target, normalized.
    pub canonical: Option<Url>,
    /// `<meta name=robots>` says `noindex` (or `none`).
    pub noindex: bool,
    /// `<meta name=robots>` says `nofollow` (or `none`).
    pub nofollow: bool,
}

/// Parses the page and collects its links, resolved against `<base href>`
/// when present (and `http(s)`), else against `page_url`. Links marked
/// `rel=nofollow` and unfetchable schemes (`javascript:`, `mailto:`,
/// `data:`, `tel:`) are left out. Never panics, whatever the input.
#[must_use]
pub fn extract(html: &str, page_url: &Url) -> PageLinks {
    let document = Document::from(html);
    let base = base_url(&document, page_url);
    let (noindex, nofollow) = meta_robots(&document);

    let canonical = document
        .try_select("link[rel][href]")
        .into_iter()
        .flat_map(|selection| selection.iter())
        .filter(|node| has_token(node.attr("rel").as_deref(), "canonical"))
        .find_map(|node| url_norm::resolve(&base, &node.attr("href")?));

    let links = if nofollow { Vec::new() } else { anchors(&document, &base) };
    PageLinks { links, canonical, noindex, nofollow }
}

/// Parses robots directives (`noindex`, `nofollow`, `none`) from a
/// comma-separated value, as in `<meta name=robots>` or `X-Robots-Tag`.
/// Returns `(noindex, nofollow)`.
#[must_use]
pub fn robots_directives(value: &str) -> (bool, bool) {
    let mut noindex = false;
    let mut nofollow = false;
    for token in value.split([',', ' ']).map(str::trim) {
        if token.eq_ignore_ascii_case("noindex") || token.eq_ignore_ascii_case("none") {
            noindex = true;
        }
        if token.eq_ignore_ascii_case("nofollow") || token.eq_ignore_ascii_case("none") {
            nofollow = true;
        }
    }
    (noindex, nofollow)
}

fn base_url(document: &Document, page_url: &Url) -> Url {
    document
        .try_select("base[href]")
        .and_then(|selection| selection.iter().next())
        .and_then(|node| page_url.join(node.attr("href")?.trim()).ok())
        .filter(|base| matches!(base.scheme(), "http" | "https"))
        .unwrap_or_else(|| page_url.clone())
}

fn meta_robots(document: &Document) -> (bool, bool) {
    let mut flags = (false, false);
    for node in
        document.try_select("meta[name][content]").iter().flat_map(|selection| selection.iter())
    {
        let is_robots =
            node.attr("name").is_some_and(|name| name.trim().eq_ignore_ascii_case("robots"));
        if let (true, Some(content)) = (is_robots, node.attr("content")) {
            let (noindex, nofollow) = robots_directives(&content);
            flags = (flags.0 || noindex, flags.1 || nofollow);
        }
    }
    flags
}

fn anchors(document: &Document, base: &Url) -> Vec<Url> {
    let mut seen = HashSet::new();
    document
        .try_select("a[href], area[href]")
        .into_iter()
        .flat_map(|selection| selection.iter())
        .filter(|node| !has_token(node.attr("rel").as_deref(), "nofollow"))
        .filter_map(|node| url_norm::resolve(base, &node.attr("href")?))
        .filter(|url| seen.insert(url.clone()))
        .collect()
}

fn has_token(list: Option<&str>, token: &str) -> bool {
    list.is_some_and(|list| {
        list.split_ascii_whitespace().any(|item| item.eq_ignore_ascii_case(token))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://example.com/docs/page.html").unwrap()
    }

    fn strings(links: &PageLinks) -> Vec<&str> {
        links.links.iter().map(Url::as_str).collect()
    }

    #[test]
    fn collects_anchor_and_area_links_deduplicated() {
        let html =
            r#"<a href="a">A</a><map><area href="/b"></map><a href="a#x">again</a><a>no href</a>"#;
        let links = extract(html, &page());
        assert_eq!(strings(&links), ["https://example.com/docs/a", "https://example.com/b"]);
    }

    #[test]
    fn skips_unfetchable_schemes_and_nofollow() {
        let html = r#"<a href="javascript:go()">j</a><a href="mailto:a@b">m</a><a href="data:text/html,x">d</a>
            <a href="tel:123">t</a><a rel="external NoFollow" href="/ads">ad</a><a href="/ok">ok</a>"#;
        assert_eq!(strings(&extract(html, &page())), ["https://example.com/ok"]);
    }

    #[test]
    fn honours_base_href() {
        let html = r#"<head><base href="https://example.com/other/"></head><a href="x">x</a>"#;
        assert_eq!(strings(&extract(html, &page())), ["https://example.com/other/x"]);
        let html = r#"<head><base href="javascript:void(0)"></head><a href="x">x</a>"#;
        assert_eq!(strings(&extract(html, &page())), ["https://example.com/docs/x"]);
    }

    #[test]
    fn finds_canonical_and_meta_robots() {
        let html = r#"<link rel="Canonical" href="/docs/page?utm_source=x"><meta name="ROBOTS" content="noindex, nofollow"><a href="/x">x</a>"#;
        let links = extract(html, &page());
        assert_eq!(links.canonical.unwrap().as_str(), "https://example.com/docs/page");
        assert!(links.noindex && links.nofollow);
        assert!(links.links.is_empty());
    }

    #[test]
    fn robots_directive_values() {
        assert_eq!(robots_directives("none"), (true, true));
        assert_eq!(robots_directives("index, follow"), (false, false));
        assert_eq!(robots_directives("NOINDEX"), (true, false));
    }
}
