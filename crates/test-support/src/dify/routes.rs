//! Route keys and the path router.
//!
//! Every route has one canonical key, `"METHOD template"`, written as in the
//! API reference without the `/v1` prefix. Deprecated aliases (underscore
//! forms, `hit-testing`, the POST forms of update-by-file) resolve to the
//! same key so counters and fault rules see one route whichever spelling a
//! client uses. Path ids must look like UUIDs: werkzeug's `<uuid:…>`
//! converter refuses anything else with its generic HTML 404, so the router
//! does the same.

/// `POST /datasets`: create a knowledge base.
pub const CREATE_DATASET: &str = "POST /datasets";
/// `GET /datasets`: list knowledge bases.
pub const LIST_DATASETS: &str = "GET /datasets";
/// `GET /datasets/{dataset_id}`: read one knowledge base.
pub const GET_DATASET: &str = "GET /datasets/{dataset_id}";
/// `PATCH /datasets/{dataset_id}`: update a knowledge base.
pub const UPDATE_DATASET: &str = "PATCH /datasets/{dataset_id}";
/// `DELETE /datasets/{dataset_id}`: delete a knowledge base.
pub const DELETE_DATASET: &str = "DELETE /datasets/{dataset_id}";
/// Create a document from text (alias `create_by_text`).
pub const CREATE_BY_TEXT: &str = "POST /datasets/{dataset_id}/document/create-by-text";
/// Create a document from a multipart file (alias `create_by_file`).
pub const CREATE_BY_FILE: &str = "POST /datasets/{dataset_id}/document/create-by-file";
/// Update a document's text (alias `update_by_text`).
pub const UPDATE_BY_TEXT: &str =
    "POST /datasets/{dataset_id}/documents/{document_id}/update-by-text";
/// Update a document from a file (aliases `POST …/update-by-file` and
/// `POST …/update_by_file`).
pub const UPDATE_BY_FILE: &str = "PATCH /datasets/{dataset_id}/documents/{document_id}";
/// List documents.
pub const LIST_DOCUMENTS: &str = "GET /datasets/{dataset_id}/documents";
/// Read one document.
pub const GET_DOCUMENT: &str = "GET /datasets/{dataset_id}/documents/{document_id}";
/// Delete one document.
pub const DELETE_DOCUMENT: &str = "DELETE /datasets/{dataset_id}/documents/{document_id}";
/// Indexing status of a batch.
pub const INDEXING_STATUS: &str = "GET /datasets/{dataset_id}/documents/{batch}/indexing-status";
/// Enable, disable, archive or un-archive documents.
pub const DOCUMENT_STATUS: &str = "PATCH /datasets/{dataset_id}/documents/status/{action}";
/// Assign metadata values to documents.
pub const ASSIGN_METADATA: &str = "POST /datasets/{dataset_id}/documents/metadata";
/// Create a metadata field.
pub const CREATE_METADATA: &str = "POST /datasets/{dataset_id}/metadata";
/// List metadata fields.
pub const LIST_METADATA: &str = "GET /datasets/{dataset_id}/metadata";
/// Rename a metadata field.
pub const UPDATE_METADATA: &str = "PATCH /datasets/{dataset_id}/metadata/{metadata_id}";
/// Delete a metadata field.
pub const DELETE_METADATA: &str = "DELETE /datasets/{dataset_id}/metadata/{metadata_id}";
/// List the built-in metadata fields.
pub const BUILT_IN_METADATA: &str = "GET /datasets/{dataset_id}/metadata/built-in";
/// Enable or disable the built-in metadata fields.
pub const TOGGLE_BUILT_IN_METADATA: &str = "POST /datasets/{dataset_id}/metadata/built-in/{action}";
/// Retrieve chunks (alias `hit-testing`).
pub const RETRIEVE: &str = "POST /datasets/{dataset_id}/retrieve";
/// List a document's chunks.
pub const LIST_SEGMENTS: &str = "GET /datasets/{dataset_id}/documents/{document_id}/segments";
/// Add chunks to a document.
pub const CREATE_SEGMENTS: &str = "POST /datasets/{dataset_id}/documents/{document_id}/segments";
/// Read one chunk.
pub const GET_SEGMENT: &str =
    "GET /datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}";
/// Update one chunk.
pub const UPDATE_SEGMENT: &str =
    "POST /datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}";
/// Delete one chunk.
pub const DELETE_SEGMENT: &str =
    "DELETE /datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}";
