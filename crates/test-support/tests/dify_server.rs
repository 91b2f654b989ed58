//! Behaviour of the Dify test server that the recorded exchanges cannot
//! show: transport control (idle close, drops, stalls), fault plans,
//! counters, the cloud rate limit, simulated indexing, and the write rules
//! tests elsewhere depend on.
//!
//! Requests go over raw HTTP/1.1 sockets so that a dropped connection is
//! observed as such, not hidden by a client's retry.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule, routes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One raw HTTP/1.1 connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    key: String,
}

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Conn {
    async fn open(server: &DifyServer) -> Conn {
        let stream = TcpStream::connect(server.addr()).await.expect("connects");
        Conn { stream, buf: Vec::new(), key: server.api_key().to_owned() }
    }

    async fn send_raw(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) {
        let mut head = format!(
            "{method} /v1{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Content-Length: {}\r\n",
            self.key,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        // One write: head and body in separate segments would meet Nagle's
        // algorithm and delayed ACKs (40 ms per request).
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        self.stream.write_all(&message).await.expect("writes the request");
    }

    /// Reads one response; `None` when the server closes the connection
    /// before a complete response.
    async fn read(&mut self) -> Option<Resp> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < head_end + 4 + len {
            if !self.fill().await {
                return None;
            }
        }
        let body = self.buf[head_end + 4..head_end + 4 + len].to_vec();
        self.buf.drain(..head_end + 4 + len);
        Some(Resp { status, headers, body })
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Option<Resp> {
        match body {
            Some(b) => {
                let bytes = b.to_string().into_bytes();
                self.send_raw(method, path, Some("application/json"), &bytes).await;
            }
            None => self.send_raw(method, path, None, b"").await,
        }
        self.read().await
    }

    /// A call that must be answered.
    async fn api(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let resp = self.call(method, path, body).await.expect("server answers");
        (resp.status, resp.json())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn new_dataset(conn: &mut Conn, name: &str) -> String {
    let (status, body) = conn
        .api("POST", "/datasets", Some(json!({"name": name, "indexing_technique": "economy"})))
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap_or_default().to_owned()
}

async fn new_document(conn: &mut Conn, ds: &str, name: &str, text: &str) -> (String, String) {
    let body = json!({
        "name": name, "text": text, "indexing_technique": "economy",
        "process_rule": {"mode": "automatic"}
    });
    let (status, out) =
        conn.api("POST", &format!("/datasets/{ds}/document/create-by-text"), Some(body)).await;
    assert_eq!(status, 200, "{out}");
    let id = out["document"]["id"].as_str().unwrap_or_default().to_owned();
    let batch = out["batch"].as_str().unwrap_or_default().to_owned();
    (id, batch)
}

/// Guards a wait on the real clock so a broken server fails the test
/// instead of hanging it; not an assertion about speed.
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut).await.expect("finished in time")
}

#[tokio::test]
async fn counters_track_routes_statuses_and_connections() {
    let server = DifyServer::start().await.expect("starts");
    let mut a = Conn::open(&server).await;
    a.api("POST", "/datasets", Some(json!({"name": "kb"}))).await;
    a.api("GET", "/datasets", None).await;
    let html = a.call("GET", "-nope", None).await.expect("answers");
    assert_eq!(html.status, 404);
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    let mut b = Conn::open(&server).await;
    b.key = "dataset-wrong".to_owned();
    let denied = b.call("GET", "/datasets", None).await.expect("answers");
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("www-authenticate"), Some("Bearer realm=\"api\""));

    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 2);
    assert_eq!(stats.requests_total, 4);
    assert_eq!(stats.requests(routes::CREATE_DATASET), 1);
    assert_eq!(stats.requests(routes::LIST_DATASETS), 2);
    assert_eq!((stats.responses(200), stats.responses(404), stats.responses(401)), (2, 1, 1));
    server.reset_stats();
    assert_eq!(server.stats(), Default::default());
}

