//! A local Web Push service for the sender comparison in `bench/run`.
//!
//! `gen` writes the workload every sender reads (VAPID keys, the alert, N subscriptions with
//! fresh P-256 keys and auth secrets) and a self-signed TLS certificate for 127.0.0.1.
//! `serve` answers every `POST /push/{index}` with 201 over HTTPS/1.1, counts the requests,
//! and checks a sample (every k-th request): VAPID JWT signature, audience and expiry, and the
//! RFC 8291 body decrypted with the subscription's private key equal to the alert. A plain-HTTP
//! control port starts a new labelled count (`POST /reset?label=`) and reports it (`GET /stats`).
//!
//! cargo run --release -p herald-bench --bin push_receiver -- gen --n 20000 --port 18443 --dir target/bench-data/push
//! cargo run --release -p herald-bench --bin push_receiver -- serve --dir target/bench-data/push --port 18443 --control-port 18444

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{Context as _, bail};
use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
use aws_lc_rs::encoding::{AsBigEndian as _, EcPrivateKeyBin};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use chrono::{SubsecRound as _, Utc};
use clap::{Parser, Subcommand};
use herald_bench::push_workload::{Keys, Subscription, Vapid, Workload};
use herald_notifier::send::AlertPayload;
use herald_notifier::webpush::{VapidKeys, decrypt, topic_for_story, verify_vapid};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write workload.json, cert.pem and key.pem into DIR.
    Gen {
        /// Subscriptions to create.
        #[arg(long, default_value_t = 20_000)]
        n: usize,
        /// Port the endpoints point at.
        #[arg(long, default_value_t = 18443)]
        port: u16,
        /// Output directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Serve the subscriptions of DIR/workload.json.
    Serve {
        /// Directory `gen` wrote.
        #[arg(long)]
        dir: PathBuf,
        /// HTTPS port (must match the endpoints).
        #[arg(long, default_value_t = 18443)]
        port: u16,
        /// Plain-HTTP control port on 127.0.0.1.
        #[arg(long, default_value_t = 18444)]
        control_port: u16,
        /// Check every k-th request.
        #[arg(long, default_value_t = 100)]
        sample_every: u64,
    },
}

fn b64(bytes: &[u8]) -> String {
    BASE64_URL_SAFE_NO_PAD.encode(bytes)
}

fn generate(n: usize, port: u16, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let vapid_private = PrivateKey::generate(&ECDH_P256)
        .map_err(|_| anyhow::anyhow!("VAPID key generation failed"))?;
    let vapid_scalar: EcPrivateKeyBin<'static> = vapid_private
        .as_be_bytes()
        .map_err(|_| anyhow::anyhow!("VAPID key export failed"))?;
    let vapid_keys = VapidKeys::from_raw_private_key(vapid_scalar.as_ref())?;

    let story = Uuid::now_v7();
    let article = Uuid::now_v7();
    let alert = AlertPayload {
        alert_id: Uuid::now_v7(),
        title: "Ceasefire talks resume in Geneva".to_owned(),
        body: "Envoys meet for a third round.".to_owned(),
        url: "https://news.example.com/world/geneva-talks".to_owned(),
        article_id: Some(article),
        story_id: Some(story),
        topic: "world".to_owned(),
        image_url: None,
        sent_at: Utc::now().trunc_subsecs(0),
        version: 1,
        silent: false,
        tag: story.to_string(),
        retracted: false,
    };
    let payload = serde_json::to_string(&alert)?;

    let mut subscriptions = Vec::with_capacity(n);
    for index in 0..n {
        let key = PrivateKey::generate(&ECDH_P256)
            .map_err(|_| anyhow::anyhow!("key generation failed"))?;
        let public = key
            .compute_public_key()
            .map_err(|_| anyhow::anyhow!("public key failed"))?;
        let private: EcPrivateKeyBin<'static> = key
            .as_be_bytes()
            .map_err(|_| anyhow::anyhow!("private key export failed"))?;
        let mut auth = [0u8; 16];
        aws_lc_rs::rand::fill(&mut auth).map_err(|_| anyhow::anyhow!("random failed"))?;
        subscriptions.push(Subscription {
            endpoint: format!("https://127.0.0.1:{port}/push/{index}"),
            keys: Keys {
                p256dh: b64(public.as_ref()),
                auth: b64(&auth),
            },
            private_key: b64(private.as_ref()),
        });
    }
    let workload = Workload {
        vapid: Vapid {
            public_key: vapid_keys.public_key_base64url(),
            private_key: b64(vapid_scalar.as_ref()),
            subject: "mailto:bench@herald.example".to_owned(),
        },
        payload,
        ttl: 3600,
        urgency: "high".to_owned(),
        topic: topic_for_story(&story.to_string()),
        subscriptions,
    };
    std::fs::write(dir.join("workload.json"), serde_json::to_vec(&workload)?)?;

    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    std::fs::write(dir.join("cert.pem"), certified.cert.pem())?;
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem())?;
    println!(
        "wrote {} subscriptions, a {}-byte alert, and a certificate for 127.0.0.1 to {}",
        n,
        workload.payload.len(),
        dir.display()
    );
    Ok(())
}

/// One subscription as the receiver knows it.
struct Browser {
    endpoint: Url,
    private_key: Vec<u8>,
    auth: Vec<u8>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    sampled: AtomicU64,
    ok: AtomicU64,
    vapid_failed: AtomicU64,
    decrypt_failed: AtomicU64,
    payload_mismatch: AtomicU64,
    unknown_subscription: AtomicU64,
}

