//! Transport: the accept loop, connections, and the per-request pipeline.
//!
//! The accept loop is ours (not a framework's) because tests need to see and
//! disturb the transport: each accepted socket is counted; each connection
//! runs under a `select!` that can close it when it sits idle past the
//! configured keep-alive, when a fault asks to drop it, or when the server
//! shuts down. hyper-util's auto builder serves HTTP/1.1 and h2c alike.
//!
//! The socket is wrapped ([`ArrivalWatch`]) so that a test can arm the
//! keep-alive race: a connection that already served a request is closed
//! at the moment the next request arrives on it, before a byte of that
//! request is read.
//!
//! The pipeline for one request: route → fault → auth → dataset lookup →
//! rate limit → handler → post-write fault → latency → response.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::faults::{Fault, FaultEngine, FaultPlan};
use super::reply::{FilePart, Form, Reply, ReplyBody, Req};
use super::routes::{self, Routed};
use super::store::Store;
use super::{Config, ServerStats};

/// State shared by the accept loop, every connection and the handle.
///
/// All locks are `std::sync::Mutex`: every critical section is short and
/// synchronous, and no guard is ever held across an `.await`, so an async
/// mutex would only add overhead.
pub(crate) struct Shared {
    pub(crate) config: Config,
    store: Mutex<Store>,
    stats: Mutex<ServerStats>,
    faults: Mutex<Option<FaultEngine>>,
    /// The cloud rate limit in force; starts as configured, settable later.
    cloud_rate_limit: Mutex<Option<u32>>,
    rate_window: Mutex<VecDeque<Instant>>,
    /// Kept-alive connections still to close as their next request arrives.
    close_on_arrival: AtomicU64,
}

/// A poisoned lock only means another test thread panicked mid-update; the
/// data is still the best state there is, so keep serving it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut lock(&self.store))
    }

    pub(crate) fn stats_snapshot(&self) -> ServerStats {
        lock(&self.stats).clone()
    }

    pub(crate) fn reset_stats(&self) {
        *lock(&self.stats) = ServerStats::default();
    }

    pub(crate) fn set_faults(&self, plan: Option<FaultPlan>) {
        *lock(&self.faults) = plan.map(FaultEngine::new);
    }

    /// Changes the cloud rate limit; the window starts empty.
    pub(crate) fn set_cloud_rate_limit(&self, per_minute: Option<u32>) {
        let mut limit = lock(&self.cloud_rate_limit);
        lock(&self.rate_window).clear();
        *limit = per_minute;
    }

    pub(crate) fn arm_close_on_arrival(&self, times: u64) {
        self.close_on_arrival.store(times, Ordering::SeqCst);
    }

    /// Takes one armed close, if any is left.
    fn take_close_on_arrival(&self) -> bool {
        self.close_on_arrival
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn close_on_arrival_armed(&self) -> bool {
        self.close_on_arrival.load(Ordering::SeqCst) > 0
    }

    fn count(&self, f: impl FnOnce(&mut ServerStats)) {
        f(&mut lock(&self.stats));
    }
}

