//! One alert fanned out to N devices on PostgreSQL, delivered to a minimal local receiver:
//! deliveries/s, time to the first and last delivery, peak RSS.
//!
//! `--channel webpush` (default): Web Push subscriptions, a receiver that answers 201; every
//! message is really encrypted (RFC 8291, fresh ECDH key each) and VAPID-signed.
//! `--channel fcm`: Android devices, an OAuth token endpoint (the sender signs an RS256
//! assertion with a fresh service-account key) and `POST /v1/projects/{p}/messages:send`
//! answering 200 `{"name": …}` to requests carrying the issued bearer token.
//! `--channel apns`: iOS devices, `POST /3/device/{token}` over cleartext HTTP/2 (prior
//! knowledge, as the sender speaks to non-TLS test hosts) answering 200 with an `apns-id` to
//! requests with a provider token, `apns-topic` and `apns-push-type`.
//! The receivers only check and count, so they are not what is measured.
//!
//! cargo run --release -p herald-bench --bin fanout -- --devices 1000000
//! cargo run --release -p herald-bench --bin fanout -- --channel fcm --devices 100000
//! cargo run --release -p herald-bench --bin fanout -- --channel apns --devices 100000

/// The allocator `herald` runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use aws_lc_rs::agreement::{ECDH_P256, EphemeralPrivateKey};
use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use clap::{Parser, ValueEnum};
use herald_bench::peak_rss_kib;
use herald_notifier::config::PushConfig;
use herald_notifier::fanout::{Fanout, FanoutMetrics, FanoutSettings, Senders};
use herald_notifier::send::{ApnsKey, ApnsSender, FcmSender, FcmServiceAccount};
use herald_notifier::webpush::VapidKeys;
use herald_store::queue::{self, AlertState, NewQueuedAlert};
use herald_store::testing::{SeedAppAudience, SeedAppPlatform, SeedAudience, TestDb};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Which platform's devices to seed and which sender and receiver to use.
    #[arg(long, value_enum, default_value_t = Channel::Webpush)]
    channel: Channel,
    /// Devices to fan out to (4 per reader).
    #[arg(long, default_value_t = 1_000_000)]
    devices: u64,
    /// Notifier workers in this process (they share the queue through leases); the default is
    /// `[push.fanout] workers`.
    #[arg(long, default_value_t = herald_notifier::config::FanoutConfig::default().workers)]
    workers: usize,
    /// Requests in flight per sender (default: `[push.*] concurrency`).
    #[arg(long)]
    in_flight: Option<usize>,
    /// Devices per batch.
    #[arg(long, default_value_t = FanoutSettings::default().batch_size)]
    batch: u64,
    /// PostgreSQL to seed a throwaway schema in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    database_url: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Channel {
    /// Web Push subscriptions (RFC 8030/8291/8292).
    Webpush,
    /// Android devices through FCM HTTP v1.
    Fcm,
    /// iOS devices through the APNs provider API (HTTP/2).
    Apns,
}

/// The FCM project, access token and APNs topic the receivers expect.
const FCM_PROJECT: &str = "herald-bench";
const FCM_ACCESS_TOKEN: &str = "ya29.herald-bench-access-token";
const APNS_TOPIC: &str = "net.herald.bench";

struct Receiver {
    started: Instant,
    count: AtomicU64,
    rejected: AtomicU64,
    first_micros: AtomicU64,
    last_micros: AtomicU64,
}

impl Receiver {
    fn new(started: Instant) -> Self {
        Self {
            started,
            count: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            first_micros: AtomicU64::new(0),
            last_micros: AtomicU64::new(0),
        }
    }

    /// Counts one accepted delivery; returns its sequence number.
    fn accept(&self) -> u64 {
        let now = self.started.elapsed().as_micros() as u64;
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            self.first_micros.store(now, Ordering::Relaxed);
        }
        self.last_micros.fetch_max(now, Ordering::Relaxed);
        n
    }

    fn reject(&self, status: StatusCode, body: &'static str) -> Response {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        (status, body).into_response()
    }
}

/// Web Push: a minimal HTTP/1.1 push service on `listener` that answers every complete
/// `POST /push/…` with 201 and anything else with 404, reading requests off the socket as they
/// come (several at once when the sender pipelines), so it costs the machine as little as it can.
fn serve_webpush(listener: tokio::net::TcpListener, receiver: Arc<Receiver>) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(webpush_connection(stream, receiver.clone()));
        }
    });
}

async fn webpush_connection(mut stream: tokio::net::TcpStream, receiver: Arc<Receiver>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const CREATED: &[u8] = b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n";
    const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(1024);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut consumed = 0;
        while let Some((len, found)) = parse_push_request(&buf[consumed..]) {
            consumed += len;
            if found {
                receiver.accept();
                out.extend_from_slice(CREATED);
            } else {
                receiver.rejected.fetch_add(1, Ordering::Relaxed);
                out.extend_from_slice(NOT_FOUND);
            }
        }
        buf.drain(..consumed);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// The length of the first complete request in `buf` (head and body), and whether it is a
/// `POST /push/…`; `None` until a whole request has arrived.
fn parse_push_request(buf: &[u8]) -> Option<(usize, bool)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let content_length = head
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let len = head_end + content_length;
    (buf.len() >= len).then(|| (len, head.starts_with("POST /push/")))
}