#[tokio::test]
async fn every_response_says_keep_alive_and_the_version() {
    let server = DifyServer::start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    for _ in 0..3 {
        let resp = conn.call("GET", "/datasets", None).await.expect("answers");
        assert_eq!(resp.header("connection"), Some("keep-alive"));
        assert_eq!(resp.header("x-version"), Some("1.13.2"));
    }
    assert_eq!(server.stats().connections_accepted, 1, "one connection reused");
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed_without_a_word() {
    let server = DifyServer::builder()
        .idle_timeout(Some(Duration::from_millis(150)))
        .start()
        .await
        .expect("starts");
    let mut conn = Conn::open(&server).await;
    assert_eq!(conn.api("GET", "/datasets", None).await.0, 200);

    let after_idle = within(conn.read()).await;
    assert!(after_idle.is_none(), "the server closed the idle connection");
    assert_eq!(server.stats().connections_closed_idle, 1);
}

#[tokio::test(start_paused = true)]
async fn the_idle_clock_stops_while_a_request_is_handled() {
    let server = DifyServer::builder()
        .idle_timeout(Some(Duration::from_millis(50)))
        .faults(FaultPlan::new(
            1,
            vec![FaultRule::once(
                Some(routes::LIST_DATASETS),
                Fault::Stall(Duration::from_millis(300)),
            )],
        ))
        .start()
        .await
        .expect("starts");
    let mut conn = Conn::open(&server).await;
    let resp = within(conn.call("GET", "/datasets", None)).await;
    assert_eq!(resp.map(|r| r.status), Some(200));
    assert_eq!(server.stats().faults("stall"), 1);
}

#[tokio::test]
async fn drop_after_applies_the_write_and_drop_before_does_not() {
    let server = DifyServer::start().await.expect("starts");
    server.set_faults(FaultPlan::new(
        0,
        vec![FaultRule::once(Some(routes::CREATE_DATASET), Fault::DropAfter)],
    ));
    let mut conn = Conn::open(&server).await;
    let lost = within(conn.call("POST", "/datasets", Some(json!({"name": "after"})))).await;
    assert!(lost.is_none(), "no answer");
    assert!(server.dataset_by_name("after").is_some(), "the write happened");

    server.set_faults(FaultPlan::new(0, vec![FaultRule::once(None, Fault::DropBefore)]));
    let mut conn = Conn::open(&server).await;
    let lost = within(conn.call("POST", "/datasets", Some(json!({"name": "before"})))).await;
    assert!(lost.is_none());
    assert!(server.dataset_by_name("before").is_none(), "state untouched");

    let stats = server.stats();
    assert_eq!((stats.faults("drop_after"), stats.faults("drop_before")), (1, 1));
    assert_eq!(stats.responses_by_status.values().sum::<u64>(), 0, "nothing was answered");
}

#[tokio::test]
async fn server_errors_before_and_after_the_write() {
    let server = DifyServer::start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    server.set_faults(FaultPlan::new(0, vec![FaultRule::once(None, Fault::ServerErrorBefore)]));
    let (status, body) = conn.api("POST", "/datasets", Some(json!({"name": "one"}))).await;
    assert_eq!((status, body["code"].as_str()), (500, Some("internal_server_error")));
    assert!(server.dataset_by_name("one").is_none());

    server.set_faults(FaultPlan::new(0, vec![FaultRule::once(None, Fault::ServerErrorAfter)]));
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "two"}))).await.0, 500);
    assert!(server.dataset_by_name("two").is_some());

    server.clear_faults();
    let (status, body) = conn.api("POST", "/datasets", Some(json!({"name": "two"}))).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("dataset_name_duplicate")));
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let rule = FaultRule::once(None, Fault::TooManyRequests { retry_after: Some("7".into()) });
    let server =
        DifyServer::builder().faults(FaultPlan::new(0, vec![rule])).start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    let resp = conn.call("GET", "/datasets", None).await.expect("answers");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("7"));
    assert_eq!(conn.api("GET", "/datasets", None).await.0, 200, "limit 1");
}