/// Binds the listener and spawns the accept loop.
pub(crate) async fn spawn(
    config: Config,
    faults: Option<FaultPlan>,
    shutdown: CancellationToken,
) -> std::io::Result<(Arc<Shared>, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let store = Store::new(config.seed, config.indexing_delay);
    let cloud_rate_limit = Mutex::new(config.cloud_rate_limit);
    let shared = Arc::new(Shared {
        config,
        store: Mutex::new(store),
        stats: Mutex::new(ServerStats::default()),
        faults: Mutex::new(faults.map(FaultEngine::new)),
        cloud_rate_limit,
        rate_window: Mutex::new(VecDeque::new()),
        close_on_arrival: AtomicU64::new(0),
    });

    tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown));
    tracing::debug!(%addr, "dify test server listening");
    Ok((shared, addr))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                shared.count(|s| s.connections_accepted += 1);
                tokio::spawn(serve_connection(stream, Arc::clone(&shared), shutdown.clone()));
            }
            Err(err) => {
                // Transient (e.g. too many open files): back off briefly.
                tracing::debug!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Per-connection bookkeeping the request handlers update.
struct ConnState {
    /// Requests currently being handled; the idle clock only runs at zero.
    in_flight: AtomicUsize,
    /// Requests this connection has received.
    served: AtomicU64,
    /// Last time a request started or finished.
    last_activity: Mutex<Instant>,
    /// Wakes the idle watcher when activity happens.
    activity: Notify,
    /// Set by a drop fault: close the socket without answering.
    kill: CancellationToken,
}

impl ConnState {
    fn touch(&self) {
        *lock(&self.last_activity) = Instant::now();
        self.activity.notify_one();
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let conn_state = Arc::new(ConnState {
        in_flight: AtomicUsize::new(0),
        served: AtomicU64::new(0),
        last_activity: Mutex::new(Instant::now()),
        activity: Notify::new(),
        kill: CancellationToken::new(),
    });

    let idle_timeout = shared.config.idle_timeout;
    let stats_handle = Arc::clone(&shared);
    let svc_state = Arc::clone(&conn_state);
    let service = service_fn(move |req| handle(req, Arc::clone(&shared), Arc::clone(&svc_state)));
    let builder = auto::Builder::new(TokioExecutor::new());
    let io =
        ArrivalWatch { stream, conn: Arc::clone(&conn_state), shared: Arc::clone(&stats_handle) };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);

    tokio::select! {
        _ = conn.as_mut() => {}
        () = shutdown.cancelled() => {}
        () = conn_state.kill.cancelled() => {}
        () = idle_watch(Arc::clone(&conn_state), idle_timeout) => {
            // Closed the way gunicorn does: no response, no warning.
            stats_handle.count(|s| s.connections_closed_idle += 1);
        }
    }
}

/// The connection's socket, watched for the arrival of a request on an idle
/// kept-alive connection.
///
/// When a close is armed ([`DifyServer::close_idle_on_arrival`](super::DifyServer::close_idle_on_arrival)),
/// the connection has served a request and none is in flight, a read that
/// finds new bytes waiting (peeked, not consumed) closes the connection
/// instead of reading them. The unread request makes the kernel answer with
/// a reset; the client has written its request and gets no reply, which is
/// what it meets when a keep-alive timer fires just as it reuses the
/// connection.
struct ArrivalWatch {
    stream: TcpStream,
    conn: Arc<ConnState>,
    shared: Arc<Shared>,
}

impl ArrivalWatch {
    /// `Ready(true)` when the connection was just condemned.
    fn poll_arrival(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let idle_reuse = self.conn.served.load(Ordering::SeqCst) > 0
            && self.conn.in_flight.load(Ordering::SeqCst) == 0;
        if !idle_reuse || !self.shared.close_on_arrival_armed() {
            return Poll::Ready(false);
        }
        let mut first = [0u8; 1];
        let mut peeked = ReadBuf::new(&mut first);
        match self.stream.poll_peek(cx, &mut peeked) {
            Poll::Pending => Poll::Pending,
            // Bytes of a new request are waiting: close before reading them.
            Poll::Ready(Ok(n)) if n > 0 && self.shared.take_close_on_arrival() => {
                self.shared.count(|s| s.connections_closed_on_arrival += 1);
                self.conn.kill.cancel();
                Poll::Ready(true)
            }
            // End of stream or an error: let the normal read report it.
            Poll::Ready(_) => Poll::Ready(false),
        }
    }
}

impl AsyncRead for ArrivalWatch {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.conn.kill.is_cancelled() {
            // Condemned: the connection task drops the socket at its next
            // poll, which may come after hyper's.
            return Poll::Pending;
        }
        match this.poll_arrival(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(true) => Poll::Pending,
            Poll::Ready(false) => Pin::new(&mut this.stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ArrivalWatch {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Resolves once the connection has had no request in flight for `timeout`.
async fn idle_watch(state: Arc<ConnState>, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        if state.in_flight.load(Ordering::SeqCst) > 0 {
            // The idle clock stops while a request is handled and restarts
            // when it ends (which touches `last_activity` and notifies).
            // Re-arming a deadline that has passed instead would spin.
            state.activity.notified().await;
            continue;
        }
        let deadline = *lock(&state.last_activity) + timeout;
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                let busy = state.in_flight.load(Ordering::SeqCst) > 0;
                let last = *lock(&state.last_activity);
                if !busy && Instant::now() >= last + timeout {
                    return;
                }
            }
            () = state.activity.notified() => {}
        }
    }
}

/// Decrements the in-flight count however the request future ends.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

type HttpResponse = Response<Full<Bytes>>;

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
) -> Result<HttpResponse, std::convert::Infallible> {
    conn.in_flight.fetch_add(1, Ordering::SeqCst);
    conn.served.fetch_add(1, Ordering::SeqCst);
    conn.touch();
    let _guard = InFlight(Arc::clone(&conn));
    // `Connection` is a hop-by-hop header that HTTP/2 forbids.
    let http1 = req.version() < http::Version::HTTP_2;

    match process(req, &shared).await {
        Outcome::Respond(reply) => {
            if !shared.config.latency.is_zero() {
                tokio::time::sleep(shared.config.latency).await;
            }
            shared.count(|s| *s.responses_by_status.entry(reply.status).or_default() += 1);
            Ok(to_response(reply, http1))
        }
        Outcome::Drop => {
            conn.kill.cancel();
            // Never answer: the connection task drops the socket.
            std::future::pending().await
        }
    }
}

enum Outcome {
    Respond(Reply),
    Drop,
}

async fn process(req: Request<Incoming>, shared: &Shared) -> Outcome {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let routed = routes::route(&method, &path);
    let route = match &routed {
        Routed::Found { route, .. } => Some(*route),
        _ => None,
    };
    shared.count(|s| {
        s.requests_total += 1;
        if let Some(r) = route {
            *s.requests_by_route.entry(r.to_owned()).or_default() += 1;
        }
    });

    // The body is always read first, as a WSGI server does: answering
    // without reading it would make hyper close the connection.
    let parsed = read_request(req, route.unwrap_or(""), &routed, path).await;

    let fault = decide_fault(shared, route);
    if let Some(outcome) = fault_before(fault.as_ref()).await {
        return outcome;
    }

    let reply = match (routed, parsed) {
        (Routed::NotFound, _) => Reply::html_not_found(),
        (Routed::MethodNotAllowed, _) => Reply::method_not_allowed(),
        (Routed::Found { .. }, Ok(req)) => dispatch(shared, req),
        (Routed::Found { .. }, Err(reply)) => reply,
    };

    match fault {
        Some(Fault::DropAfter) => Outcome::Drop,
        Some(Fault::ServerErrorAfter) => Outcome::Respond(Reply::internal_error()),
        _ => Outcome::Respond(reply),
    }
}

fn decide_fault(shared: &Shared, route: Option<&str>) -> Option<Fault> {
    let fault = lock(&shared.faults).as_mut().and_then(|e| e.decide(route))?;
    shared.count(|s| *s.faults_injected.entry(fault.kind().to_owned()).or_default() += 1);
    tracing::debug!(kind = fault.kind(), ?route, "injecting fault");
    Some(fault)
}

/// Acts on the faults that strike before the handler; `None` lets the
/// request proceed (after a stall, if that was the fault).
async fn fault_before(fault: Option<&Fault>) -> Option<Outcome> {
    match fault? {
        Fault::Stall(d) => {
            tokio::time::sleep(*d).await;
            None
        }
        Fault::DropBefore => Some(Outcome::Drop),
        Fault::ServerErrorBefore => Some(Outcome::Respond(Reply::internal_error())),
        Fault::TooManyRequests { retry_after } => {
            Some(Outcome::Respond(Reply::too_many(retry_after.clone())))
        }
        Fault::CloudRateLimit => Some(Outcome::Respond(Reply::cloud_rate_limited())),
        Fault::ServerErrorAfter | Fault::DropAfter => None,
    }
}

async fn read_request(
    req: Request<Incoming>,
    route: &'static str,
    routed: &Routed,
    path: String,
) -> Result<Req, Reply> {
    let params = match routed {
        Routed::Found { params, .. } => params.clone(),
        _ => Vec::new(),
    };
    let (parts, body) = req.into_parts();
    let header_str = |name: header::HeaderName| {
        parts.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let authorization = header_str(header::AUTHORIZATION);
    let content_type = header_str(header::CONTENT_TYPE);
    let query = parts
        .uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(Reply::bad_request()),
    };
    let form = parse_form(content_type.as_deref(), &body).await?;
    Ok(Req { route, params, path, query, authorization, content_type, body, form })
}

/// Parses a `multipart/form-data` body; other bodies have no form.
async fn parse_form(content_type: Option<&str>, body: &Bytes) -> Result<Option<Form>, Reply> {
    let Some(ct) =
        content_type.filter(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"))
    else {
        return Ok(None);
    };
    let boundary = multer::parse_boundary(ct).map_err(|_| Reply::bad_request())?;
    let chunk: Result<Bytes, std::io::Error> = Ok(body.clone());
    let mut multipart = multer::Multipart::new(futures_util::stream::iter([chunk]), boundary);

    let mut form = Form::default();
    while let Some(field) = multipart.next_field().await.map_err(|_| Reply::bad_request())? {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let data = field.bytes().await.map_err(|_| Reply::bad_request())?;
        if file_name.is_some() {
            form.files.push(FilePart { field: name, file_name, data });
        } else {
            form.fields.push((name, String::from_utf8_lossy(&data).into_owned()));
        }
    }
    Ok(Some(form))
}

fn dispatch(shared: &Shared, req: Req) -> Reply {
    if let Err(reply) = check_auth(&shared.config.api_key, req.authorization.as_deref()) {
        return reply;
    }
    let now = Instant::now();
    let mut store = lock(&shared.store);
    if let Err(reply) = store.check_dataset(&req) {
        return reply;
    }
    if let Err(reply) = check_rate(shared, req.route, now) {
        return reply;
    }
    store.handle(&req, now)
}

fn check_auth(key: &str, header: Option<&str>) -> Result<(), Reply> {
    let header = header.unwrap_or("").trim();
    let Some((scheme, token)) = header.split_once(' ') else {
        return Err(Reply::unauthorized(
            "Authorization header must be provided and start with 'Bearer'",
        ));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Reply::unauthorized("Authorization scheme must be 'Bearer'"));
    }
    if token.trim() != key {
        return Err(Reply::unauthorized("Access token is invalid"));
    }
    Ok(())
}

const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Dify Cloud's sliding-window limit: record first, then compare, so
/// rejected calls keep the window full.
fn check_rate(shared: &Shared, route: &str, now: Instant) -> Result<(), Reply> {
    let Some(limit) = *lock(&shared.cloud_rate_limit) else {
        return Ok(());
    };
    if !routes::is_rate_counted(route) {
        return Ok(());
    }
    let mut window = lock(&shared.rate_window);
    while window.front().is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW) {
        window.pop_front();
    }
    window.push_back(now);
    if window.len() > limit as usize {
        return Err(Reply::cloud_rate_limited());
    }
    Ok(())
}

fn to_response(reply: Reply, http1: bool) -> HttpResponse {
    let (content_type, body) = match reply.body {
        ReplyBody::Json(v) => ("application/json", Bytes::from(format!("{v}\n"))),
        ReplyBody::Html(s) => ("text/html; charset=utf-8", Bytes::from_static(s.as_bytes())),
        ReplyBody::Empty => ("application/json", Bytes::new()),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if http1 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    headers.insert("x-version", HeaderValue::from_static("1.13.2"));
    headers.insert(header::SERVER, HeaderValue::from_static("dify-test-server"));
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    resp
}
