//! Herald's Web Push sender against the suite's receiver: messages/s at several concurrencies.
//!
//! Reads the workload `push_receiver gen` wrote and sends the alert to every subscription
//! through `herald_notifier::send::WebPushSender` (RFC 8291 encryption with a fresh ECDH key
//! per message, the cached VAPID header, one pooled HTTP client), as the notifier does.
//! Prints one JSON line per concurrency. The receiver's certificate is trusted through
//! `SSL_CERT_FILE`; loopback endpoints need `push.allow_insecure_endpoints`, as in tests.
//!
//! SSL_CERT_FILE=target/bench-data/push/cert.pem \
//!   cargo run --release -p herald-bench --bin webpush_rate -- --workload target/bench-data/push/workload.json

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use clap::Parser;
use herald_bench::push_workload::Workload;
use herald_notifier::config::{PushConfig, WebPushConfig};
use herald_notifier::send::{AlertPayload, DeliveryOutcome, MessageOptions, WebPushSender};
use herald_notifier::webpush::{
    SubscriptionKeys, Urgency, VapidKeys, VapidSigner, WebPushSubscription,
};
use url::Url;

#[derive(Parser)]
struct Args {
    /// The workload file from `push_receiver gen`.
    #[arg(long)]
    workload: PathBuf,
    /// Requests in flight to try, comma-separated; each sends to every subscription.
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024")]
    concurrency: Vec<usize>,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    runtime.build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let workload: Workload =
        serde_json::from_slice(&std::fs::read(&args.workload).context("reading the workload")?)?;
    let payload: AlertPayload = serde_json::from_str(&workload.payload)?;
    let urgency = match workload.urgency.as_str() {
        "very-low" => Urgency::VeryLow,
        "low" => Urgency::Low,
        "high" => Urgency::High,
        _ => Urgency::Normal,
    };
    let opts = MessageOptions {
        collapse_key: Some(workload.topic.clone()),
        ..MessageOptions::for_alert(&payload, urgency, workload.ttl)
    };
    let mut subscriptions = Vec::with_capacity(workload.subscriptions.len());
    for sub in &workload.subscriptions {
        subscriptions.push(WebPushSubscription {
            endpoint: Url::parse(&sub.endpoint)?,
            keys: SubscriptionKeys::parse(&sub.keys.p256dh, &sub.keys.auth)?,
        });
    }
    let subscriptions = Arc::new(subscriptions);
    let payload = Arc::new(payload);
    let opts = Arc::new(opts);

    for &concurrency in &args.concurrency {
        let concurrency = concurrency.max(1);
        let vapid = VapidKeys::from_raw_private_key(
            &BASE64_URL_SAFE_NO_PAD.decode(&workload.vapid.private_key)?,
        )?;
        let signer = VapidSigner::new(vapid, workload.vapid.subject.clone())?;
        let config = PushConfig {
            allow_insecure_endpoints: true,
            vapid_subject: workload.vapid.subject.clone(),
            webpush: WebPushConfig {
                concurrency,
                timeout_seconds: 30,
                ..WebPushConfig::default()
            },
            ..PushConfig::default()
        };
        // A fresh sender per run: connections are opened inside the timed run, as for the peers.
        let sender = Arc::new(WebPushSender::new(&config, signer)?);
        let next = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let (sender, next, sent, failed) = (
                Arc::clone(&sender),
                Arc::clone(&next),
                Arc::clone(&sent),
                Arc::clone(&failed),
            );
            let (subscriptions, payload, opts) = (
                Arc::clone(&subscriptions),
                Arc::clone(&payload),
                Arc::clone(&opts),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sub) = subscriptions.get(index) else {
                        break;
                    };
                    match sender.send(sub, &payload, &opts).await {
                        DeliveryOutcome::Sent => sent.fetch_add(1, Ordering::Relaxed),
                        other => {
                            if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("first failure: {other:?}");
                            }
                            0
                        }
                    };
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let sent = sent.load(Ordering::Relaxed);
        println!(
            "{}",
            serde_json::json!({
                "sender": "herald",
                "concurrency": concurrency,
                "messages": subscriptions.len(),
                "sent": sent,
                "failed": failed.load(Ordering::Relaxed),
                "seconds": seconds,
                "rate": sent as f64 / seconds,
            })
        );
    }
    Ok(())
}
