//! One async method per endpoint, grouped by resource.
//!
//! Each file declares its endpoints as [`Endpoint`](crate::transport::Endpoint)
//! constants next to the methods using them, so an endpoint's retry class
//! and rate-limit accounting are visible where it is called. The natural-key
//! helpers (`ensure_*`) live in [`ensure`].

mod datasets;
mod documents;
pub mod ensure;
mod metadata;
mod retrieval;
mod tags;

pub use documents::DocumentStream;
