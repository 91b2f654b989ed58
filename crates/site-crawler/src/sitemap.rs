//! Sitemap parsing: XML urlsets, sitemap indexes, text sitemaps, gzip.
//!
//! Parsing is `sitemapo`'s job (streaming quick-xml, its own 50 MiB and
//! 50,000-record limits); this module adds gzip detection by magic bytes
//! (servers send `.xml.gz` with every content type imaginable) and turns
//! records into plain values the crawler needs. It is synchronous and
//! CPU-bound, so the crawler calls it on the blocking pool.

use std::io::{BufRead, BufReader};

use flate2::bufread::GzDecoder;
use url::Url;

/// What one sitemap file lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SitemapContent {
    /// Pages with their `<lastmod>` (RFC 3339), in file order.
    pub pages: Vec<(Url, Option<String>)>,
    /// Nested sitemaps of a sitemap index.
    pub sitemaps: Vec<Url>,
    /// Why parsing stopped early, if it did; records before the problem
    /// are kept.
    pub error: Option<String>,
}

/// Parses a sitemap body, gzipped or not, in any format `sitemapo` reads.
/// Never panics; malformed input yields what could be read plus `error`.
#[must_use]
pub fn parse(body: &[u8]) -> SitemapContent {
    if body.starts_with(&[0x1f, 0x8b]) {
        parse_reader(BufReader::new(GzDecoder::new(body)))
    } else {
        parse_reader(body)
    }
}

fn parse_reader<R: BufRead>(reader: R) -> SitemapContent {
    let mut content = SitemapContent::default();
    for record in sitemapo::Parser::new(reader) {
        match record {
            Ok(sitemapo::Record::Entry(entry)) => {
                let lastmod = entry.modified.map(|time| time.to_string());
                content.pages.push((entry.location, lastmod));
            }
            Ok(sitemapo::Record::Sitemap(sitemap)) => content.sitemaps.push(sitemap.location),
            Err(error) => content.error = Some(error.to_string()),
        }
    }
    content
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    const URLSET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
        <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
          <url><loc>https://example.com/a</loc><lastmod>2026-11-02</lastmod></url>
          <url><loc>https://example.com/b</loc></url>
          <url><loc>not a url</loc></url>
        </urlset>"#;

    #[test]
    fn urlset_with_lastmod() {
        let content = parse(URLSET.as_bytes());
        assert_eq!(content.pages.len(), 2);
        assert_eq!(content.pages[0].1.as_deref(), Some("2026-11-02T00:00:00Z"));
        assert_eq!(content.pages[1], (Url::parse("https://example.com/b").unwrap(), None));
        assert!(content.error.is_none());
    }

    #[test]
    fn index_lists_nested_sitemaps() {
        let xml = r#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sitemap><loc>https://example.com/s1.xml</loc></sitemap>
            <sitemap><loc>https://example.com/s2.xml.gz</loc></sitemap></sitemapindex>"#;
        let content = parse(xml.as_bytes());
        assert_eq!(content.sitemaps.len(), 2);
        assert!(content.pages.is_empty());
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(URLSET.as_bytes()).unwrap();
        let content = parse(&encoder.finish().unwrap());
        assert_eq!(content.pages.len(), 2);
    }

    #[test]
    fn text_sitemap() {
        let content = parse(b"https://example.com/x\n\n  https://example.com/y  \nnonsense\n");
        let urls: Vec<_> = content.pages.iter().map(|(url, _)| url.as_str()).collect();
        assert_eq!(urls, ["https://example.com/x", "https://example.com/y"]);
    }

    #[test]
    fn malformed_xml_keeps_records_before_the_error() {
        let xml = r#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <url><loc>https://example.com/a</loc></url><url><loc>https://exa</wrong></urlset>"#;
        let content = parse(xml.as_bytes());
        assert_eq!(content.pages.len(), 1);
        assert!(content.error.is_some());
        assert!(parse(&[0x1f, 0x8b, 0, 1, 2]).pages.is_empty());
    }
}
