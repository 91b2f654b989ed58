//! Test servers for dify-crawl's tests and benchmarks.
//!
//! Everything here binds to `127.0.0.1` on port 0 and is started by the test
//! that uses it; nothing reaches any other address.
//!
//! - [`dify`]: a Dify-compatible Knowledge API server with fault injection
//!   and counters.
//! - [`site`]: generated websites (plain, large, hostile) for the crawler.
//! - [`static_site`]: a folder of files served as a website (the offline
//!   demo site).
#![deny(missing_docs)]

pub mod dify;
pub mod site;
pub mod static_site;
