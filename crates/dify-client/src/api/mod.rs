//! One async method per endpoint, grouped by resource.
//!
//! The endpoints themselves (route, retry class, rate-limit accounting) are
//! declared in one table, [`crate::endpoints`]; the methods here build the
//! URL and body and name what they attempt. The natural-key helpers
//! (`ensure_*`) live in [`ensure`].

mod datasets;
mod documents;
pub mod ensure;
mod metadata;
mod retrieval;
mod tags;

pub use documents::DocumentStream;
