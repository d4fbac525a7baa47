//! The layers every route inherits.
//!
//! They sit on the hot path of every request — a cached front page costs a few microseconds
//! of work behind them — so each one is written to do nothing it does not need to: request
//! ids come from a per-thread generator rather than a `getrandom` system call each, the span
//! reads no header when its level is off, and metrics and the timeout are one tower layer
//! around the handler instead of two `from_fn` middlewares (each of which clones and boxes
//! the inner service per request).

use crate::metrics::HttpMetrics;
use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Layer, Service, ServiceBuilder};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use uuid::Uuid;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub(crate) fn apply(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = Duration::from_secs(state.http.request_timeout_seconds);
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.http.body_limit_bytes))
        .layer(GuardLayer {
            metrics: Arc::new(state.http_metrics.clone()),
            timeout,
            hsts: state
                .http
                .hsts_seconds()
                .and_then(|seconds| HeaderValue::from_str(&format!("max-age={seconds}")).ok()),
        })
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeFastRequestId))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            // The fields are evaluated only when the span is enabled.
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                path = %req.uri().path(),
                                request_id = req
                                    .headers()
                                    .get(REQUEST_ID)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default(),
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(cors(&state.http.cors_allowed_origins))
                .layer(CompressionLayer::new().gzip(true)),
        )
        .with_state(state)
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER, REQUEST_ID])
        .max_age(Duration::from_secs(3600))
}

/// Request ids for requests that came without one: random version-4 UUIDs, as before, but
/// drawn from a per-thread generator seeded once from the operating system instead of one
/// `getrandom` system call per request. They correlate logs; they are not secrets.
#[derive(Debug, Clone, Copy, Default)]
struct MakeFastRequestId;

impl MakeRequestId for MakeFastRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = fast_uuid_v4();
        let mut text = Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

thread_local! {
    /// SplitMix64 state, seeded from the operating system on first use in each thread.
    static ID_STATE: Cell<u64> = Cell::new(Uuid::new_v4().as_u64_pair().0);
}

/// SplitMix64 (Steele, Lea & Flood 2014): a bijection of a Weyl sequence, so one thread never
/// repeats a value within 2^64 draws, and threads start at independent random points.
fn splitmix64(state: &Cell<u64>) -> u64 {
    let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
    state.set(next);
    let mut z = next;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fast_uuid_v4() -> Uuid {
    let (high, low) = ID_STATE.with(|state| (splitmix64(state), splitmix64(state)));
    uuid::Builder::from_random_bytes(((u128::from(high) << 64) | u128::from(low)).to_be_bytes())
        .into_uuid()
}

/// Metrics, the request timeout and the security headers in one layer: counts and times every
/// request under its route template, answers `503` (problem+json) when the handler takes
/// longer than `http.request_timeout_seconds`, and puts [`secure`]'s headers on every response.
#[derive(Clone)]
struct GuardLayer {
    metrics: Arc<HttpMetrics>,
    timeout: Duration,
    hsts: Option<HeaderValue>,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            metrics: self.metrics.clone(),
            timeout: self.timeout,
            hsts: self.hsts.clone(),
        }
    }
}

#[derive(Clone)]
struct Guard<S> {
    inner: S,
    metrics: Arc<HttpMetrics>,
    timeout: Duration,
    hsts: Option<HeaderValue>,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let metrics = self.metrics.clone();
        let limit = self.timeout;
        let hsts = self.hsts.clone();
        let handled = self.inner.call(request);
        Box::pin(async move {
            let mut response = match tokio::time::timeout(limit, handled).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => ApiError::Unavailable(format!(
                    "the request took longer than {} s; try again",
                    limit.as_secs()
                ))
                .into_response(),
            };
            metrics.observe(
                &method,
                route.as_ref().map_or("unmatched", MatchedPath::as_str),
                response.status(),
                started.elapsed(),
            );
            secure(&mut response, hsts);
            Ok(response)
        })
    }
}

/// The policy for a response that did not set its own: nothing may be loaded, run or framed.
/// The reader's pages, the console and `/docs` set stricter-but-working ones of their own;
/// this one covers every other answer (JSON, errors, text), so no HTML can go out without one.
const DEFAULT_CSP: HeaderValue =
    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'");

/// Headers every response carries: no MIME sniffing, referrers cut to the origin when leaving
/// the site, a CSP unless the handler set one, and HSTS when configured. A header the handler
/// set itself is kept.
fn secure(response: &mut Response, hsts: Option<HeaderValue>) {
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(DEFAULT_CSP);
    if let Some(hsts) = hsts {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(hsts);
    }
}

async fn not_found() -> ApiError {
    ApiError::NoSuchRoute
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let ids: HashSet<Uuid> = (0..10_000).map(|_| fast_uuid_v4()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.get_version(), Some(uuid::Version::Random));
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
        let other = std::thread::spawn(fast_uuid_v4).join().expect("thread");
        assert!(!ids.contains(&other));
    }
}
