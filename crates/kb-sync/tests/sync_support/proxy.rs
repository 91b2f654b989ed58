//! A small HTTP/1.1 proxy between the sink's client and the Dify test
//! server, for what the server's fault plan cannot express: answering one
//! request with a made-up error (a batch Dify refuses for one document), or
//! letting a write reach the server and then holding its answer forever,
//! which is a process killed after Dify applied a call and before the sink
//! could record it.
//!
//! Each request is forwarded on a fresh upstream connection; the client's
//! connection is kept alive. Only what the sink sends is understood:
//! `Content-Length` bodies, no chunked requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Pass it on and its answer back.
    Forward,
    /// Answer with this status and JSON body; the server never sees it.
    Answer {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: String,
    },
    /// Pass it on, then never deliver the answer.
    ForwardAndHold,
    /// Neither pass it on nor answer.
    Hold,
}

/// Decides each request; the first argument counts requests from 0 in the
/// order they reach the proxy.
pub type Rule = Arc<dyn Fn(u64, &Request) -> Verdict + Send + Sync>;

/// A running proxy; dropping it closes every connection.
pub struct Proxy {
    addr: SocketAddr,
    held: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` in front of `upstream`.
    pub async fn start(upstream: SocketAddr, rule: Rule) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(AtomicU64::new(0));
        let counters = (seen, held.clone());
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let (rule, counters) = (rule.clone(), counters.clone());
                connections.spawn(serve(client, upstream, rule, counters));
                while connections.try_join_next().is_some() {}
            }
        });
        Proxy { addr, held, task }
    }

    /// The API base URL through the proxy.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Answers the server gave that were held back.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    rule: Rule,
    (seen, held): (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    let mut buffer = Vec::new();
    while let Some((head, body)) = read_message(&mut client, &mut buffer, true).await {
        let first = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
        let mut parts = first.split_whitespace();
        let request = Request {
            method: parts.next().unwrap_or_default().to_owned(),
            path: parts.next().unwrap_or_default().to_owned(),
            body,
        };
        let index = seen.fetch_add(1, Ordering::SeqCst);
        match rule(index, &request) {
            Verdict::Forward => {
                let Some(answer) = forward(upstream, &head, &request.body).await else { return };
                if client.write_all(&answer).await.is_err() {
                    return;
                }
            }
            Verdict::Answer { status, body } => {
                let answer = format!(
                    "HTTP/1.1 {status} Refused\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: keep-alive\r\n\r\n{body}",
                    body.len()
                );
                if client.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            Verdict::ForwardAndHold => {
                let _ = forward(upstream, &head, &request.body).await;
                held.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            Verdict::Hold => std::future::pending::<()>().await,
        }
    }
}

/// Sends one request upstream and reads the whole answer; `None` when the
/// server dropped the connection.
async fn forward(upstream: SocketAddr, head: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await.ok()?;
    server.write_all(head).await.ok()?;
    server.write_all(body).await.ok()?;
    let mut buffer = Vec::new();
    let (head, body) = read_message(&mut server, &mut buffer, false).await?;
    let mut answer = head;
    answer.extend_from_slice(&body);
    Some(answer)
}

/// Reads one message (head with its blank line, and body) from `stream`,
/// keeping bytes past it in `buffer`.
async fn read_message(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    request: bool,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buffer).await?;
    };
    let head: Vec<u8> = buffer.drain(..end).collect();
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status: u16 = if request {
        0
    } else {
        text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    };
    let length = text
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    let length = match length {
        Some(length) => length,
        None if request || status == 204 || status == 304 || status < 200 => 0,
        // No length: the body runs to the end of the connection.
        None => {
            while read_more(stream, buffer).await.is_some() {}
            buffer.len()
        }
    };
    while buffer.len() < length {
        read_more(stream, buffer).await?;
    }
    let body = buffer.drain(..length).collect();
    Some((head, body))
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0_u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(read) => {
            buffer.extend_from_slice(&chunk[..read]);
            Some(())
        }
    }
}
