//! The fetcher against a local feed server that speaks real HTTP: conditional GETs, throttling,
//! redirects, compression, size and time limits, and the private-address guard.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_ingest::config::IngestConfig;
use herald_ingest::fetch::{FetchError, FetchOutcome, Fetcher, Validators};
use herald_ingest::guard::{Refusal, check_redirect};
use url::Url;

const FEED: &str =
    r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title></channel></rss>"#;
const ETAG: &str = "\"v1\"";
const LAST_MODIFIED: &str = "Sat, 01 Mar 2025 12:00:00 GMT";

/// What the feed server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    user_agent: Option<String>,
    accept_encoding: Option<String>,
}

#[derive(Default)]
struct Server {
    seen: Mutex<Vec<Seen>>,
    huge_bytes_sent: AtomicU64,
    hits: AtomicUsize,
}

type Shared = Arc<Server>;

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn record(
    State(server): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    server.hits.fetch_add(1, Ordering::SeqCst);
    server.seen.lock().expect("lock").push(Seen {
        path: request.uri().path().to_owned(),
        if_none_match: header_text(headers, header::IF_NONE_MATCH),
        if_modified_since: header_text(headers, header::IF_MODIFIED_SINCE),
        user_agent: header_text(headers, header::USER_AGENT),
        accept_encoding: header_text(headers, header::ACCEPT_ENCODING),
    });
    next.run(request).await
}

async fn feed(headers: HeaderMap) -> Response {
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == ETAG.as_bytes());
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::CACHE_CONTROL, "max-age=300")],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/rss+xml; charset=utf-8"),
            (header::ETAG, ETAG),
            (header::LAST_MODIFIED, LAST_MODIFIED),
            (header::CACHE_CONTROL, "public, max-age=600"),
        ],
        FEED,
    )
        .into_response()
}

/// Redirects to this server by its loopback IP literal (the port from the `Host` header).
async fn to_loopback(headers: HeaderMap) -> Response {
    let host = header_text(&headers, header::HOST).unwrap_or_default();
    let port = host.rsplit(':').next().unwrap_or("80").to_owned();
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("http://127.0.0.1:{port}/feed"))],
    )
        .into_response()
}

async fn redirect(Path(hops): Path<u32>) -> Response {
    if hops == 0 {
        return FEED.into_response();
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/redirect/{}", hops - 1))],
    )
        .into_response()
}

async fn gzipped() -> Response {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(FEED.as_bytes()).expect("gzip");
    let body = encoder.finish().expect("gzip");
    (
        [
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_TYPE, "application/rss+xml"),
        ],
        body,
    )
        .into_response()
}

/// 50 MiB of zeros gzipped to about 50 KiB: the limit applies to the inflated size.
async fn gzip_bomb() -> Response {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..50 {
        encoder.write_all(&zeros).expect("gzip");
    }
    let body = encoder.finish().expect("gzip");
    ([(header::CONTENT_ENCODING, "gzip")], body).into_response()
}

/// 50 MiB produced lazily in 64 KiB chunks, counting what was produced.
async fn huge(State(server): State<Shared>) -> Response {
    const CHUNK: usize = 64 * 1024;
    const TOTAL: u64 = 50 * 1024 * 1024;
    let stream = futures::stream::unfold(0u64, move |sent| {
        let server = server.clone();
        async move {
            if sent >= TOTAL {
                return None;
            }
            server
                .huge_bytes_sent
                .fetch_add(CHUNK as u64, Ordering::SeqCst);
            let chunk = bytes::Bytes::from(vec![b'x'; CHUNK]);
            Some((Ok::<_, std::io::Error>(chunk), sent + CHUNK as u64))
        }
    });
    Body::from_stream(stream).into_response()
}

/// A body that trickles out one byte a second.
async fn trickle() -> Response {
    let stream = futures::stream::unfold(0u32, |n| async move {
        if n > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        (n < 30).then(|| {
            (
                Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"x")),
                n + 1,
            )
        })
    });
    Body::from_stream(stream).into_response()
}

