//! Connection pooling, measured against the test server on loopback.
//!
//! Four ways to make the same 1,000 sequential `GET /datasets/{id}` calls:
//! - pooled: one `DifyClient` (typed decoding, retries, metrics included);
//! - fresh: a `DifyClient` whose pool keeps no idle connection, so every
//!   call opens a new TCP connection;
//! - bare: a hyper HTTP/1 connection over one `TcpStream`, reading raw
//!   bytes: the floor any client could reach;
//! - reqwest: a `reqwest::Client` with `DifyClient`'s transport settings
//!   (timeouts, pool) reading raw bytes, to show how much of the gap to the
//!   floor is the HTTP stack and how much this crate.
//!
//! Everything runs twice: on a two-worker multi-thread runtime (as the
//! binary does) and on a current-thread runtime.
//!
//! The variants run in alternating rounds in one process so that machine
//! noise hits them alike; the median round of each is reported, with the
//! server's connection counter, and the ratios pooled/bare and fresh/pooled.
//!
//! Run with `cargo bench -p dify-client --bench pool`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use dify_client::{CreateDatasetRequest, DifyClient};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use test_support::dify::DifyServer;

const CALLS: usize = 1_000;
const ROUNDS: usize = 11;

#[derive(Default)]
struct Samples {
    times: Vec<Duration>,
    connections: Vec<u64>,
}

impl Samples {
    fn median(&self) -> (Duration, u64) {
        let mut times = self.times.clone();
        times.sort();
        let mut connections = self.connections.clone();
        connections.sort_unstable();
        (times[times.len() / 2], connections[connections.len() / 2])
    }
}

fn main() {
    // Both flavours: the multi-threaded one is what the binary uses; the
    // single-threaded one shows how much of the gap is cross-thread wake-ups.
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build();
    for (name, runtime) in
        [("multi-thread runtime, 2 workers", multi), ("current-thread runtime", single)]
    {
        let runtime = runtime.unwrap_or_else(|e| panic!("cannot start tokio: {e}"));
        println!("== {name}");
        runtime.block_on(run());
        println!();
    }
}

async fn run() {
    let server =
        DifyServer::start().await.unwrap_or_else(|e| panic!("cannot start the test server: {e}"));
    let setup = client(&server, true);
    let dataset = setup.create_dataset(&CreateDatasetRequest::new("bench")).await.expect("dataset");

    let mut results: [Samples; 4] = Default::default();
    for round in 0..=ROUNDS {
        for (index, samples) in results.iter_mut().enumerate() {
            // New clients each round, built before the clock starts, so
            // each round's connection count stands on its own.
            let pooled = client(&server, true);
            let fresh = client(&server, false);
            server.reset_stats();
            let started = Instant::now();
            match index {
                0 => client_loop(&pooled, &dataset.id).await,
                1 => client_loop(&fresh, &dataset.id).await,
                2 => bare_loop(&server, &dataset.id).await,
                _ => reqwest_loop(&server, &dataset.id).await,
            }
            let took = started.elapsed();
            // Round 0 warms up caches and the allocator.
            if round > 0 {
                samples.times.push(took);
                samples.connections.push(server.stats().connections_accepted);
            }
        }
    }
    report(&results);
    report_decoding(&server, &dataset.id).await;
}

fn client(server: &DifyServer, pooled: bool) -> DifyClient {
    let builder = DifyClient::builder(server.base_url(), server.api_key());
    let builder = if pooled { builder } else { builder.pool_max_idle_per_host(0) };
    builder.build().expect("client")
}

/// How much of a pooled call is typed decoding of the reply, which the bare
/// loop skips.
async fn report_decoding(server: &DifyServer, dataset_id: &str) {
    let body = raw_dataset(server, dataset_id).await;
    let started = Instant::now();
    for _ in 0..CALLS {
        let dataset: dify_client::Dataset = serde_json::from_slice(&body).expect("decode");
        std::hint::black_box(dataset);
    }
    let per_call = started.elapsed().as_secs_f64() * 1e6 / CALLS as f64;
    println!("typed decoding of the {} byte reply alone: {per_call:.1} us/call", body.len());
}

async fn raw_dataset(server: &DifyServer, dataset_id: &str) -> Bytes {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .get(format!("{}/datasets/{dataset_id}", server.base_url()))
        .bearer_auth(server.api_key())
        .send()
        .await
        .expect("send");
    response.bytes().await.expect("body")
}

async fn client_loop(client: &DifyClient, dataset_id: &str) {
    for _ in 0..CALLS {
        client.get_dataset(dataset_id).await.expect("get dataset");
    }
}

async fn bare_loop(server: &DifyServer, dataset_id: &str) {
    let stream = tokio::net::TcpStream::connect(server.addr()).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let uri = format!("{}/datasets/{dataset_id}", server.base_url());
    let auth = format!("Bearer {}", server.api_key());
    for _ in 0..CALLS {
        let request = http::Request::get(&uri)
            .header(http::header::HOST, server.addr().to_string())
            .header(http::header::AUTHORIZATION, &auth)
            .body(Empty::<Bytes>::new())
            .expect("request");
        sender.ready().await.expect("connection ready");
        let response = sender.send_request(request).await.expect("send");
        assert!(response.status().is_success());
        response.into_body().collect().await.expect("body");
    }
}

async fn reqwest_loop(server: &DifyServer, dataset_id: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The same transport settings as `DifyClient`'s defaults, so the
    // difference between the two is the client's own work per call.
    let client = reqwest::Client::builder()
        .timeout(dify_client::DEFAULT_TIMEOUT)
        .connect_timeout(dify_client::DEFAULT_CONNECT_TIMEOUT)
        .pool_idle_timeout(dify_client::DEFAULT_POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(dify_client::DEFAULT_POOL_MAX_IDLE_PER_HOST)
        .tcp_nodelay(true)
        .build()
        .expect("reqwest client");
    let url = format!("{}/datasets/{dataset_id}", server.base_url());
    for _ in 0..CALLS {
        let response = client.get(&url).bearer_auth(server.api_key()).send().await.expect("send");
        assert!(response.status().is_success());
        response.bytes().await.expect("body");
    }
}

fn report(results: &[Samples; 4]) {
    let names = [
        "pooled DifyClient",
        "fresh connection per call",
        "bare hyper keep-alive",
        "reqwest, same settings",
    ];
    println!("{CALLS} sequential GET /datasets/{{id}} calls, median of {ROUNDS} rounds");
    println!("{:<28} {:>10} {:>10} {:>12}", "variant", "wall ms", "calls/s", "connections");
    // Connections: opened during the round, as counted by the server.
    let medians: Vec<_> = results.iter().map(Samples::median).collect();
    for (name, (time, connections)) in names.iter().zip(&medians) {
        let rate = CALLS as f64 / time.as_secs_f64();
        println!("{name:<28} {:>10.1} {rate:>10.0} {connections:>12}", time.as_secs_f64() * 1e3);
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("pooled / bare  = {:.2}x (target <= 1.3x)", ratio(medians[0].0, medians[2].0));
    println!("fresh / pooled = {:.2}x", ratio(medians[1].0, medians[0].0));
    println!("reqwest / bare = {:.2}x (the HTTP stack alone)", ratio(medians[3].0, medians[2].0));
}
