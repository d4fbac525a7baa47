//! One alert fanned out to N Web Push subscriptions on PostgreSQL, delivered to a minimal local
//! receiver that answers 201: deliveries/s, time to the first and last delivery, peak RSS.
//! Every message is really encrypted (RFC 8291, fresh ECDH key each) and VAPID-signed.
//!
//! cargo run --release -p herald-bench --bin fanout -- --devices 1000000

use aws_lc_rs::agreement::{ECDH_P256, EphemeralPrivateKey};
use aws_lc_rs::rand::SystemRandom;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use clap::Parser;
use herald_bench::peak_rss_kib;
use herald_notifier::config::PushConfig;
use herald_notifier::fanout::{Fanout, FanoutMetrics, FanoutSettings, Senders};
use herald_notifier::webpush::VapidKeys;
use herald_store::queue::{self, AlertState, NewQueuedAlert};
use herald_store::testing::{SeedAudience, TestDb};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Subscriptions to fan out to (4 per reader).
    #[arg(long, default_value_t = 1_000_000)]
    devices: u64,
    /// Notifier workers in this process (they share the queue through leases).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Devices per batch.
    #[arg(long, default_value_t = FanoutSettings::default().batch_size)]
    batch: u64,
    /// PostgreSQL to seed a throwaway schema in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    database_url: String,
}

#[derive(Default)]
struct Receiver {
    count: AtomicU64,
    first_micros: AtomicU64,
    last_micros: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let since = move || started.elapsed().as_micros() as u64;

    // The receiver: accept, count, answer 201.
    let receiver = Arc::new(Receiver::default());
    let app = Router::new().route(
        "/push/{*rest}",
        post({
            let receiver = receiver.clone();
            move || {
                let receiver = receiver.clone();
                async move {
                    let now = since();
                    if receiver.count.fetch_add(1, Ordering::Relaxed) == 0 {
                        receiver.first_micros.store(now, Ordering::Relaxed);
                    }
                    receiver.last_micros.fetch_max(now, Ordering::Relaxed);
                    StatusCode::CREATED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let test_db = TestDb::postgres(&args.database_url).await;
    let db = test_db.connect().await;
    let key = EphemeralPrivateKey::generate(&ECDH_P256, &SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("key generation failed"))?;
    let public = key
        .compute_public_key()
        .map_err(|_| anyhow::anyhow!("public key"))?;
    let users = args.devices.div_ceil(4);
    eprintln!("seeding {users} readers with 4 Web Push subscriptions each …");
    let seeding = Instant::now();
    let base = format!("http://127.0.0.1:{port}/push/");
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
    eprintln!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let config = PushConfig {
        allow_insecure_endpoints: true,
        ..PushConfig::default()
    };
    let senders = Senders::from_config(&config, VapidKeys::generate()?)?;
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
            let first = receiver
                .first_micros
                .load(Ordering::Relaxed)
                .saturating_sub(created);
            let last = receiver
                .last_micros
                .load(Ordering::Relaxed)
                .saturating_sub(created);
            println!("devices: {}", counters.targeted);
            println!(
                "sent: {}  failed: {}  received by the receiver: {received}",
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