fn app(server: Shared) -> Router {
    Router::new()
        .route("/feed", get(feed))
        .route(
            "/throttled",
            get(|| async { (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")]) }),
        )
        .route(
            "/unavailable",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "Fri, 01 Jan 2100 00:00:00 GMT")],
                )
            }),
        )
        .route(
            "/broken",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::RETRY_AFTER, "30")],
                )
            }),
        )
        .route("/gone", get(|| async { StatusCode::GONE }))
        .route("/redirect/{hops}", get(redirect))
        .route("/to-loopback", get(to_loopback))
        .route(
            "/to-file",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "file:///etc/passwd")],
                )
            }),
        )
        .route("/gzip", get(gzipped))
        .route("/huge", get(huge))
        .route("/bomb", get(gzip_bomb))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(20)).await;
                FEED
            }),
        )
        .route("/trickle", get(trickle))
        .layer(axum::middleware::from_fn_with_state(server.clone(), record))
        .with_state(server)
}

struct TestServer {
    addr: SocketAddr,
    state: Shared,
}

impl TestServer {
    async fn spawn() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Shared::default();
        let router = app(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, state }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).expect("url")
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("lock").clone()
    }
}

fn test_config() -> IngestConfig {
    IngestConfig {
        allow_private_addresses: true,
        ..IngestConfig::default()
    }
}

fn fetcher(config: &IngestConfig) -> Fetcher {
    Fetcher::new(config).expect("fetcher")
}

#[tokio::test]
async fn conditional_get_round_trip() {
    let server = TestServer::spawn().await;
    let fetcher = fetcher(&test_config());
    let url = server.url("/feed");

    let outcome = fetcher.fetch(&url, &Validators::default()).await;
    let FetchOutcome::Fetched {
        body,
        content_type,
        validators,
        final_url,
        caching,
        links,
    } = outcome
    else {
        panic!("expected Fetched, got {outcome:?}");
    };
    assert_eq!(&body[..], FEED.as_bytes());
    assert!(links.is_empty(), "{links:?}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/rss+xml; charset=utf-8")
    );
    assert_eq!(validators.etag.as_deref(), Some(ETAG));
    assert_eq!(validators.last_modified.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(final_url, url);
    assert_eq!(caching.max_age, Some(Duration::from_secs(600)));

    let outcome = fetcher.fetch(&url, &validators).await;
    let FetchOutcome::NotModified { caching } = outcome else {
        panic!("expected NotModified, got {outcome:?}");
    };
    assert_eq!(caching.max_age, Some(Duration::from_secs(300)));

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].if_none_match, None);
    assert_eq!(seen[0].if_modified_since, None);
    assert_eq!(seen[1].if_none_match.as_deref(), Some(ETAG));
    assert_eq!(seen[1].if_modified_since.as_deref(), Some(LAST_MODIFIED));
    let agent = seen[0].user_agent.as_deref().unwrap_or_default();
    assert!(agent.starts_with("Herald/"), "user agent {agent}");
}

