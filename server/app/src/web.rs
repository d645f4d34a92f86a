//! The web page (`web_listen`): a small browser front end served on its own port together
//! with the gRPC services behind gRPC-Web.
//!
//! One origin serves both, so the page needs no CORS and no other backend: `GET` and `HEAD`
//! requests get the page's assets (built from `clients/web` and embedded in the binary, so
//! the server serves them from any working directory), and every other request goes on to
//! `tonic_web`'s translation and then to the same services, limits, deadline and per-RPC
//! middleware ([`crate::rpc`]) as the gRPC port. gRPC calls are always `POST`, so the split
//! by method cannot shadow an RPC. The port speaks HTTP/1.1 (what a browser uses for plain
//! `http://`) and HTTP/2, and TLS when `tls_cert` is set. No CORS headers are sent, so pages
//! of other origins cannot read answers from it.

use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{self, HeaderValue, Method, StatusCode, header};
use tower::{Layer, Service};

/// One embedded file of the page.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Request path, e.g. `/app.js`.
    pub path: &'static str,
    /// Its `content-type`.
    pub content_type: &'static str,
    /// The file's bytes.
    pub body: &'static [u8],
}

/// The page's files, from `clients/web/dist` (rebuilt by `clients/web/build.sh`).
pub const ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../../clients/web/dist/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../clients/web/dist/app.js"),
    },
    Asset {
        path: "/recorder-worklet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../clients/web/dist/recorder-worklet.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../clients/web/dist/style.css"),
    },
];

/// What the page may load and where it may connect: only its own origin. `blob:` media is
/// the recording played back in the page.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'none'";

/// The asset served for `path` (`/index.html` is `/`).
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// Serves `GET`/`HEAD` from [`ASSETS`] and passes every other request to the inner service;
/// add it with `Server::builder().layer(..)` outside the gRPC-Web layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageLayer;

impl<S> Layer<S> for PageLayer {
    type Service = PageService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PageService { inner }
    }
}

/// The service [`PageLayer`] wraps around the gRPC-Web stack.
#[derive(Debug, Clone)]
pub struct PageService<S> {
    inner: S,
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Option<&'static [u8]>,
) -> http::Response<Body> {
    let body = body.map_or_else(Body::empty, |b| Body::new(axum::body::Body::from(b)));
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The embedded assets change with the binary; revalidation is cheap on a local port.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// The response to a `GET` or `HEAD` of `path`.
pub fn page_response(method: &Method, path: &str) -> http::Response<Body> {
    let head = method == Method::HEAD;
    match asset(path) {
        Some(a) => respond(StatusCode::OK, a.content_type, (!head).then_some(a.body)),
        None => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            (!head).then_some(b"not found: the page is at /\n".as_slice()),
        ),
    }
}

impl<S, B> Service<http::Request<B>> for PageService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            let resp = page_response(req.method(), req.uri().path());
            return Box::pin(async move { Ok(resp) });
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_the_page_refers_to_them() {
        let index = std::str::from_utf8(asset("/index.html").unwrap().body).unwrap();
        for a in &ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            if a.path != "/" && a.path != "/recorder-worklet.js" {
                assert!(index.contains(&a.path[1..]), "index.html does not load {}", a.path);
            }
        }
        let app = std::str::from_utf8(asset("/app.js").unwrap().body).unwrap();
        assert!(app.contains("recorder-worklet.js"), "app.js does not load the worklet");
    }

    #[test]
    fn unknown_paths_are_not_found_and_head_has_no_body() {
        let r = page_response(&Method::GET, "/nope");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = page_response(&Method::HEAD, "/");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(http_body::Body::is_end_stream(r.body()));
        assert!(r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("'self'"));
    }
}
