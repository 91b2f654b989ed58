//! Keeps Dify knowledge bases in step with crawled websites.
//!
//! `kb-sync` joins the crawler ([`site_crawler`]), the extractor
//! ([`page_extract`]) and the Dify client ([`dify_client`]) into one pipeline:
//! pages are routed to knowledge bases, compared with what the local state
//! store remembers, and written to Dify (or to a folder) with the fewest API
//! calls that keep both sides equal.
#![deny(missing_docs)]

pub mod chunking;
pub mod config;
pub mod dify_sink;
pub mod export;
pub mod naming;
pub mod page;
pub mod pipeline;
pub mod report;
pub mod route;
pub mod state;
