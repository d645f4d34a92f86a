//! The middleware in front of every gRPC service: a request id, the tracing span, and the
//! request metrics.
//!
//! For each RPC, [`RpcLayer`]:
//!
//! - takes the client's `x-request-id` metadata when it is 1–128 visible ASCII characters, or
//!   generates one (`<16 hex digits>-<n>`, unique within the process and hard to guess), puts
//!   it in the request (handlers see it in their metadata) and echoes it in the response
//!   metadata `x-request-id`, errors included;
//! - runs the RPC inside an `rpc` span with fields `request_id` and `method`, so every log
//!   line of the request carries the id (work on the CPU pool re-enters the span, see
//!   [`crate::work`]);
//! - counts the RPC in flight and, when it ends, by method and gRPC code (see
//!   [`crate::metrics`]). The code is read from the `grpc-status` response header (errors sent
//!   as trailers-only responses) or from the trailers at the end of the body.
//!
//! A request cut off by the server's deadline never reaches the response here and counts as
//! CANCELLED, as does one whose client went away.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap, HeaderValue};
use tonic::{Code, Status};
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::metrics::{Metrics, RequestGuard};

/// The metadata key of the request id, in requests and responses.
pub const REQUEST_ID: &str = "x-request-id";

/// Longest client-chosen request id kept; longer ones are replaced.
const MAX_ID_LEN: usize = 128;

/// The per-RPC middleware; add it with `Server::builder().layer(..)`.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    metrics: Arc<Metrics>,
}

impl RpcLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService { inner, metrics: self.metrics.clone() }
    }
}

/// The service [`RpcLayer`] wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The client's request id when it is usable, else a new one.
fn request_id(headers: &HeaderMap) -> (HeaderValue, bool) {
    if let Some(v) = headers.get(REQUEST_ID) {
        let ok = !v.is_empty()
            && v.len() <= MAX_ID_LEN
            && v.as_bytes().iter().all(|b| b.is_ascii_graphic());
        if ok {
            return (v.clone(), false);
        }
    }
    (generate_id(), true)
}

/// A new request id: a per-process random hash of a counter, plus the counter.
fn generate_id() -> HeaderValue {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    static SEED: OnceLock<RandomState> = OnceLock::new();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let hash = SEED.get_or_init(RandomState::new).hash_one(n);
    HeaderValue::from_str(&format!("{hash:016x}-{n}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let v = headers.get("grpc-status")?;
    let n = v.to_str().ok()?.trim().parse::<i32>().ok()?;
    Some(Code::from_i32(n))
}

impl<S> Service<http::Request<Body>> for RpcService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let (id, generated) = request_id(req.headers());
        if generated {
            req.headers_mut().insert(REQUEST_ID, id.clone());
        }
        let path = req.uri().path().to_owned();
        let span = tracing::info_span!(
            "rpc",
            request_id = %String::from_utf8_lossy(id.as_bytes()),
            method = %path,
        );
        let guard = self.metrics.request_started(self.metrics.rpc_label(&path));
        // The clone that was made ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let future = {
            let _enter = span.enter();
            inner.call(req)
        };
        Box::pin(
            async move {
                let mut resp = future.await?;
                resp.headers_mut().insert(REQUEST_ID, id);
                if let Some(code) = grpc_code(resp.headers()) {
                    guard.finish(code);
                    return Ok(resp);
                }
                Ok(resp.map(|inner| Body::new(CountedBody { inner, guard: Some(guard) })))
            }
            .instrument(span),
        )
    }
}

/// A response body that records the RPC's code when its trailers (or an error) go by.
struct CountedBody {
    inner: Body,
    guard: Option<RequestGuard>,
}

impl CountedBody {
    fn finish(&mut self, code: Code) {
        if let Some(g) = self.guard.take() {
            g.finish(code);
        }
    }
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.finish(grpc_code(trailers).unwrap_or(Code::Unknown));
                }
            }
            Poll::Ready(Some(Err(status))) => this.finish(status.code()),
            Poll::Ready(None) => this.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.guard.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_client_id_is_kept_and_others_are_replaced() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), (HeaderValue::from_static("abc-123"), false));
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        let (id, generated) = request_id(&h);
        assert!(generated);
        assert_ne!(id, "has space");
        let (a, _) = request_id(&HeaderMap::new());
        let (b, _) = request_id(&HeaderMap::new());
        assert_ne!(a, b);
    }
}
