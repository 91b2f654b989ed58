//! A polite, fast web crawler that hands out HTML pages as events.
//!
//! The crawler knows nothing about what the pages are for: it discovers
//! URLs (start URLs, sitemaps, links), keeps to its scope, obeys
//! robots.txt, spaces its requests per host, fetches with one pooled
//! client, decodes every page to UTF-8 and sends one [`CrawlEvent`] per
//! URL through a bounded channel, so the consumer sets the pace.
//!
//! Module map:
//! - [`config`]: [`CrawlConfig`] and the `DEFAULT_*` constants.
//! - [`event`]: [`CrawlEvent`] and what it carries.
//! - [`url_norm`]: URL normalization, the basis of dedup.
//! - [`scope`], [`robots`], [`sitemap`], [`links`], [`charset`]: the pure
//!   pieces, public so they can be tested and reused.
//! - `crawler`, `task`, `fetch`, `host`, `frontier`, `seeds`: the
//!   machinery behind [`Crawler::run`].
//!
//! See [`Crawler`] for an example.
#![deny(missing_docs)]

pub mod charset;
pub mod config;
mod crawler;
pub mod error;
pub mod event;
mod fetch;
mod frontier;
mod host;
pub mod links;
pub mod robots;
pub mod scope;
mod seeds;
pub mod sitemap;
mod stats;
mod task;
pub mod url_norm;

pub use config::*;
pub use crawler::Crawler;
pub use error::CrawlError;
pub use event::{
    CrawlEvent, FailKind, FailedPage, FetchedPage, NotModified, SkipReason, SkippedPage,
};
pub use stats::CrawlStats;
pub use url::Url;
