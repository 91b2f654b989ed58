//! Request and response types of the Knowledge API.
//!
//! Responses are parsed leniently: unknown fields are ignored, and fields
//! that older or newer servers lack, or send as `null`, are `Option` or fall
//! back to a default. Enums carry an `Other` variant for values this crate
//! does not know yet. Requests serialize only the fields that are set, so the
//! server's defaults apply to the rest.

mod common;
mod datasets;
mod documents;
mod metadata;
mod process;
mod retrieval;
mod tags;

pub use common::*;
pub use datasets::*;
pub use documents::*;
pub use metadata::*;
pub use process::*;
pub use retrieval::*;
pub use tags::*;