/// List the workspace's knowledge tags.
pub const LIST_TAGS: &str = "GET /datasets/tags";
/// Create a knowledge tag.
pub const CREATE_TAG: &str = "POST /datasets/tags";
/// Rename a knowledge tag.
pub const UPDATE_TAG: &str = "PATCH /datasets/tags";
/// Delete a knowledge tag.
pub const DELETE_TAG: &str = "DELETE /datasets/tags";
/// Bind tags to a knowledge base.
pub const BIND_TAGS: &str = "POST /datasets/tags/binding";
/// Unbind tags from a knowledge base.
pub const UNBIND_TAGS: &str = "POST /datasets/tags/unbinding";
/// List the tags bound to a knowledge base.
pub const DATASET_TAGS: &str = "GET /datasets/{dataset_id}/tags";

/// Every route key, for tests that iterate over them.
pub const ALL: &[&str] = &[
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
    ASSIGN_METADATA,
    CREATE_METADATA,
    LIST_METADATA,
    UPDATE_METADATA,
    DELETE_METADATA,
    BUILT_IN_METADATA,
    TOGGLE_BUILT_IN_METADATA,
    RETRIEVE,
    LIST_SEGMENTS,
    CREATE_SEGMENTS,
    GET_SEGMENT,
    UPDATE_SEGMENT,
    DELETE_SEGMENT,
    LIST_TAGS,
    CREATE_TAG,
    UPDATE_TAG,
    DELETE_TAG,
    BIND_TAGS,
    UNBIND_TAGS,
    DATASET_TAGS,
];

/// Routes that Dify Cloud's knowledge rate limit counts (api.md §2): writes,
/// deletes and retrieval. Reads, indexing status, batch status and tags are
/// free. Public so that clients can check their own accounting against it.
pub fn is_rate_counted(route: &str) -> bool {
    matches!(
        route,
        CREATE_DATASET
            | UPDATE_DATASET
            | DELETE_DATASET
            | CREATE_BY_TEXT
            | CREATE_BY_FILE
            | UPDATE_BY_TEXT
            | UPDATE_BY_FILE
            | DELETE_DOCUMENT
            | ASSIGN_METADATA
            | CREATE_METADATA
            | UPDATE_METADATA
            | DELETE_METADATA
            | TOGGLE_BUILT_IN_METADATA
            | RETRIEVE
            | CREATE_SEGMENTS
            | UPDATE_SEGMENT
            | DELETE_SEGMENT
    )
}

/// Outcome of matching a method and path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    /// A known route with its path parameters in template order.
    Found {
        /// The canonical route key.
        route: &'static str,
        /// Path parameters in the order they appear in the template.
        params: Vec<String>,
    },
    /// The path exists but not for this method.
    MethodNotAllowed,
    /// No such path (or an id that is not a UUID).
    NotFound,
}

/// Matches a request path (with its `/v1` prefix) against the route table.
pub(crate) fn route(method: &str, path: &str) -> Routed {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Routed::NotFound;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.first() != Some(&"datasets") {
        return Routed::NotFound;
    }

    match by_shape(&segs[1..]) {
        Some((table, params)) => pick(method, table, params),
        None => Routed::NotFound,
    }
}

type Table = &'static [(&'static str, &'static str)];

fn pick(method: &str, table: Table, params: Vec<String>) -> Routed {
    table
        .iter()
        .find(|(m, _)| *m == method)
        .map_or(Routed::MethodNotAllowed, |(_, route)| Routed::Found { route, params })
}

