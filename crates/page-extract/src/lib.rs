//! page-extract
#![deny(missing_docs)]
