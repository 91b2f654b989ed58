//! dify-client
#![deny(missing_docs)]
