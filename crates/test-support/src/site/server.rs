//! Serving a [`TestSite`] with hyper, and the handle tests hold.
//!
//! Routes sit behind a std `RwLock` (read on every request, written only by
//! the test's setters, never held across an await). Counters are recorded
//! before the route answers, so a stalled request still counts. Body bytes
//! are counted per path as they are handed to hyper for writing, so a
//! streamed body the client abandons counts only what was sent.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bytes::Bytes;
use futures_util::stream;
use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{Body, Generator, Route, TestSite};

type ResponseBody = BoxBody<Bytes, Infallible>;

/// A site being served on `127.0.0.1`. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSite {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: CancellationToken,
}

struct State {
    routes: RwLock<HashMap<String, Route>>,
    generators: Vec<Generator>,
    requests: Mutex<HashMap<String, Vec<HeaderMap>>>,
    sent: Mutex<HashMap<String, Arc<AtomicU64>>>,
    total: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("total", &self.total).finish_non_exhaustive()
    }
}

pub(super) async fn start(site: TestSite) -> RunningSite {
    let listener =
        TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0 for the test site");
    serve(site, listener).expect("local address of a bound listener")
}

pub(super) async fn start_on(site: TestSite, port: u16) -> std::io::Result<RunningSite> {
    serve(site, TcpListener::bind(("127.0.0.1", port)).await?)
}

fn serve(site: TestSite, listener: TcpListener) -> std::io::Result<RunningSite> {
    let addr = listener.local_addr()?;
    let state = Arc::new(State {
        routes: RwLock::new(site.routes),
        generators: site.generators,
        requests: Mutex::new(HashMap::new()),
        sent: Mutex::new(HashMap::new()),
        total: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        peak_in_flight: AtomicUsize::new(0),
    });
    let shutdown = CancellationToken::new();
    tokio::spawn(accept(listener, Arc::clone(&state), shutdown.clone()));
    Ok(RunningSite { addr, state, shutdown })
}

async fn accept(listener: TcpListener, state: Arc<State>, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(Arc::clone(&state), request));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// Decrements the in-flight gauge when a request ends (or is dropped).
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn enter(state: &'a State) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn respond(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = request.uri().path().to_owned();
    let path_and_query =
        request.uri().path_and_query().map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    state.record(&path, request.headers());
    let _in_flight = InFlight::enter(&state);

    let Some(route) = state.find(&path_and_query, &path) else {
        return Ok(plain(StatusCode::NOT_FOUND, "<html><body><h1>Not found</h1></body></html>"));
    };
    if route.stall {
        std::future::pending::<()>().await;
    }
    if let Some(delay) = route.delay {
        tokio::time::sleep(delay).await;
    }
    if is_not_modified(&route, request.headers()) {
        return Ok(not_modified(&route));
    }
    Ok(build(route, state.sent_counter(&path)))
}

fn is_not_modified(route: &Route, headers: &HeaderMap) -> bool {
    let sent = |name| headers.get(name).and_then(|value: &http::HeaderValue| value.to_str().ok());
    match (route.header("etag"), sent(IF_NONE_MATCH)) {
        (Some(etag), Some(asked)) => asked.split(',').any(|tag| tag.trim() == etag),
        (_, Some(_)) => false,
        _ => {
            matches!((route.header("last-modified"), sent(IF_MODIFIED_SINCE)), (Some(a), Some(b)) if a == b)
        }
    }
}