fn owned(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn by_shape(segs: &[&str]) -> Option<(Table, Vec<String>)> {
    match segs {
        [] => Some((&[("GET", LIST_DATASETS), ("POST", CREATE_DATASET)], vec![])),
        ["tags"] => Some((
            &[
                ("GET", LIST_TAGS),
                ("POST", CREATE_TAG),
                ("PATCH", UPDATE_TAG),
                ("DELETE", DELETE_TAG),
            ],
            vec![],
        )),
        ["tags", "binding"] => Some((&[("POST", BIND_TAGS)], vec![])),
        ["tags", "unbinding"] => Some((&[("POST", UNBIND_TAGS)], vec![])),
        [ds, rest @ ..] if is_uuid(ds) => dataset_shape(ds, rest),
        _ => None,
    }
}

fn dataset_shape(ds: &str, rest: &[&str]) -> Option<(Table, Vec<String>)> {
    let one = owned(&[ds]);
    match rest {
        [] => Some((
            &[("GET", GET_DATASET), ("PATCH", UPDATE_DATASET), ("DELETE", DELETE_DATASET)],
            one,
        )),
        ["tags"] => Some((&[("GET", DATASET_TAGS)], one)),
        ["document", "create-by-text" | "create_by_text"] => {
            Some((&[("POST", CREATE_BY_TEXT)], one))
        }
        ["document", "create-by-file" | "create_by_file"] => {
            Some((&[("POST", CREATE_BY_FILE)], one))
        }
        ["retrieve" | "hit-testing"] => Some((&[("POST", RETRIEVE)], one)),
        ["metadata"] => Some((&[("GET", LIST_METADATA), ("POST", CREATE_METADATA)], one)),
        ["metadata", "built-in"] => Some((&[("GET", BUILT_IN_METADATA)], one)),
        ["metadata", "built-in", action] => {
            Some((&[("POST", TOGGLE_BUILT_IN_METADATA)], owned(&[ds, action])))
        }
        ["metadata", id] if is_uuid(id) => {
            Some((&[("PATCH", UPDATE_METADATA), ("DELETE", DELETE_METADATA)], owned(&[ds, id])))
        }
        ["documents", more @ ..] => documents_shape(ds, more),
        _ => None,
    }
}

fn documents_shape(ds: &str, rest: &[&str]) -> Option<(Table, Vec<String>)> {
    match rest {
        [] => Some((&[("GET", LIST_DOCUMENTS)], owned(&[ds]))),
        ["metadata"] => Some((&[("POST", ASSIGN_METADATA)], owned(&[ds]))),
        ["status", action] => Some((&[("PATCH", DOCUMENT_STATUS)], owned(&[ds, action]))),
        [batch, "indexing-status"] => Some((&[("GET", INDEXING_STATUS)], owned(&[ds, batch]))),
        [doc, more @ ..] if is_uuid(doc) => document_shape(ds, doc, more),
        _ => None,
    }
}

fn document_shape(ds: &str, doc: &str, rest: &[&str]) -> Option<(Table, Vec<String>)> {
    let two = owned(&[ds, doc]);
    match rest {
        [] => Some((
            &[("GET", GET_DOCUMENT), ("PATCH", UPDATE_BY_FILE), ("DELETE", DELETE_DOCUMENT)],
            two,
        )),
        ["update-by-text" | "update_by_text"] => Some((&[("POST", UPDATE_BY_TEXT)], two)),
        ["update-by-file" | "update_by_file"] => Some((&[("POST", UPDATE_BY_FILE)], two)),
        ["segments"] => Some((&[("GET", LIST_SEGMENTS), ("POST", CREATE_SEGMENTS)], two)),
        ["segments", seg] if is_uuid(seg) => Some((
            &[("GET", GET_SEGMENT), ("POST", UPDATE_SEGMENT), ("DELETE", DELETE_SEGMENT)],
            owned(&[ds, doc, seg]),
        )),
        _ => None,
    }
}

/// Whether `s` has the 8-4-4-4-12 hex shape werkzeug's UUID converter accepts.
pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == lens.len()
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DS: &str = "5ef92201-5e4a-4aa5-86e9-9467f120b5a1";
    const DOC: &str = "6ff867f0-db8a-4034-9b60-6fcb441b027a";

    fn key(method: &str, path: &str) -> Option<&'static str> {
        match route(method, path) {
            Routed::Found { route, .. } => Some(route),
            _ => None,
        }
    }

    #[test]
    fn aliases_share_the_canonical_key() {
        let text = format!("/v1/datasets/{DS}/document/create_by_text");
        assert_eq!(key("POST", &text), Some(CREATE_BY_TEXT));
        let hit = format!("/v1/datasets/{DS}/hit-testing");
        assert_eq!(key("POST", &hit), Some(RETRIEVE));
        let upd = format!("/v1/datasets/{DS}/documents/{DOC}/update_by_file");
        assert_eq!(key("POST", &upd), Some(UPDATE_BY_FILE));
        let patch = format!("/v1/datasets/{DS}/documents/{DOC}");
        assert_eq!(key("PATCH", &patch), Some(UPDATE_BY_FILE));
    }

    #[test]
    fn non_uuid_ids_and_unknown_paths_are_not_found() {
        assert_eq!(route("GET", "/v1/datasets/not-a-uuid"), Routed::NotFound);
        assert_eq!(route("GET", "/v1/datasets-nope"), Routed::NotFound);
        assert_eq!(route("GET", "/datasets"), Routed::NotFound);
    }

    #[test]
    fn fixed_segments_win_over_ids() {
        let meta = format!("/v1/datasets/{DS}/documents/metadata");
        assert_eq!(key("POST", &meta), Some(ASSIGN_METADATA));
        let status = format!("/v1/datasets/{DS}/documents/status/disable");
        assert_eq!(key("PATCH", &status), Some(DOCUMENT_STATUS));
        let batch = format!("/v1/datasets/{DS}/documents/20261203173057548442/indexing-status");
        assert_eq!(key("GET", &batch), Some(INDEXING_STATUS));
    }

    #[test]
    fn wrong_method_is_distinguished() {
        assert_eq!(route("PUT", "/v1/datasets"), Routed::MethodNotAllowed);
    }
}