/// FCM's OAuth token endpoint: a JWT-bearer grant gets the one access token.
async fn fcm_token(State(receiver): State<Arc<Receiver>>, body: Bytes) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let assertion_parts = form.get("assertion").map_or(0, |a| a.split('.').count());
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        || assertion_parts != 3
    {
        return receiver.reject(StatusCode::BAD_REQUEST, r#"{"error":"invalid_grant"}"#);
    }
    axum::Json(serde_json::json!({
        "access_token": FCM_ACCESS_TOKEN,
        "expires_in": 3599,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// FCM `messages:send`: the bearer token and `message.token` are checked, then 200 with a name.
async fn fcm_send(
    State(receiver): State<Arc<Receiver>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(FCM_ACCESS_TOKEN) {
        return receiver.reject(StatusCode::UNAUTHORIZED, r#"{"error":{"code":401}}"#);
    }
    let Ok(message) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return receiver.reject(StatusCode::BAD_REQUEST, r#"{"error":{"code":400}}"#);
    };
    if message["message"]["token"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return receiver.reject(StatusCode::BAD_REQUEST, r#"{"error":{"code":400}}"#);
    }
    let n = receiver.accept();
    axum::Json(serde_json::json!({
        "name": format!("projects/{project}/messages/0:{n}"),
    }))
    .into_response()
}

/// APNs `/3/device/{token}` over HTTP/2: provider token and required headers present, then 200.
async fn apns_receive(
    State(receiver): State<Arc<Receiver>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let jwt_parts = header("authorization")
        .and_then(|v| v.strip_prefix("bearer "))
        .map_or(0, |jwt| jwt.split('.').count());
    if request.version() != Version::HTTP_2
        || jwt_parts != 3
        || header("apns-topic") != Some(APNS_TOPIC)
        || header("apns-push-type").is_none()
        || token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return receiver.reject(StatusCode::BAD_REQUEST, r#"{"reason":"BadRequest"}"#);
    }
    if axum::body::to_bytes(request.into_body(), 16 * 1024)
        .await
        .is_err()
    {
        return receiver.reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"reason":"PayloadTooLarge"}"#,
        );
    }
    let n = receiver.accept();
    let mut response = StatusCode::OK.into_response();
    if let Ok(id) =
        axum::http::HeaderValue::try_from(uuid::Uuid::from_u128(u128::from(n)).to_string())
    {
        response.headers_mut().insert("apns-id", id);
    }
    response
}

/// PEM-encodes DER.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = BASE64_STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Serves `app` on `listener` over cleartext HTTP/2 with prior knowledge (as APNs test hosts).
fn serve_h2c(listener: tokio::net::TcpListener, app: Router) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .max_concurrent_streams(1000)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let since = move || started.elapsed().as_micros() as u64;

    let receiver = Arc::new(Receiver::new(started));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let base_url = format!("http://127.0.0.1:{port}");
    match args.channel {
        Channel::Webpush => serve_webpush(listener, receiver.clone()),
        Channel::Fcm => {
            let app = Router::new()
                .route("/token", post(fcm_token))
                .route("/v1/projects/{project}/messages:send", post(fcm_send))
                .with_state(receiver.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        Channel::Apns => {
            let app = Router::new()
                .route("/3/device/{token}", post(apns_receive))
                .with_state(receiver.clone());
            serve_h2c(listener, app);
        }
    }

    let test_db = TestDb::postgres(&args.database_url).await;
    let db = test_db.connect().await;
    let users = args.devices.div_ceil(4);
    let seeding = Instant::now();
    let mut config = PushConfig {
        allow_insecure_endpoints: true,
        ..PushConfig::default()
    };
    if let Some(limit) = args.in_flight {
        config.webpush.concurrency = limit;
        config.fcm.concurrency = limit;
        config.apns.concurrency = limit;
    }
    let mut senders = Senders::from_config(&config, VapidKeys::generate()?)?;
    match args.channel {
        Channel::Webpush => {
            let key = EphemeralPrivateKey::generate(&ECDH_P256, &SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("key generation failed"))?;
            let public = key
                .compute_public_key()
                .map_err(|_| anyhow::anyhow!("public key"))?;
            eprintln!("seeding {users} readers with 4 Web Push subscriptions each …");
            let base = format!("{base_url}/push/");
            test_db
                .seed_audience(
                    &db,
                    &SeedAudience {
                        users,
                        devices_per_user: 4,
                        topic: "world",
                        endpoint_base: &base,
                        p256dh: public.as_ref(),
                        auth: &[7; 16],
                    },
                )
                .await;
        }
        Channel::Fcm => {
            eprintln!("seeding {users} readers with 4 FCM devices each …");
            test_db
                .seed_app_audience(
                    &db,
                    &SeedAppAudience {
                        users,
                        devices_per_user: 4,
                        topic: "world",
                        platform: SeedAppPlatform::Fcm,
                    },
                )
                .await;
            let key = RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
            let pkcs8: Pkcs8V1Der<'static> = key
                .as_der()
                .map_err(|_| anyhow::anyhow!("PKCS#8 export failed"))?;
            let token_url = format!("{base_url}/token");
            let account = serde_json::json!({
                "type": "service_account",
                "project_id": FCM_PROJECT,
                "private_key_id": "bench",
                "private_key": pem("PRIVATE KEY", pkcs8.as_ref()),
                "client_email": "bench@herald-bench.iam.gserviceaccount.com",
                "token_uri": token_url,
            });
            config.fcm.enabled = true;
            config.fcm.base_url = base_url.clone();
            config.fcm.token_url = token_url;
            let account = FcmServiceAccount::from_json(&account.to_string())?;
            senders.fcm = Some(Arc::new(FcmSender::new(&config, account)?));
        }
        Channel::Apns => {
            eprintln!("seeding {users} readers with 4 APNs devices each …");
            test_db
                .seed_app_audience(
                    &db,
                    &SeedAppAudience {
                        users,
                        devices_per_user: 4,
                        topic: "world",
                        platform: SeedAppPlatform::Apns,
                    },
                )
                .await;
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
            let pkcs8 = key
                .to_pkcs8v1()
                .map_err(|_| anyhow::anyhow!("PKCS#8 export failed"))?;
            config.apns.enabled = true;
            config.apns.production_url = base_url.clone();
            config.apns.sandbox_url = base_url.clone();
            config.apns.key_id = "BENCHKEY01".to_owned();
            config.apns.team_id = "BENCHTEAM0".to_owned();
            config.apns.topic = APNS_TOPIC.to_owned();
            let key = ApnsKey::from_p8_pem(
                &pem("PRIVATE KEY", pkcs8.as_ref()),
                &config.apns.key_id,
                &config.apns.team_id,
            )?;
            senders.apns = Some(Arc::new(ApnsSender::new(&config, key)?));
        }
    }
    eprintln!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let settings = FanoutSettings {
        batch_size: args.batch,
        ..FanoutSettings::default()
    };
    let stop = CancellationToken::new();
    for _ in 0..args.workers {
        let fanout = Fanout::new(
            db.clone(),
            config.clone(),
            senders.clone(),
            FanoutMetrics::unregistered(),
            settings.clone(),
        );
        let stop = stop.clone();
        tokio::spawn(async move { fanout.run(stop).await });
    }

    let rss_before = herald_bench::rss_kib().unwrap_or(0);
    let created = since();
    let alert = queue::enqueue(
        &db,
        NewQueuedAlert {
            story_id: Some(uuid::Uuid::now_v7()),
            article_id: None,
            topics: vec!["world".into()],
            title: "Breaking: benchmark".into(),
            body:
                "A 300-byte-ish alert body for the fan-out benchmark, about as long as a real one."
                    .into(),
            url: "https://news.example/2026/11/27/benchmark".into(),
            image_url: None,
            urgency: "high".into(),
            ttl_seconds: 3600,
            trigger: "editor".into(),
            created_by: None,
            send_at: None,
            local_time: None,
        },
    )
    .await?;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let counters = queue::counters(&db, alert.id).await?;
        eprint!(
            "\r{} sent / {} targeted, {} failed",
            counters.sent, counters.targeted, counters.failed
        );
        if matches!(
            counters.state,
            AlertState::Done | AlertState::Expired | AlertState::Cancelled
        ) {
            eprintln!();
            stop.cancel();
            let received = receiver.count.load(Ordering::Relaxed);
            let rejected = receiver.rejected.load(Ordering::Relaxed);
            let first = receiver
                .first_micros
                .load(Ordering::Relaxed)
                .saturating_sub(created);
            let last = receiver
                .last_micros
                .load(Ordering::Relaxed)
                .saturating_sub(created);
            println!(
                "channel: {}  devices: {}",
                match args.channel {
                    Channel::Webpush => "webpush",
                    Channel::Fcm => "fcm",
                    Channel::Apns => "apns",
                },
                counters.targeted
            );
            println!(
                "sent: {}  failed: {}  received by the receiver: {received}  rejected: {rejected}",
                counters.sent, counters.failed
            );
            println!(
                "first delivery: {:.3} s after the alert was created",
                first as f64 / 1e6
            );
            println!("last delivery: {:.1} s", last as f64 / 1e6);
            println!(
                "deliveries/s: {:.0}",
                received as f64 / (last.max(1) as f64 / 1e6)
            );
            println!(
                "RSS before: {} MiB, peak RSS: {} MiB",
                rss_before / 1024,
                peak_rss_kib().unwrap_or(0) / 1024
            );
            break;
        }
    }
    Ok(())
}
