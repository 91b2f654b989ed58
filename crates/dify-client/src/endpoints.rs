//! Every endpoint the client calls, with its retry class and whether Dify
//! Cloud's rate limit counts it: one table, so the classes can be compared
//! side by side and each choice is explained once.
//!
//! How a class is chosen ([`Idempotency`]):
//! - [`Safe`]: a second copy of the request changes nothing and answers as
//!   the first did. Reads; retrieval (its only side effects are hit
//!   counters and a query log); deletes, where a "not found" after an
//!   attempt that may have been processed counts as done; idempotent
//!   toggles (built-in metadata); tag binding, which skips existing
//!   bindings; metadata assignment when every operation is a full replace.
//! - [`NaturalKey`]: a create keyed by a unique name. A second copy finds
//!   the name taken (datasets 409, metadata fields and tags 400 "already
//!   exists"; the create then looks the name up and returns what the lost
//!   attempt made) or, for create-by-text, replaces the same-name document
//!   in place and returns the same id.
//! - [`Unsafe`]: a second copy can do more work or answer an error although
//!   the first succeeded: updates (re-indexing again, and "Document is not
//!   available" while the first copy indexes), status toggles (a background
//!   task runs after the first copy, and a second answers 400 "is being
//!   indexed"), renames (Dify refuses renaming a metadata field or tag to
//!   the name it already has on the versions that check for duplicates
//!   without excluding the field itself), file creates (`duplicate: false`
//!   creates a second document) and partial metadata merges. Sent again
//!   only when the first copy certainly was not processed.
//!
//! `counted` follows api.md §2: dataset, document and metadata writes,
//! deletes and retrieval are counted; reads, indexing status, batch status
//! and tags are not.

use crate::retry::Idempotency::{self, NaturalKey, Safe, Unsafe};

/// Static description of an endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint {
    pub(crate) verb: Verb,
    /// Verb and path template, e.g. `GET /datasets/{dataset_id}`; the key of
    /// metrics and errors.
    pub(crate) route: &'static str,
    pub(crate) class: Idempotency,
    /// Counted by Dify Cloud's knowledge rate limit.
    pub(crate) counted: bool,
}

/// HTTP verbs the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    pub(crate) fn method(self) -> http::Method {
        match self {
            Verb::Get => http::Method::GET,
            Verb::Post => http::Method::POST,
            Verb::Patch => http::Method::PATCH,
            Verb::Delete => http::Method::DELETE,
        }
    }
}

const fn endpoint(verb: Verb, route: &'static str, class: Idempotency, counted: bool) -> Endpoint {
    Endpoint { verb, route, class, counted }
}

use Verb::{Delete, Get, Patch, Post};

// Datasets.
pub(crate) const CREATE_DATASET: Endpoint = endpoint(Post, "POST /datasets", NaturalKey, true);
pub(crate) const LIST_DATASETS: Endpoint = endpoint(Get, "GET /datasets", Safe, false);
pub(crate) const GET_DATASET: Endpoint = endpoint(Get, "GET /datasets/{dataset_id}", Safe, false);
/// A new indexing technique or embedding model re-indexes every document.
pub(crate) const UPDATE_DATASET: Endpoint =
    endpoint(Patch, "PATCH /datasets/{dataset_id}", Unsafe, true);
pub(crate) const DELETE_DATASET: Endpoint =
    endpoint(Delete, "DELETE /datasets/{dataset_id}", Safe, true);

// Documents.
pub(crate) const CREATE_BY_TEXT: Endpoint =
    endpoint(Post, "POST /datasets/{dataset_id}/document/create-by-text", NaturalKey, true);
pub(crate) const CREATE_BY_FILE: Endpoint =
    endpoint(Post, "POST /datasets/{dataset_id}/document/create-by-file", Unsafe, true);
pub(crate) const UPDATE_BY_TEXT: Endpoint = endpoint(
    Post,
    "POST /datasets/{dataset_id}/documents/{document_id}/update-by-text",
    Unsafe,
    true,
);
/// The POST alias, which every server version routes; the canonical
/// `PATCH …/documents/{document_id}` is missing on servers up to 1.13.
pub(crate) const UPDATE_BY_FILE: Endpoint = endpoint(
    Post,
    "POST /datasets/{dataset_id}/documents/{document_id}/update-by-file",
    Unsafe,
    true,
);
pub(crate) const LIST_DOCUMENTS: Endpoint =
    endpoint(Get, "GET /datasets/{dataset_id}/documents", Safe, false);
pub(crate) const GET_DOCUMENT: Endpoint =
    endpoint(Get, "GET /datasets/{dataset_id}/documents/{document_id}", Safe, false);
pub(crate) const DELETE_DOCUMENT: Endpoint =
    endpoint(Delete, "DELETE /datasets/{dataset_id}/documents/{document_id}", Safe, true);
pub(crate) const INDEXING_STATUS: Endpoint =
    endpoint(Get, "GET /datasets/{dataset_id}/documents/{batch}/indexing-status", Safe, false);
pub(crate) const DOCUMENT_STATUS: Endpoint =
    endpoint(Patch, "PATCH /datasets/{dataset_id}/documents/status/{action}", Unsafe, false);

// Metadata.
pub(crate) const CREATE_METADATA: Endpoint =
    endpoint(Post, "POST /datasets/{dataset_id}/metadata", NaturalKey, true);
pub(crate) const LIST_METADATA: Endpoint =
    endpoint(Get, "GET /datasets/{dataset_id}/metadata", Safe, false);
