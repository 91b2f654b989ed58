//! Generated websites served on loopback for crawler tests and benchmarks.
//!
//! A [`TestSite`] is a table of routes (path -> [`Route`]) plus optional
//! generators that build routes from the path on the fly, so a site of
//! thousands of pages costs no memory. [`TestSite::start`] serves it with
//! hyper on `127.0.0.1:0` and returns a [`RunningSite`] handle with the
//! base URL, per-path request counters, the headers of every request, and
//! setters to change or remove pages while the site runs.
//!
//! Ready-made sites:
//! - [`TestSite::plain`]: N linked article pages, for end-to-end tests.
//! - [`TestSite::large`]: a generated tree of pages, for benchmarks.
//! - [`TestSite::hostile`]: every nasty case a crawler must survive, each
//!   at a path named in [`hostile`].
//!
//! Routes answer conditional requests: a route with an `ETag` (or
//! `Last-Modified`) header answers a matching `If-None-Match` (or
//! `If-Modified-Since`) with 304, so re-sync tests work unchanged.

mod pages;
mod server;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use pages::{
    article_page, hostile, large_page_path, plain_page_path, sitemap_gz, sitemap_index,
    sitemap_txt, sitemap_xml,
};
pub use server::RunningSite;

/// Builds a route from a request path (query included) for generated sites.
pub type Generator = Arc<dyn Fn(&str) -> Option<Route> + Send + Sync>;

/// How the server answers one path.
#[derive(Debug, Clone)]
pub struct Route {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Body,
    pub(crate) delay: Option<Duration>,
    pub(crate) stall: bool,
}

/// A response body: stored bytes, or a repeated chunk streamed without
/// being stored (for pages far over any size limit).
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Bytes(Bytes),
    Repeated { chunk: Bytes, total: u64 },
}

impl Route {
    /// A 200 `text/html; charset=utf-8` page.
    #[must_use]
    pub fn html(html: impl Into<String>) -> Self {
        Self::bytes("text/html; charset=utf-8", html.into())
    }

    /// A 200 answer with the given content type and body.
    #[must_use]
    pub fn bytes(content_type: &str, body: impl Into<Bytes>) -> Self {
        Self::status(200).with_header("content-type", content_type).with_body(body)
    }

    /// An empty answer with the given status.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Bytes::new()),
            delay: None,
            stall: false,
        }
    }

    /// A redirect (`301`, `302`, `307`, ...) to `location`, as sent.
    #[must_use]
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::status(status).with_header("location", location)
    }

    /// A `text/html` page of `total` bytes streamed in chunks and never
    /// held whole, with or without a `Content-Length` header.
    #[must_use]
    pub fn huge(total: u64, content_length: bool) -> Self {
        let chunk = Bytes::from("<p>".to_owned() + &"filler text ".repeat(5_000) + "</p>\n");
        let route = Self::status(200).with_header("content-type", "text/html");
        let route = if content_length {
            route.with_header("content-length", &total.to_string())
        } else {
            route
        };
        Self { body: Body::Repeated { chunk, total }, ..route }
    }

    /// Replaces the status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Replaces the body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Body::Bytes(body.into());
        self
    }

    /// Waits this long before answering.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Never answers: the connection stays open and silent.
    #[must_use]
    pub fn stalled(mut self) -> Self {
        self.stall = true;
        self
    }

    /// Compresses the stored body and sets `Content-Encoding: gzip`.
    #[must_use]
    pub fn gzipped(mut self) -> Self {
        if let Body::Bytes(bytes) = &self.body {
            self.body = Body::Bytes(gzip(bytes).into());
            self.headers.push(("content-encoding".into(), "gzip".into()));
        }
        self
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Gzip-compresses bytes (e.g. for a `sitemap.xml.gz` file).
#[must_use]
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// A site to serve: routes by path plus generators.
#[derive(Clone, Default)]
pub struct TestSite {
    pub(crate) routes: HashMap<String, Route>,
    pub(crate) generators: Vec<Generator>,
}

impl std::fmt::Debug for TestSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSite")
            .field("routes", &self.routes.len())
            .field("generators", &self.generators.len())
            .finish()
    }
}

impl TestSite {
    /// An empty site: every path answers 404.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `route` at `path` (`/a/b`, or `/a?x=1` to match a query
    /// exactly). Replaces an earlier route at the same path.
    #[must_use]
    pub fn route(mut self, path: &str, route: Route) -> Self {
        self.routes.insert(path.to_owned(), route);
        self
    }

    /// Serves an HTML page at `path`.
    #[must_use]
    pub fn page(self, path: &str, html: impl Into<String>) -> Self {
        self.route(path, Route::html(html))
    }

    /// Asks `generator` for paths without a stored route; the first one
    /// returning `Some` answers.
    #[must_use]
    pub fn generator(
        mut self,
        generator: impl Fn(&str) -> Option<Route> + Send + Sync + 'static,
    ) -> Self {
        self.generators.push(Arc::new(generator));
        self
    }

    /// `n_pages` article pages at [`plain_page_path`]`(1..=n)`, plus `/`
    /// linking to all of them. Each page links to the home page and its
    /// neighbours, has a nav, header, footer and a few hundred words of
    /// article text. No robots.txt and no sitemap (both 404).
    #[must_use]
    pub fn plain(n_pages: usize) -> Self {
        pages::plain(n_pages)
    }

    /// A generated tree of `n_pages` pages at [`large_page_path`]`(0..n)`:
    /// page `i` links to pages `10i+1..=10i+10`, its parent and the root,
    /// and `/` redirects to the root. Pages are built from the path on
    /// request (about 8 KB each), never stored.
    #[must_use]
    pub fn large(n_pages: usize) -> Self {
        pages::large(n_pages)
    }

    /// The hostile site: `/` links to every case in [`hostile`].
    #[must_use]
    pub fn hostile() -> Self {
        pages::hostile_site()
    }

    /// Binds `127.0.0.1:0` and serves the site until the handle is dropped.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound, which leaves a test nothing to do.
    pub async fn start(self) -> RunningSite {
        server::start(self).await
    }

    /// Binds `127.0.0.1:port` (0 lets the OS choose) and serves the site
    /// until the handle is dropped; for servers run by hand, where a stable
    /// address matters.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound (typically: in use).
    pub async fn start_on(self, port: u16) -> std::io::Result<RunningSite> {
        server::start_on(self, port).await
    }
}
