//! Helpers shared by the sink tests: generated pages, a client and sink
//! pointed at a test server, and the invariants every test checks.

#![allow(dead_code)]

pub mod proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use dify_client::{DifyClient, DifyClientBuilder};
use futures_util::StreamExt;
use kb_sync::dify_sink::{DifySink, DifySinkOptions, SyncError, SyncOutcome, SyncSummary};
use kb_sync::naming::document_name;
use kb_sync::page::PageRecord;
use kb_sync::state::StateStore;
use test_support::dify::{DifyServer, DocumentView};
use time::OffsetDateTime;
use url::Url;

/// The knowledge base the generated pages go to.
pub const KB: &str = "docs";

/// A page of the generated site; `version` changes its text.
pub fn page(index: usize, version: u32) -> PageRecord {
    page_on("docs.example.com", index, version)
}

/// A page of a generated site on `host`.
pub fn page_on(host: &str, index: usize, version: u32) -> PageRecord {
    let url = Url::parse(&format!("https://{host}/guide/page-{index}")).unwrap();
    let markdown = format!(
        "# Page {index}\n\nVersion {version} of page {index}.\n\nSome words about topic {index}."
    );
    PageRecord {
        url,
        knowledge_base: KB.to_string(),
        title: Some(format!("Page {index}")),
        description: Some(format!("About topic {index}")),
        language: Some("en".to_string()),
        published: None,
        modified: Some("2026-11-01T10:00:00Z".to_string()),
        content_hash: PageRecord::hash_content(&markdown),
        word_count: markdown.split_whitespace().count() as u64,
        markdown,
        etag: Some(format!("\"{index}-{version}\"")),
        last_modified: None,
        sitemap_lastmod: None,
        crawled_at: OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap(),
        links: Vec::new(),
    }
}

/// Pages `0..count`, all at `version`.
pub fn pages(count: usize, version: u32) -> Vec<PageRecord> {
    (0..count).map(|i| page(i, version)).collect()
}

/// A client builder with fast retries.
pub fn builder(server: &DifyServer) -> DifyClientBuilder {
    DifyClient::builder(server.base_url(), server.api_key())
        .base_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
}

/// A client builder through `proxy`, with fast retries.
pub fn proxied(server: &DifyServer, proxy: &proxy::Proxy) -> DifyClientBuilder {
    DifyClient::builder(proxy.base_url(), server.api_key())
        .base_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
}

/// Options with small metadata batches, so batching shows in small tests.
pub fn options() -> DifySinkOptions {
    DifySinkOptions { metadata_batch_size: 5, ..DifySinkOptions::default() }
}

/// Opens the store in `dir` (read-only for a dry run, as the binary does)
/// and connects a sink.
pub async fn sink(server: &DifyServer, dir: &Path, options: DifySinkOptions) -> DifySink {
    let client = builder(server).build().unwrap();
    sink_with(client, dir, options).await
}

/// Opens the store in `dir` and connects a sink through `client`.
pub async fn sink_with(client: DifyClient, dir: &Path, options: DifySinkOptions) -> DifySink {
    let path = dir.join("state.sqlite3");
    let store = if options.dry_run {
        StateStore::open_read_only(path).unwrap()
    } else {
        StateStore::open(path).unwrap()
    };
    DifySink::connect(client, store, options).await.unwrap()
}

/// Submits every page (a few at a time) and finishes the run.
pub async fn sync_all(
    sink: &DifySink,
    pages: &[PageRecord],
) -> (Vec<Result<SyncOutcome, SyncError>>, SyncSummary) {
    let outcomes = submit_all(sink, pages).await;
    let summary = sink.finish(true).await.unwrap();
    (outcomes, summary)
}

/// Submits every page, four at a time.
pub async fn submit_all(
    sink: &DifySink,
    pages: &[PageRecord],
) -> Vec<Result<SyncOutcome, SyncError>> {
    futures_util::stream::iter(pages)
        .map(|page| sink.submit(page))
        .buffer_unordered(4)
        .collect()
        .await
}

/// The documents of the knowledge base, by name.
pub fn documents(server: &DifyServer) -> Vec<DocumentView> {
    let Some(dataset) = server.dataset_by_name(KB) else { return Vec::new() };
    server.documents(&dataset.id)
}

/// Document ids by name.
pub fn ids_by_name(server: &DifyServer) -> BTreeMap<String, String> {
    documents(server).into_iter().map(|d| (d.name, d.id)).collect()
}

/// The invariants of a finished sync: exactly one document per page, with
/// the page's text and metadata, and no other document.
pub fn assert_in_step(server: &DifyServer, pages: &[PageRecord]) {
    let documents = documents(server);
    let names: Vec<&str> = documents.iter().map(|d| d.name.as_str()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len(), "duplicate documents: {names:?}");
    assert_eq!(documents.len(), pages.len(), "documents: {names:?}");

    for page in pages {
        let name = document_name(&page.url);
        let Some(doc) = documents.iter().find(|d| d.name == name) else {
            panic!("no document for {}", page.url);
        };
        assert_eq!(doc.text, page.markdown, "text of {name}");
        assert_eq!(doc.doc_metadata.get("content_hash"), Some(&page.content_hash.clone().into()));
        assert_eq!(doc.doc_metadata.get("source_url"), Some(&page.url.as_str().into()));
        assert_eq!(
            doc.doc_metadata.get("title"),
            page.title.as_ref().map(|t| t.as_str().into()).as_ref()
        );
    }
}

/// Requests per route made between two stats snapshots.
pub fn diff(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(route, count)| {
            let delta = count - before.get(route).copied().unwrap_or(0);
            (delta > 0).then(|| (route.clone(), delta))
        })
        .collect()
}

/// The store agrees with Dify: no two rows claim one document, and every
/// row past its write names a document the server holds in the row's
/// dataset.
pub fn assert_store_consistent(server: &DifyServer, store: &StateStore) {
    let rows = store.all_pages().unwrap();
    let mut claimed = BTreeSet::new();
    for row in &rows {
        let Some(id) = &row.document_id else { continue };
        assert!(claimed.insert(id.clone()), "two rows claim document {id}: {rows:#?}");
    }
    for row in rows.iter().filter(|row| row.stage.content_in_dify()) {
        let (Some(dataset), Some(id)) = (&row.dataset_id, &row.document_id) else {
            panic!("{} is {:?} without a document", row.url, row.stage);
        };
        let held = server.documents(dataset).into_iter().any(|doc| &doc.id == id);
        assert!(held, "{} is {:?} but dify has no document {id}", row.url, row.stage);
    }
}