struct Receiver {
    browsers: Vec<Browser>,
    expected: serde_json::Value,
    sample_every: u64,
    current: RwLock<(String, Arc<Counts>)>,
    first_error: RwLock<Option<String>>,
}

impl Receiver {
    fn counts(&self) -> Arc<Counts> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .1,
        )
    }

    fn note_error(&self, error: String) {
        let mut first = self
            .first_error
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(error);
        }
    }

    /// Checks one request as a browser and its push service would.
    fn check(&self, counts: &Counts, browser: &Browser, headers: &HeaderMap, body: &[u8]) {
        counts.sampled.fetch_add(1, Ordering::Relaxed);
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if let Err(e) = verify_vapid(authorization, &browser.endpoint, Utc::now()) {
            counts.vapid_failed.fetch_add(1, Ordering::Relaxed);
            self.note_error(format!("VAPID: {e}"));
            return;
        }
        let encoding = headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !encoding.eq_ignore_ascii_case("aes128gcm") {
            counts.decrypt_failed.fetch_add(1, Ordering::Relaxed);
            self.note_error(format!("content-encoding {encoding:?}"));
            return;
        }
        let plaintext = match decrypt(&browser.private_key, &browser.auth, body) {
            Ok(plaintext) => plaintext,
            Err(e) => {
                counts.decrypt_failed.fetch_add(1, Ordering::Relaxed);
                self.note_error(format!("decrypt: {e}"));
                return;
            }
        };
        match serde_json::from_slice::<serde_json::Value>(&plaintext) {
            Ok(value) if value == self.expected => {
                counts.ok.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counts.payload_mismatch.fetch_add(1, Ordering::Relaxed);
                self.note_error(format!("payload: {}", String::from_utf8_lossy(&plaintext)));
            }
        }
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(index): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let counts = receiver.counts();
    let Some(browser) = receiver.browsers.get(index) else {
        counts.unknown_subscription.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NOT_FOUND;
    };
    let n = counts.requests.fetch_add(1, Ordering::Relaxed);
    if n % receiver.sample_every == 0 {
        receiver.check(&counts, browser, &headers, &body);
    }
    StatusCode::CREATED
}

async fn reset(
    State(receiver): State<Arc<Receiver>>,
    Query(query): Query<HashMap<String, String>>,
) -> StatusCode {
    let label = query.get("label").cloned().unwrap_or_default();
    *receiver
        .current
        .write()
        .unwrap_or_else(PoisonError::into_inner) = (label, Arc::new(Counts::default()));
    *receiver
        .first_error
        .write()
        .unwrap_or_else(PoisonError::into_inner) = None;
    StatusCode::NO_CONTENT
}

async fn stats(State(receiver): State<Arc<Receiver>>) -> axum::Json<serde_json::Value> {
    let (label, counts) = receiver
        .current
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let first_error = receiver
        .first_error
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    axum::Json(serde_json::json!({
        "label": label,
        "requests": load(&counts.requests),
        "sampled": load(&counts.sampled),
        "ok": load(&counts.ok),
        "vapid_failed": load(&counts.vapid_failed),
        "decrypt_failed": load(&counts.decrypt_failed),
        "payload_mismatch": load(&counts.payload_mismatch),
        "unknown_subscription": load(&counts.unknown_subscription),
        "first_error": first_error,
    }))
}

async fn serve(
    dir: &std::path::Path,
    port: u16,
    control_port: u16,
    sample_every: u64,
) -> anyhow::Result<()> {
    let workload: Workload = serde_json::from_slice(
        &std::fs::read(dir.join("workload.json")).context("reading workload.json")?,
    )?;
    let mut browsers = Vec::with_capacity(workload.subscriptions.len());
    for sub in &workload.subscriptions {
        browsers.push(Browser {
            endpoint: Url::parse(&sub.endpoint)?,
            private_key: BASE64_URL_SAFE_NO_PAD.decode(&sub.private_key)?,
            auth: BASE64_URL_SAFE_NO_PAD.decode(&sub.keys.auth)?,
        });
    }
    if sample_every == 0 {
        bail!("--sample-every must be at least 1");
    }
    let receiver = Arc::new(Receiver {
        browsers,
        expected: serde_json::from_str(&workload.payload)?,
        sample_every,
        current: RwLock::new((String::new(), Arc::new(Counts::default()))),
        first_error: RwLock::new(None),
    });

    let control = Router::new()
        .route("/reset", post(reset))
        .route("/stats", get(stats))
        .with_state(Arc::clone(&receiver));
    let control_listener = tokio::net::TcpListener::bind(("127.0.0.1", control_port)).await?;
    tokio::spawn(async move { axum::serve(control_listener, control).await });

    let certs = vec![CertificateDer::from_pem_file(dir.join("cert.pem"))?];
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem"))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));

    let app = Router::new()
        .route("/push/{index}", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "receiving on https://127.0.0.1:{port}/push/{{index}}, control on http://127.0.0.1:{control_port}"
    );
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Gen { n, port, dir } => generate(n, port, &dir),
        Command::Serve {
            dir,
            port,
            control_port,
            sample_every,
        } => serve(&dir, port, control_port, sample_every).await,
    }
}
