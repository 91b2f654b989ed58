//! The API key never shows up in logs, errors or debug output.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use dify_client::DifyClient;
use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule, routes};

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn key_appears_in_no_log_line_error_or_debug_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded, so the thread default covers the
    // client and the server alike.
    let _guard = tracing::subscriber::set_default(subscriber);

    let secret = "dataset-VERYSECRET42";
    let server = DifyServer::builder().api_key(secret).start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "redaction").await;
    server.set_faults(FaultPlan::new(
        1,
        vec![FaultRule::once(Some(routes::GET_DATASET), Fault::DropBefore)],
    ));
    client.get_dataset(&dataset.id).await.unwrap();
    let wrong = DifyClient::builder(server.base_url(), "dataset-OTHERSECRET").build().unwrap();
    let error = wrong.get_dataset(&dataset.id).await.unwrap_err();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying dify request"), "logs were captured: {logs}");
    let shown = format!("{logs}\n{error}\n{error:?}\n{client:?}\n{wrong:?}");
    for key in ["VERYSECRET42", "OTHERSECRET"] {
        assert!(!shown.contains(key), "{key} leaked");
    }
}
