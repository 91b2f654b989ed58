//! Sync throughput against a Dify test server that adds 20 ms to every
//! request, side by side with a plain sequential client.
//!
//! The sink runs with write concurrency 8 and batched metadata; the
//! baseline does what a straightforward script would: look up (here:
//! create) the knowledge base and its fields once, then per page one
//! create-by-text and one metadata call, one request at a time over one
//! keep-alive connection. Run with `cargo bench -p kb-sync --bench sync`.

use std::time::{Duration, Instant};

use dify_client::{
    AssignMetadataRequest, CreateDatasetRequest, CreateDocumentByTextRequest, DifyClient,
    DocumentMetadataOperation, IndexingTechnique, MetadataValue, ProcessRule,
};
use futures_util::StreamExt;
use kb_sync::dify_sink::{DifySink, DifySinkOptions, METADATA_FIELDS};
use kb_sync::naming::document_name;
use kb_sync::page::PageRecord;
use kb_sync::state::StateStore;
use test_support::dify::DifyServer;
use time::OffsetDateTime;
use url::Url;

const PAGES: usize = 200;
const LATENCY: Duration = Duration::from_millis(20);
const WRITE_CONCURRENCY: usize = 8;

fn page(index: usize) -> PageRecord {
    let url = Url::parse(&format!("https://docs.example.com/reference/item-{index}")).unwrap();
    let markdown =
        format!("# Item {index}\n\n{}", "Some reference text about this item. ".repeat(40));
    PageRecord {
        url,
        knowledge_base: "bench".into(),
        title: Some(format!("Item {index}")),
        description: None,
        language: Some("en".into()),
        published: None,
        modified: None,
        content_hash: PageRecord::hash_content(&markdown),
        word_count: markdown.split_whitespace().count() as u64,
        markdown,
        etag: None,
        last_modified: None,
        sitemap_lastmod: None,
        crawled_at: OffsetDateTime::now_utc(),
        links: Vec::new(),
    }
}

async fn server() -> DifyServer {
    DifyServer::builder().latency(LATENCY).start().await.unwrap()
}

fn client(server: &DifyServer) -> DifyClient {
    DifyClient::builder(server.base_url(), server.api_key()).build().unwrap()
}

struct Figures {
    wall: Duration,
    requests: u64,
    connections: u64,
}

async fn run_sink(pages: &[PageRecord]) -> Figures {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path().join("bench.sqlite3")).unwrap();
    let options =
        DifySinkOptions { write_concurrency: WRITE_CONCURRENCY, ..DifySinkOptions::default() };

    let started = Instant::now();
    let sink = DifySink::connect(client(&server), store, options).await.unwrap();
    let results: Vec<_> = futures_util::stream::iter(pages)
        .map(|page| sink.submit(page))
        .buffer_unordered(WRITE_CONCURRENCY * 2)
        .collect()
        .await;
    let summary = sink.finish(true).await.unwrap();
    let wall = started.elapsed();

    assert!(results.iter().all(Result::is_ok));
    assert_eq!(summary.knowledge_bases["bench"].created as usize, pages.len());
    Figures {
        wall,
        requests: server.stats().requests_total,
        connections: summary.dify.connections_opened,
    }
}

async fn run_sequential(pages: &[PageRecord]) -> Figures {
    let server = server().await;
    let client = client(&server);

    let started = Instant::now();
    let request = CreateDatasetRequest {
        indexing_technique: Some(IndexingTechnique::Economy),
        ..CreateDatasetRequest::new("bench")
    };
    let dataset = client.create_dataset(&request).await.unwrap();
    let mut fields = Vec::new();
    for (name, kind) in METADATA_FIELDS {
        fields.push(client.create_metadata_field(&dataset.id, name, kind).await.unwrap());
    }
    for page in pages {
        let create = CreateDocumentByTextRequest {
            process_rule: Some(ProcessRule::custom("\n\n", 500, 50)),
            ..CreateDocumentByTextRequest::new(
                document_name(&page.url),
                page.markdown.clone(),
                IndexingTechnique::Economy,
            )
        };
        let created = client.create_document_by_text(&dataset.id, &create).await.unwrap();
        // source_url and title, the first two fields.
        let values = [page.url.as_str().to_string(), page.title.clone().unwrap_or_default()];
        let metadata_list = fields
            .iter()
            .zip(values)
            .map(|(field, value)| MetadataValue {
                id: field.id.clone(),
                name: field.name.clone(),
                value: value.into(),
            })
            .collect();
        let operation = DocumentMetadataOperation {
            document_id: created.document.id,
            metadata_list,
            partial_update: false,
        };
        let assign = AssignMetadataRequest { operation_data: vec![operation] };
        client.assign_metadata(&dataset.id, &assign).await.unwrap();
    }
    let wall = started.elapsed();

    Figures {
        wall,
        requests: server.stats().requests_total,
        connections: client.metrics().connections_opened,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let pages: Vec<PageRecord> = (0..PAGES).map(page).collect();

    let (sink, sequential) = runtime.block_on(async {
        let sink = run_sink(&pages).await;
        let sequential = run_sequential(&pages).await;
        (sink, sequential)
    });

    let per_page = sink.requests as f64 / PAGES as f64;
    let speedup = sequential.wall.as_secs_f64() / sink.wall.as_secs_f64();
    println!(
        "sync bench: {PAGES} new pages, {} ms server latency per request",
        LATENCY.as_millis()
    );
    println!(
        "  sink (write concurrency {WRITE_CONCURRENCY}): {:>8.2?}  {} requests ({per_page:.3} per page)  {} connections",
        sink.wall, sink.requests, sink.connections
    );
    println!(
        "  sequential client:            {:>8.2?}  {} requests ({:.3} per page)  {} connections",
        sequential.wall,
        sequential.requests,
        sequential.requests as f64 / PAGES as f64,
        sequential.connections
    );
    println!(
        "  speed-up: {speedup:.1}x (target >= 10x); requests per page {per_page:.3} (target <= 1.1)"
    );
    println!(
        "  connections {} (target <= write concurrency {WRITE_CONCURRENCY})",
        sink.connections
    );
}
