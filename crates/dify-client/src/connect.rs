//! Counting the connections the pool opens.
//!
//! reqwest lets a tower layer wrap its connector; every successful call of
//! that service is one new TCP (and TLS) connection handed to the pool. A
//! reused connection never reaches the connector, so the count is exactly
//! the number of connections opened, the figure that shows whether pooling
//! works.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

/// Wraps the connector in [`CountingConnector`].
#[derive(Debug, Clone)]
pub(crate) struct CountingLayer {
    opened: Arc<AtomicU64>,
}

impl CountingLayer {
    pub(crate) fn new(opened: Arc<AtomicU64>) -> Self {
        Self { opened }
    }
}

impl<S> Layer<S> for CountingLayer {
    type Service = CountingConnector<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountingConnector { inner, opened: Arc::clone(&self.opened) }
    }
}

/// A connector that counts successful connects.
#[derive(Debug, Clone)]
pub(crate) struct CountingConnector<S> {
    inner: S,
    opened: Arc<AtomicU64>,
}

impl<S, R> Service<R> for CountingConnector<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let connecting = self.inner.call(request);
        let opened = Arc::clone(&self.opened);
        Box::pin(async move {
            let connection = connecting.await?;
            opened.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("opened a new connection to dify");
            Ok(connection)
        })
    }
}