async fn run_plan(seed: u64) -> Vec<u16> {
    let plan = FaultPlan::new(
        seed,
        vec![
            FaultRule::sometimes(
                Some(routes::LIST_DATASETS),
                Fault::TooManyRequests { retry_after: None },
                0.2,
            ),
            FaultRule::sometimes(None, Fault::ServerErrorBefore, 0.3).with_skip(3),
        ],
    );
    let server = DifyServer::builder().faults(plan).start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    let mut statuses = Vec::new();
    for i in 0..60 {
        let (status, _) = if i % 2 == 0 {
            conn.api("GET", "/datasets", None).await
        } else {
            conn.api("POST", "/datasets", Some(json!({"name": format!("kb-{i}")}))).await
        };
        statuses.push(status);
    }
    statuses
}

#[tokio::test]
async fn seeded_plans_repeat() {
    let first = run_plan(11).await;
    assert_eq!(first, run_plan(11).await);
    assert!(first[..3].iter().all(|s| *s != 500), "skip lets the first three through");
    for status in [200, 429, 500] {
        assert!(first.contains(&status), "{status} occurs in {first:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn cloud_rate_limit_counts_rejected_calls() {
    let server = DifyServer::builder().cloud_rate_limit(Some(2)).start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "a"}))).await.0, 200);
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "b"}))).await.0, 200);
    let (status, body) = conn.api("POST", "/datasets", Some(json!({"name": "c"}))).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(
        body["message"],
        "Sorry, you have reached the knowledge base request rate limit of your subscription."
    );
    assert_eq!(conn.api("GET", "/datasets", None).await.0, 200, "reads are not counted");

    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "d"}))).await.0, 403);
    tokio::time::advance(Duration::from_secs(31)).await;
    // The three calls at t=0 left the window; the rejected one at t=30 did not.
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "e"}))).await.0, 200);
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "f"}))).await.0, 403);
}

#[tokio::test(start_paused = true)]
async fn cloud_rate_limit_can_be_switched_at_runtime() {
    let server = DifyServer::start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    for name in ["a", "b", "c"] {
        assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": name}))).await.0, 200);
    }

    server.set_cloud_rate_limit(Some(1));
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "d"}))).await.0, 200, "fresh");
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "e"}))).await.0, 403);

    server.set_cloud_rate_limit(None);
    assert_eq!(conn.api("POST", "/datasets", Some(json!({"name": "f"}))).await.0, 200);
}

#[tokio::test]
async fn cloud_rate_limit_fault_answers_on_any_route() {
    let server = DifyServer::start().await.expect("starts");
    server.set_faults(FaultPlan::new(
        1,
        vec![FaultRule::once(Some(routes::LIST_DATASETS), Fault::CloudRateLimit)],
    ));
    let mut conn = Conn::open(&server).await;

    let (status, body) = conn.api("GET", "/datasets", None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    assert!(body["message"].as_str().unwrap_or("").contains("rate limit"), "{body}");
    assert_eq!(conn.api("GET", "/datasets", None).await.0, 200);
    assert_eq!(server.stats().faults("cloud_rate_limit"), 1);
}

#[tokio::test]
async fn kept_alive_connection_closes_as_the_next_request_arrives() {
    let server = DifyServer::start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    let ds = new_dataset(&mut conn, "race").await;
    server.close_idle_on_arrival(1);

    let lost = within(conn.call("GET", &format!("/datasets/{ds}"), None)).await;

    assert!(lost.is_none(), "closed without an answer");
    let stats = server.stats();
    assert_eq!(stats.connections_closed_on_arrival, 1);
    assert_eq!(stats.requests_total, 1, "the request was never read");
    // Only kept-alive connections are affected, and only as often as armed.
    server.close_idle_on_arrival(1);
    let mut fresh = Conn::open(&server).await;
    assert_eq!(fresh.api("GET", &format!("/datasets/{ds}"), None).await.0, 200);
    assert!(within(fresh.call("GET", &format!("/datasets/{ds}"), None)).await.is_none());
    let mut third = Conn::open(&server).await;
    assert_eq!(third.api("GET", &format!("/datasets/{ds}"), None).await.0, 200);
    assert_eq!(third.api("GET", &format!("/datasets/{ds}"), None).await.0, 200);
    assert_eq!(server.stats().connections_closed_on_arrival, 2);
}

#[tokio::test(start_paused = true)]
async fn indexing_delay_keeps_documents_waiting() {
    let server = DifyServer::builder()
        .indexing_delay(Duration::from_secs(10))
        .start()
        .await
        .expect("starts");
    let mut conn = Conn::open(&server).await;
    let ds = new_dataset(&mut conn, "kb").await;
    let (doc, batch) = new_document(&mut conn, &ds, "a.md", "alpha").await;

    let (_, status) =
        conn.api("GET", &format!("/datasets/{ds}/documents/{batch}/indexing-status"), None).await;
    assert_eq!(status["data"][0]["indexing_status"], "waiting");
    let update = json!({"name": "a.md", "text": "beta"});
    let (code, body) = conn
        .api(
            "POST",
            &format!("/datasets/{ds}/documents/{doc}/update-by-text"),
            Some(update.clone()),
        )
        .await;
    assert_eq!((code, body["message"].as_str()), (400, Some("Document is not available")));

    tokio::time::advance(Duration::from_secs(11)).await;
    let (_, detail) = conn.api("GET", &format!("/datasets/{ds}/documents/{doc}"), None).await;
    assert_eq!(
        (detail["indexing_status"].as_str(), detail["display_status"].as_str()),
        (Some("completed"), Some("available"))
    );
    let (code, body) = conn
        .api("POST", &format!("/datasets/{ds}/documents/{doc}/update-by-text"), Some(update))
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["batch"].as_str(), Some(batch.as_str()), "update keeps the batch");

    server.complete_all_indexing();
    assert_eq!(server.documents(&ds)[0].indexing_status, "completed");
    assert_eq!(server.documents(&ds)[0].text, "beta");
}

