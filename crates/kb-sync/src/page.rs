//! The unit of work that flows from extraction to the sinks.
//!
//! A [`PageRecord`] is built once per extracted page and then only read: the
//! router fills in the knowledge base, and every sink (Dify, folder export)
//! takes the same record, so they cannot disagree about a page's content or
//! its hash.

use time::OffsetDateTime;
use url::Url;

/// One extracted page, routed to a knowledge base and ready for a sink.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRecord {
    /// The page's identity: the normalized URL with canonical and redirects
    /// folded in. Document names and state rows are keyed on it.
    pub url: Url,
    /// The name of the knowledge base the router chose.
    pub knowledge_base: String,
    /// The page title, when the page states one.
    pub title: Option<String>,
    /// The page description (`<meta name="description">` or similar).
    pub description: Option<String>,
    /// The page language as a BCP 47 tag, when known.
    pub language: Option<String>,
    /// When the page says it was published (RFC 3339 text as found).
    pub published: Option<String>,
    /// When the page says it was last modified (RFC 3339 text as found).
    pub modified: Option<String>,
    /// The extracted main content as Markdown.
    pub markdown: String,
    /// Hex BLAKE3 hash of [`PageRecord::markdown`]; the change key.
    pub content_hash: String,
    /// Number of words in the Markdown.
    pub word_count: u64,
    /// The `ETag` the server sent with the page.
    pub etag: Option<String>,
    /// The `Last-Modified` header the server sent with the page.
    pub last_modified: Option<String>,
    /// The `lastmod` of the page in a sitemap, when one listed it.
    pub sitemap_lastmod: Option<String>,
    /// When the page was fetched.
    pub crawled_at: OffsetDateTime,
    /// The page's links as the crawler kept them
    /// ([`FetchedPage::links`](site_crawler::FetchedPage::links)), as URL
    /// text. Sinks store them beside the validators: when the page answers
    /// 304 on a later run, the crawler follows these instead.
    pub links: Vec<String>,
}

impl PageRecord {
    /// Hashes Markdown the way [`PageRecord::content_hash`] expects.
    pub fn hash_content(markdown: &str) -> String {
        blake3::hash(markdown.as_bytes()).to_hex().to_string()
    }

    /// The host of the page URL, or an empty string for host-less URLs.
    pub fn domain(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}
