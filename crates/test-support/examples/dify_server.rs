//! Runs the Dify-compatible test server until Ctrl-C, so the sync path of
//! `dify-crawl` can be tried by hand on a machine without Dify:
//!
//! ```text
//! cargo run -p test-support --example dify_server
//! ```
//!
//! It prints the `DIFY_BASE_URL` and `DIFY_API_KEY` to export, and on exit
//! the knowledge bases and documents it holds. It binds 127.0.0.1 only.

use test_support::dify::DifyServer;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let server = DifyServer::start().await?;
    println!("Dify test server listening; in another shell run:");
    println!("  export DIFY_BASE_URL={}", server.base_url());
    println!("  export DIFY_API_KEY={}", server.api_key());
    println!("Press Ctrl-C to stop.");

    tokio::signal::ctrl_c().await?;

    let stats = server.stats();
    println!("\n{} requests on {} connections", stats.requests_total, stats.connections_accepted);
    for dataset in server.datasets() {
        let documents = server.documents(&dataset.id);
        println!("knowledge base {:?}: {} documents", dataset.name, documents.len());
        for document in documents {
            println!("  {} ({} metadata values)", document.name, document.doc_metadata.len());
        }
    }
    Ok(())
}
