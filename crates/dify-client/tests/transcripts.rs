//! Every response body recorded from a real Dify 1.13.2 parses into this
//! crate's types, and every JSON error body into `ApiError`.

use dify_client::{
    ApiError, BuiltInFields, Dataset, DatasetTags, Document, DocumentWithBatch,
    IndexingStatusResponse, MetadataField, MetadataFieldList, OperationResult, Page,
    RetrieveResponse, Tag,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

const TRANSCRIPTS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../test-support/tests/data/transcripts.jsonl");
const SHARED: &str = "/work/shared/dify/transcripts.jsonl";

fn transcripts() -> Vec<Value> {
    let text = std::fs::read_to_string(TRANSCRIPTS)
        .or_else(|_| std::fs::read_to_string(SHARED))
        .expect("transcripts.jsonl is readable");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn parse<T: DeserializeOwned>(name: &str, body: &str) -> T {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: {e}\n{body}"))
}

/// Parses a success body by route; returns false for routes this crate
/// does not cover (segments, downloads).
fn parse_success(name: &str, method: &str, path: &str, body: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path).trim_start_matches("/v1");
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST" | "PATCH", ["datasets"]) => assert!(!parse::<Dataset>(name, body).id.is_empty()),
        ("GET", ["datasets"]) => {
            assert!(parse::<Page<Dataset>>(name, body).data.iter().all(|d| !d.id.is_empty()))
        }
        ("GET", ["datasets", "tags"]) => drop(parse::<Vec<Tag>>(name, body)),
        ("POST" | "PATCH", ["datasets", "tags"]) => {
            assert!(!parse::<Tag>(name, body).id.is_empty())
        }
        ("GET" | "PATCH", ["datasets", _]) => assert!(!parse::<Dataset>(name, body).id.is_empty()),
        ("GET", ["datasets", _, "tags"]) => drop(parse::<DatasetTags>(name, body)),
        ("POST", ["datasets", _, "document", _]) | ("POST", ["datasets", _, "documents", _, _])
            if !path.ends_with("/metadata") && !path.ends_with("/segments") =>
        {
            let created = parse::<DocumentWithBatch>(name, body);
            assert!(!created.document.id.is_empty() && !created.batch.is_empty(), "{name}");
        }
        ("PATCH", ["datasets", _, "documents", "status", _]) => {
            assert_eq!(parse::<OperationResult>(name, body).result, "success")
        }
        ("PATCH", ["datasets", _, "documents", _]) => {
            assert!(!parse::<DocumentWithBatch>(name, body).batch.is_empty())
        }
        ("GET", ["datasets", _, "documents"]) => drop(parse::<Page<Document>>(name, body)),
        ("GET", ["datasets", _, "documents", _, "indexing-status"]) => {
            assert!(!parse::<IndexingStatusResponse>(name, body).data.is_empty())
        }
        ("GET", ["datasets", _, "documents", _]) => {
            assert!(!parse::<Document>(name, body).id.is_empty())
        }
        ("POST", ["datasets", _, "documents", "metadata"]) => {
            assert_eq!(parse::<OperationResult>(name, body).result, "success")
        }
        ("POST" | "PATCH", ["datasets", _, "metadata"] | ["datasets", _, "metadata", _])
            if !path.ends_with("built-in") =>
        {
            assert!(!parse::<MetadataField>(name, body).id.is_empty())
        }
        ("GET", ["datasets", _, "metadata"]) => drop(parse::<MetadataFieldList>(name, body)),
        ("GET", ["datasets", _, "metadata", "built-in"]) => {
            assert_eq!(parse::<BuiltInFields>(name, body).fields.len(), 5)
        }
        ("POST", ["datasets", _, "metadata", "built-in", _]) => {
            drop(parse::<OperationResult>(name, body))
        }
        ("POST", ["datasets", _, "retrieve" | "hit-testing"]) => {
            drop(parse::<RetrieveResponse>(name, body))
        }
        _ => return false,
    }
    true
}

#[test]
fn recorded_bodies_parse() {
    let mut parsed = 0;
    let mut errors = 0;
    for exchange in transcripts() {
        let name = exchange["name"].as_str().unwrap_or("?");
        let method = exchange["request"]["method"].as_str().unwrap_or("");
        let path = exchange["request"]["path"].as_str().unwrap_or("");
        let status = exchange["response"]["status"].as_u64().unwrap_or(0);
        let body = exchange["response"]["body"].as_str().unwrap_or("");
        let is_json = exchange["response"]["content_type"].as_str().unwrap_or("").contains("json");
        if body.trim().is_empty() || !is_json {
            continue;
        }
        if (200..300).contains(&status) {
            parsed += usize::from(parse_success(name, method, path, body));
        } else {
            let api: ApiError = parse(name, body);
            assert!(!api.message.is_empty() || body.contains("\"error\""), "{name}");
            errors += 1;
        }
    }
    assert!(parsed >= 40, "only {parsed} success bodies were checked");
    assert!(errors >= 20, "only {errors} error bodies were checked");
}

#[test]
fn recorded_documents_carry_status_and_metadata() {
    let exchange = transcripts()
        .into_iter()
        .find(|e| e["name"] == "get_document_builtin_enabled")
        .expect("transcript present");
    let document: Document =
        parse("get_document_builtin_enabled", exchange["response"]["body"].as_str().unwrap());
    assert!(document.doc_metadata.iter().any(|m| m.id == "built-in"), "{document:?}");
}