#[tokio::test]
async fn throttling_and_error_statuses() {
    let server = TestServer::spawn().await;
    let fetcher = fetcher(&test_config());
    let none = Validators::default();

    match fetcher.fetch(&server.url("/throttled"), &none).await {
        FetchOutcome::Throttled {
            retry_after,
            status,
        } => {
            assert_eq!(status, 429);
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("expected Throttled, got {other:?}"),
    }

    match fetcher.fetch(&server.url("/unavailable"), &none).await {
        FetchOutcome::Throttled {
            retry_after,
            status,
        } => {
            assert_eq!(status, 503);
            assert!(retry_after.is_some_and(|d| d > Duration::from_secs(365 * 86_400)));
        }
        other => panic!("expected Throttled, got {other:?}"),
    }

    match fetcher.fetch(&server.url("/broken"), &none).await {
        FetchOutcome::Failed { error, retry_after } => {
            assert_eq!(error, FetchError::Status(500));
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("expected Failed, got {other:?}"),
    }

    match fetcher.fetch(&server.url("/gone"), &none).await {
        FetchOutcome::Failed { error, .. } => assert_eq!(error, FetchError::Status(410)),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let server = TestServer::spawn().await;
    let fetcher = fetcher(&test_config());
    let none = Validators::default();

    for hops in [3, 5] {
        match fetcher
            .fetch(&server.url(&format!("/redirect/{hops}")), &none)
            .await
        {
            FetchOutcome::Fetched {
                body, final_url, ..
            } => {
                assert_eq!(&body[..], FEED.as_bytes());
                assert_eq!(final_url, server.url("/redirect/0"));
            }
            other => panic!("{hops} hops: expected Fetched, got {other:?}"),
        }
    }

    let paths: Vec<String> = server.seen().into_iter().map(|seen| seen.path).collect();
    assert_eq!(
        paths[..4],
        ["/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0"]
    );

    match fetcher.fetch(&server.url("/redirect/6"), &none).await {
        FetchOutcome::Failed { error, .. } => assert_eq!(error, FetchError::TooManyRedirects),
        other => panic!("expected TooManyRedirects, got {other:?}"),
    }

    match fetcher.fetch(&server.url("/to-file"), &none).await {
        FetchOutcome::Failed { error, .. } => {
            assert_eq!(error, FetchError::UnsupportedScheme("file".into()));
        }
        other => panic!("expected UnsupportedScheme, got {other:?}"),
    }
}

#[tokio::test]
async fn gzip_bodies_are_decoded() {
    let server = TestServer::spawn().await;
    let fetcher = fetcher(&test_config());
    match fetcher
        .fetch(&server.url("/gzip"), &Validators::default())
        .await
    {
        FetchOutcome::Fetched { body, .. } => assert_eq!(&body[..], FEED.as_bytes()),
        other => panic!("expected Fetched, got {other:?}"),
    }
    let accept = server.seen()[0].accept_encoding.clone().unwrap_or_default();
    assert!(accept.contains("gzip") && accept.contains("br"), "{accept}");
}

#[tokio::test]
async fn huge_bodies_are_cut_off_without_reading_them_whole() {
    let server = TestServer::spawn().await;
    let fetcher = fetcher(&test_config());
    let started = Instant::now();
    let outcome = fetcher
        .fetch(&server.url("/huge"), &Validators::default())
        .await;
    match outcome {
        FetchOutcome::Failed { error, .. } => assert_eq!(
            error,
            FetchError::BodyTooLarge {
                limit: 10 * 1024 * 1024
            }
        ),
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Give the server a moment to notice the closed connection, then check it stopped early.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let produced = server.state.huge_bytes_sent.load(Ordering::SeqCst);
    // The body is 50 MiB; socket buffers and chunks in flight when the client hangs up let the
    // server write well past the 10 MiB cut, so the bound only proves it was not read whole.
    assert!(
        produced < 40 * 1024 * 1024,
        "server produced {produced} bytes"
    );
}

#[tokio::test]
async fn compressed_bodies_are_limited_by_their_inflated_size() {
    let server = TestServer::spawn().await;
    let config = IngestConfig {
        max_body_bytes: 1024 * 1024,
        ..test_config()
    };
    match fetcher(&config)
        .fetch(&server.url("/bomb"), &Validators::default())
        .await
    {
        FetchOutcome::Failed { error, .. } => {
            assert_eq!(error, FetchError::BodyTooLarge { limit: 1024 * 1024 });
        }
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn slow_servers_time_out() {
    let server = TestServer::spawn().await;
    let config = IngestConfig {
        timeout_seconds: 1,
        ..test_config()
    };
    let fetcher = fetcher(&config);
    for path in ["/slow", "/trickle"] {
        let started = Instant::now();
        match fetcher
            .fetch(&server.url(path), &Validators::default())
            .await
        {
            FetchOutcome::Failed { error, .. } => assert_eq!(error, FetchError::Timeout, "{path}"),
            other => panic!("{path}: expected Timeout, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let fetcher = fetcher(&test_config());
    let url = Url::parse(&format!("http://{addr}/feed")).expect("url");
    match fetcher.fetch(&url, &Validators::default()).await {
        FetchOutcome::Failed {
            error: FetchError::Connect(_),
            ..
        } => {}
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn private_addresses_are_blocked_by_default() {
    let server = TestServer::spawn().await;
    let fetcher = fetcher(&IngestConfig::default());
    let loopback: IpAddr = "127.0.0.1".parse().expect("ip");

    // An IP literal never reaches the resolver, so it is checked before the request.
    match fetcher
        .fetch(&server.url("/feed"), &Validators::default())
        .await
    {
        FetchOutcome::Failed { error, .. } => assert_eq!(error, FetchError::Blocked(loopback)),
        other => panic!("expected Blocked, got {other:?}"),
    }

    // A name is checked after resolution, by the resolver the client connects through.
    let by_name =
        Url::parse(&format!("http://localhost:{}/feed", server.addr.port())).expect("url");
    match fetcher.fetch(&by_name, &Validators::default()).await {
        FetchOutcome::Failed {
            error: FetchError::Blocked(ip),
            ..
        } => assert!(ip.is_loopback(), "{ip}"),
        other => panic!("expected Blocked, got {other:?}"),
    }

    assert_eq!(
        server.state.hits.load(Ordering::SeqCst),
        0,
        "the server must never be reached"
    );
}

/// End to end through the client's redirect policy: `localhost` is named in
/// `ingest.private_hosts`, so its first hop is fetched; its redirect to 127.0.0.1 is refused
/// and never requested.
#[tokio::test]
async fn a_redirect_to_loopback_is_refused_and_never_requested() {
    let server = TestServer::spawn().await;
    let config = IngestConfig {
        private_hosts: vec!["localhost".into()],
        ..IngestConfig::default()
    };
    let fetcher = fetcher(&config);
    let by_name = |path: &str| {
        Url::parse(&format!("http://localhost:{}{path}", server.addr.port())).expect("url")
    };
    let none = Validators::default();

    // The named host itself, redirects within it included, is fetched.
    match fetcher.fetch(&by_name("/redirect/2"), &none).await {
        FetchOutcome::Fetched { body, .. } => assert_eq!(&body[..], FEED.as_bytes()),
        other => panic!("expected Fetched, got {other:?}"),
    }
    let hops_before = server.state.hits.load(Ordering::SeqCst);

    match fetcher.fetch(&by_name("/to-loopback"), &none).await {
        FetchOutcome::Failed { error, .. } => {
            assert_eq!(error, FetchError::Blocked("127.0.0.1".parse().expect("ip")));
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    let paths: Vec<String> = server.seen().into_iter().map(|seen| seen.path).collect();
    assert_eq!(
        paths,
        ["/redirect/2", "/redirect/1", "/redirect/0", "/to-loopback"],
        "the refused hop must never be requested"
    );
    assert_eq!(server.state.hits.load(Ordering::SeqCst), hops_before + 1);

    // Any other host on a private address is still refused before a request.
    match fetcher.fetch(&server.url("/feed"), &none).await {
        FetchOutcome::Failed { error, .. } => {
            assert_eq!(error, FetchError::Blocked("127.0.0.1".parse().expect("ip")));
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
}

#[test]
fn redirects_to_private_literals_are_refused() {
    let start = Url::parse("http://feeds.example.com/rss").expect("url");
    let hop = |s: &str| Url::parse(s).expect("url");
    let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
    let previous = vec![start.clone()];

    assert_eq!(
        check_redirect(&hop("http://127.0.0.1/admin"), &previous, 5, &false.into()),
        Err(Refusal::Blocked(loopback))
    );
    assert!(matches!(
        check_redirect(
            &hop("http://169.254.169.254/latest/meta-data/"),
            &previous,
            5,
            &false.into()
        ),
        Err(Refusal::Blocked(_))
    ));
    assert!(matches!(
        check_redirect(
            &hop("http://[::ffff:10.0.0.1]/"),
            &previous,
            5,
            &false.into()
        ),
        Err(Refusal::Blocked(_))
    ));
    assert_eq!(
        check_redirect(
            &hop("gopher://feeds.example.com/"),
            &previous,
            5,
            &false.into()
        ),
        Err(Refusal::UnsupportedScheme("gopher".into()))
    );
    assert_eq!(
        check_redirect(
            &hop("https://cdn.example.net/rss"),
            &previous,
            5,
            &false.into()
        ),
        Ok(())
    );
    // With the switch on, private literals are followed; the hop limit still holds.
    assert_eq!(
        check_redirect(&hop("http://127.0.0.1/admin"), &previous, 5, &true.into()),
        Ok(())
    );
    let chain = vec![start; 6];
    assert_eq!(
        check_redirect(
            &hop("https://cdn.example.net/rss"),
            &chain[..5],
            5,
            &true.into()
        ),
        Ok(())
    );
    assert_eq!(
        check_redirect(&hop("https://cdn.example.net/rss"), &chain, 5, &true.into()),
        Err(Refusal::TooManyRedirects { max: 5 })
    );
}
