//! Errors raised before a crawl starts.
//!
//! Everything that can go wrong with one page during a crawl is reported as
//! an event ([`CrawlEvent::Failed`](crate::CrawlEvent::Failed) or
//! [`CrawlEvent::Skipped`](crate::CrawlEvent::Skipped)), never as an error,
//! so a run always completes. Only configuration mistakes stop a crawl, and
//! they are caught by [`Crawler::new`](crate::Crawler::new) before any
//! request is sent.

/// A configuration the crawler cannot run with.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// No start URL was given.
    #[error("no start url given")]
    NoStartUrls,
    /// A start URL does not parse.
    #[error("invalid start url `{url}`")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// A start URL is not `http` or `https`, or has no host.
    #[error("unsupported start url `{url}`: only http and https urls with a host can be crawled")]
    UnsupportedUrl {
        /// The URL as given.
        url: String,
    },
    /// An include or exclude pattern is not a valid regex.
    #[error("invalid {which} pattern `{pattern}`")]
    InvalidPattern {
        /// `include` or `exclude`.
        which: &'static str,
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: regex::Error,
    },
    /// An extra host is not a valid host name.
    #[error("invalid extra host `{host}`")]
    InvalidHost {
        /// The host as given.
        host: String,
    },
    /// A numeric setting is out of range.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The field of `CrawlConfig`.
        name: &'static str,
        /// What is accepted.
        reason: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("could not build the http client")]
    Client(#[source] reqwest::Error),
}