fn not_modified(route: &Route) -> Response<ResponseBody> {
    let mut builder = Response::builder().status(StatusCode::NOT_MODIFIED);
    for name in ["etag", "last-modified"] {
        if let Some(value) = route.header(name) {
            builder = builder.header(name, value);
        }
    }
    builder
        .body(Full::new(Bytes::new()).boxed())
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

fn build(route: Route, sent: Arc<AtomicU64>) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(route.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    for (name, value) in &route.headers {
        builder = builder.header(name, value);
    }
    let body = match route.body {
        Body::Bytes(bytes) => {
            sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            Full::new(bytes).boxed()
        }
        Body::Repeated { chunk, total } => repeated(chunk, total, sent),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad route headers"))
}

/// Streams `chunk` until `total` bytes were sent, counting each frame in
/// `sent` as hyper takes it.
fn repeated(chunk: Bytes, total: u64, sent: Arc<AtomicU64>) -> ResponseBody {
    let step = chunk.len().max(1) as u64;
    let frames = (0..total.div_ceil(step)).map(move |index| {
        let left = total - index * step;
        let len = usize::try_from(left.min(step)).unwrap_or(chunk.len());
        let frame = chunk.slice(..len.min(chunk.len()));
        sent.fetch_add(frame.len() as u64, Ordering::SeqCst);
        Ok::<_, Infallible>(Frame::data(frame))
    });
    StreamBody::new(stream::iter(frames)).boxed()
}

fn plain(status: StatusCode, html: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(html.as_bytes())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

impl State {
    fn record(&self, path: &str, headers: &HeaderMap) {
        self.total.fetch_add(1, Ordering::SeqCst);
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        requests.entry(path.to_owned()).or_default().push(headers.clone());
    }

    fn sent_counter(&self, path: &str) -> Arc<AtomicU64> {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(sent.entry(path.to_owned()).or_default())
    }

    fn find(&self, path_and_query: &str, path: &str) -> Option<Route> {
        {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(route) = routes.get(path_and_query).or_else(|| routes.get(path)) {
                return Some(route.clone());
            }
        }
        self.generators.iter().find_map(|generate| generate(path_and_query))
    }

    fn set(&self, path: &str, route: Route) {
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes.insert(path.to_owned(), route);
    }
}

impl RunningSite {
    /// `http://127.0.0.1:<port>/`.
    #[must_use]
    pub fn base_url(&self) -> Url {
        self.url("/")
    }

    /// The absolute URL of `path` (which may carry a query).
    ///
    /// # Panics
    ///
    /// If `path` does not form a URL, which is a mistake in the test.
    #[must_use]
    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).expect("test path forms a url")
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `html` at `path` from now on (adding or replacing the page).
    pub fn set_page(&self, path: &str, html: impl Into<String>) {
        self.state.set(path, Route::html(html));
    }

    /// Serves `route` at `path` from now on.
    pub fn set_route(&self, path: &str, route: Route) {
        self.state.set(path, route);
    }

    /// Makes `path` answer 404 from now on.
    pub fn remove_page(&self, path: &str) {
        let gone = Route::html("<html><body><h1>Not found</h1></body></html>").with_status(404);
        self.state.set(path, gone);
    }

    /// Requests received for `path` (query ignored).
    #[must_use]
    pub fn hits(&self, path: &str) -> usize {
        let requests = self.state.requests.lock().unwrap_or_else(PoisonError::into_inner);
        requests.get(path).map_or(0, Vec::len)
    }

    /// Body bytes handed to the connection for `path` (query ignored),
    /// over all its requests. A streamed body counts one chunk at a time
    /// as it is written, so one the client abandons counts what was sent
    /// (what the socket buffers took included), not its full size.
    #[must_use]
    pub fn bytes_sent(&self, path: &str) -> u64 {
        let sent = self.state.sent.lock().unwrap_or_else(PoisonError::into_inner);
        sent.get(path).map_or(0, |counter| counter.load(Ordering::SeqCst))
    }

    /// Requests received in all.
    #[must_use]
    pub fn total_hits(&self) -> u64 {
        self.state.total.load(Ordering::SeqCst)
    }

    /// The headers of each request for `path`, in arrival order.
    #[must_use]
    pub fn request_headers(&self, path: &str) -> Vec<HeaderMap> {
        let requests = self.state.requests.lock().unwrap_or_else(PoisonError::into_inner);
        requests.get(path).cloned().unwrap_or_default()
    }

    /// The most requests that were being answered at the same time.
    #[must_use]
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Stops accepting requests and closes open connections.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for RunningSite {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::super::{Route, TestSite, hostile, plain_page_path};

    /// Sends one HTTP/1.1 request over a raw socket and returns the whole
    /// answer, head and body.
    async fn get(site: &super::RunningSite, path: &str, extra: &str) -> String {
        let mut stream = TcpStream::connect(site.addr()).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn plain_site_serves_pages_and_counts_requests() {
        let site = TestSite::plain(3).start().await;
        let home = get(&site, "/", "").await;
        assert!(home.starts_with("HTTP/1.1 200"));
        assert!(home.contains(&format!("href=\"{}\"", plain_page_path(3))));
        assert!(get(&site, "/nothing", "").await.starts_with("HTTP/1.1 404"));
        assert_eq!((site.hits("/"), site.hits("/nothing"), site.total_hits()), (1, 1, 2));
    }

    #[tokio::test]
    async fn pages_change_and_disappear_at_run_time() {
        let site = TestSite::plain(1).start().await;
        site.set_page("/page/1", "<p>new text</p>");
        assert!(get(&site, "/page/1", "").await.ends_with("<p>new text</p>"));
        site.remove_page("/page/1");
        assert!(get(&site, "/page/1", "").await.starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn conditional_requests_get_304() {
        let route = Route::html("<p>x</p>").with_header("etag", "\"abc\"");
        let site = TestSite::new().route("/", route).start().await;
        assert!(get(&site, "/", "If-None-Match: \"abc\"\r\n").await.starts_with("HTTP/1.1 304"));
        assert!(get(&site, "/", "If-None-Match: \"old\"\r\n").await.starts_with("HTTP/1.1 200"));
        let headers = site.request_headers("/");
        assert_eq!(headers[0].get("if-none-match").unwrap(), "\"abc\"");
    }

    #[tokio::test]
    async fn huge_pages_stream_exactly_their_size() {
        let site = TestSite::new().route("/big", Route::huge(1_000_003, true)).start().await;
        let answer = get(&site, "/big", "").await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.to_ascii_lowercase().contains("content-length: 1000003"));
        assert_eq!(body.len(), 1_000_003);
        assert_eq!(site.bytes_sent("/big"), 1_000_003);
        get(&site, "/page", "").await;
        assert_eq!(site.bytes_sent("/page"), 0, "a 404 has no route body");
    }

    #[tokio::test]
    async fn an_abandoned_stream_counts_only_what_was_sent() {
        let total = 200 * 1024 * 1024;
        let site = TestSite::new().route("/big", Route::huge(total, false)).start().await;
        let mut stream = TcpStream::connect(site.addr()).await.unwrap();
        let request = "GET /big HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut first = vec![0; 4096];
        let read = stream.read(&mut first).await.unwrap();
        assert!(read > 0);
        drop(stream);
        // The server notices the closed socket at its next write at the
        // latest; its count then stops growing, far below the total.
        let mut last = u64::MAX;
        while site.bytes_sent("/big") != last {
            last = site.bytes_sent("/big");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(last < total / 4, "{last} bytes counted");
    }

    #[tokio::test]
    async fn generators_answer_the_calendar_and_redirect_chain() {
        let site = TestSite::hostile().start().await;
        assert!(get(&site, "/cal/2026/12", "").await.contains("href=\"/cal/2027/1\""));
        let hop = get(&site, hostile::ENDLESS_REDIRECTS, "").await;
        assert!(
            hop.starts_with("HTTP/1.1 302")
                && hop.to_ascii_lowercase().contains("location: /chain/1")
        );
    }
}