#[tokio::test]
async fn same_name_create_replaces_an_enabled_document_in_place() {
    let server = DifyServer::start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    let ds = new_dataset(&mut conn, "kb").await;
    let (first, batch1) = new_document(&mut conn, &ds, "page", "one").await;
    let (second, batch2) = new_document(&mut conn, &ds, "page", "two").await;
    assert_eq!(first, second);
    assert_ne!(batch1, batch2);
    let old =
        conn.api("GET", &format!("/datasets/{ds}/documents/{batch1}/indexing-status"), None).await;
    assert_eq!(old.0, 404);
    let docs = server.documents(&ds);
    assert_eq!((docs.len(), docs[0].write_count, docs[0].text.as_str()), (1, 2, "two"));

    server.set_document_enabled(&ds, &first, false);
    let (third, _) = new_document(&mut conn, &ds, "page", "three").await;
    assert_ne!(third, first, "a disabled namesake is not replaced");
    assert_eq!(server.documents(&ds).len(), 2);

    let long = "n".repeat(300);
    new_document(&mut conn, &ds, &long, "x").await;
    assert!(server.documents(&ds).iter().any(|d| d.name.chars().count() == 200));
}

fn multipart(boundary: &str, data: Option<&str>, file: Option<(&str, &str)>) -> Vec<u8> {
    let mut body = String::new();
    if let Some(d) = data {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n{d}\r\n"
        ));
    }
    if let Some((name, contents)) = file {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: text/plain\r\n\r\n{contents}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

#[tokio::test]
async fn documents_can_be_created_and_updated_from_files() {
    let server = DifyServer::start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    let ds = new_dataset(&mut conn, "kb").await;
    let ct = "multipart/form-data; boundary=XyZ";
    let data = r#"{"indexing_technique":"economy","process_rule":{"mode":"automatic"}}"#;

    let body = multipart("XyZ", Some(data), Some(("notes.md", "# Notes\n\nhello otters")));
    conn.send_raw("POST", &format!("/datasets/{ds}/document/create-by-file"), Some(ct), &body)
        .await;
    let created = conn.read().await.expect("answers");
    assert_eq!(created.status, 200, "{}", created.json());
    let id = created.json()["document"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(server.documents(&ds)[0].name, "notes.md");

    let body = multipart("XyZ", None, Some(("notes.md", "new otters")));
    conn.send_raw("PATCH", &format!("/datasets/{ds}/documents/{id}"), Some(ct), &body).await;
    assert_eq!(conn.read().await.map(|r| r.status), Some(200));
    assert_eq!(server.documents(&ds)[0].text, "new otters");

    let body = multipart("XyZ", Some(data), None);
    conn.send_raw("POST", &format!("/datasets/{ds}/document/create-by-file"), Some(ct), &body)
        .await;
    let missing = conn.read().await.expect("answers");
    assert_eq!((missing.status, missing.json()["code"].as_str()), (400, Some("no_file_uploaded")));
}

#[tokio::test]
async fn keyword_retrieval_finds_enabled_documents_only() {
    let server = DifyServer::start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    let ds = new_dataset(&mut conn, "kb").await;
    let (doc, _) =
        new_document(&mut conn, &ds, "a", "Violet otters swim.\n\nGrey herons wait.").await;
    new_document(&mut conn, &ds, "b", "Nothing relevant here.").await;
    let query = |q: &str, method: &str| {
        json!({"query": q, "retrieval_model": {
        "search_method": method, "reranking_enable": false, "top_k": 3,
        "score_threshold_enabled": false}})
    };

    let (status, body) = conn
        .api(
            "POST",
            &format!("/datasets/{ds}/retrieve"),
            Some(query("violet otters", "keyword_search")),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["records"][0]["segment"]["document_id"].as_str(), Some(doc.as_str()));
    let semantic = conn
        .api(
            "POST",
            &format!("/datasets/{ds}/hit-testing"),
            Some(query("otters", "semantic_search")),
        )
        .await;
    assert_eq!(semantic.0, 400);

    server.set_document_enabled(&ds, &doc, false);
    let (_, body) = conn
        .api(
            "POST",
            &format!("/datasets/{ds}/retrieve"),
            Some(query("violet otters", "keyword_search")),
        )
        .await;
    assert_eq!(body["records"], json!([]));
    assert_eq!(server.stats().requests(routes::RETRIEVE), 3, "the alias counts as retrieve");
}

#[tokio::test]
async fn metadata_assignment_stops_at_the_first_failure() {
    let server = DifyServer::start().await.expect("starts");
    let mut conn = Conn::open(&server).await;
    let ds = new_dataset(&mut conn, "kb").await;
    let (d1, _) = new_document(&mut conn, &ds, "one", "x").await;
    let (d2, _) = new_document(&mut conn, &ds, "two", "y").await;
    let (status, field) = conn
        .api(
            "POST",
            &format!("/datasets/{ds}/metadata"),
            Some(json!({"type": "string", "name": "url"})),
        )
        .await;
    assert_eq!(status, 201);
    let item = json!([{"id": field["id"], "name": "url", "value": "https://example.test/"}]);
    let ops = json!({"operation_data": [
        {"document_id": d1, "metadata_list": item},
        {"document_id": "00000000-0000-4000-8000-000000000000", "metadata_list": item},
        {"document_id": d2, "metadata_list": item}
    ]});
    let (status, body) =
        conn.api("POST", &format!("/datasets/{ds}/documents/metadata"), Some(ops)).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("Document not found.")));

    let docs = server.documents(&ds);
    let by_id = |id: &str| {
        docs.iter().find(|d| d.id == id).map(|d| d.doc_metadata.clone()).unwrap_or_default()
    };
    assert_eq!(by_id(&d1).get("url"), Some(&json!("https://example.test/")));
    assert!(by_id(&d2).is_empty(), "later operations are not attempted");

    let (_, list) = conn.api("GET", &format!("/datasets/{ds}/metadata"), None).await;
    assert_eq!(list["doc_metadata"][0]["count"], 1);
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let server = DifyServer::start().await.expect("starts");
    let client =
        Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Empty<bytes::Bytes>>();
    let request = http::Request::get(format!("{}/datasets", server.base_url()))
        .header("authorization", format!("Bearer {}", server.api_key()))
        .body(Empty::new())
        .expect("request builds");
    let resp = client.request(request).await.expect("h2 answers");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(body.starts_with(b"{\"data\""));
}