pub(crate) const RENAME_METADATA: Endpoint =
    endpoint(Patch, "PATCH /datasets/{dataset_id}/metadata/{metadata_id}", Unsafe, true);
/// 1.13 answers a repeat with 400 "Metadata not found." rather than 404;
/// the transport accepts both as "already deleted".
pub(crate) const DELETE_METADATA: Endpoint =
    endpoint(Delete, "DELETE /datasets/{dataset_id}/metadata/{metadata_id}", Safe, true);
pub(crate) const BUILT_IN_METADATA: Endpoint =
    endpoint(Get, "GET /datasets/{dataset_id}/metadata/built-in", Safe, false);
pub(crate) const TOGGLE_BUILT_IN_METADATA: Endpoint =
    endpoint(Post, "POST /datasets/{dataset_id}/metadata/built-in/{action}", Safe, true);
/// Unsafe as declared; `assign_metadata` upgrades a full replace to Safe.
pub(crate) const ASSIGN_METADATA: Endpoint =
    endpoint(Post, "POST /datasets/{dataset_id}/documents/metadata", Unsafe, true);

// Retrieval.
pub(crate) const RETRIEVE: Endpoint =
    endpoint(Post, "POST /datasets/{dataset_id}/retrieve", Safe, true);

// Tags.
pub(crate) const LIST_TAGS: Endpoint = endpoint(Get, "GET /datasets/tags", Safe, false);
pub(crate) const CREATE_TAG: Endpoint = endpoint(Post, "POST /datasets/tags", NaturalKey, false);
pub(crate) const RENAME_TAG: Endpoint = endpoint(Patch, "PATCH /datasets/tags", Unsafe, false);
pub(crate) const DELETE_TAG: Endpoint = endpoint(Delete, "DELETE /datasets/tags", Safe, false);
pub(crate) const BIND_TAGS: Endpoint = endpoint(Post, "POST /datasets/tags/binding", Safe, false);
pub(crate) const UNBIND_TAGS: Endpoint =
    endpoint(Post, "POST /datasets/tags/unbinding", Safe, false);
pub(crate) const DATASET_TAGS: Endpoint =
    endpoint(Get, "GET /datasets/{dataset_id}/tags", Safe, false);

/// Every endpoint, for tests that check the table as a whole.
#[cfg(test)]
pub(crate) const ALL: &[Endpoint] = &[
    CREATE_DATASET,
    LIST_DATASETS,
    GET_DATASET,
    UPDATE_DATASET,
    DELETE_DATASET,
    CREATE_BY_TEXT,
    CREATE_BY_FILE,
    UPDATE_BY_TEXT,
    UPDATE_BY_FILE,
    LIST_DOCUMENTS,
    GET_DOCUMENT,
    DELETE_DOCUMENT,
    INDEXING_STATUS,
    DOCUMENT_STATUS,
    CREATE_METADATA,
    LIST_METADATA,
    RENAME_METADATA,
    DELETE_METADATA,
    BUILT_IN_METADATA,
    TOGGLE_BUILT_IN_METADATA,
    ASSIGN_METADATA,
    RETRIEVE,
    LIST_TAGS,
    CREATE_TAG,
    RENAME_TAG,
    DELETE_TAG,
    BIND_TAGS,
    UNBIND_TAGS,
    DATASET_TAGS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_match_their_verbs_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for endpoint in ALL {
            let method = endpoint.verb.method();
            assert!(endpoint.route.starts_with(&format!("{method} /datasets")), "{endpoint:?}");
            assert!(seen.insert(endpoint.route), "{} listed twice", endpoint.route);
        }
    }

    #[test]
    fn reads_are_safe_and_free_and_only_deletes_rely_on_not_found() {
        for endpoint in ALL {
            if endpoint.verb == Verb::Get {
                assert_eq!(endpoint.class, Safe, "{}", endpoint.route);
                assert!(!endpoint.counted, "{}", endpoint.route);
            }
            // A Safe write other than a delete must be a true no-op when
            // repeated; the ones that are listed here were checked against
            // api.md one by one.
            if endpoint.class == Safe && !matches!(endpoint.verb, Verb::Get | Verb::Delete) {
                let known = [
                    RETRIEVE.route,
                    TOGGLE_BUILT_IN_METADATA.route,
                    BIND_TAGS.route,
                    UNBIND_TAGS.route,
                ];
                assert!(known.contains(&endpoint.route), "{} is Safe", endpoint.route);
            }
        }
    }

    #[test]
    fn renames_and_toggles_share_one_class() {
        assert_eq!(RENAME_TAG.class, RENAME_METADATA.class);
        assert_eq!(RENAME_TAG.class, Unsafe);
        assert_eq!(DOCUMENT_STATUS.class, Unsafe);
    }

    #[test]
    fn counted_routes_match_the_test_server() {
        let server_routes: std::collections::HashSet<&str> =
            test_support::dify::routes::ALL.iter().copied().collect();
        for endpoint in ALL {
            // The server keys update-by-file by its canonical PATCH form.
            let key = if endpoint.route == UPDATE_BY_FILE.route {
                test_support::dify::routes::UPDATE_BY_FILE
            } else {
                endpoint.route
            };
            assert!(server_routes.contains(key), "{} unknown to the test server", endpoint.route);
            assert_eq!(
                test_support::dify::routes::is_rate_counted(key),
                endpoint.counted,
                "{}",
                endpoint.route
            );
        }
    }
}
