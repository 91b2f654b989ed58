//! site-crawler
#![deny(missing_docs)]
