//! One poll cycle over thousands of feeds that answer `304 Not Modified`, through the real
//! ingest scheduler (leases, per-host and global limits, conditional GET, recording the
//! result). A first cycle fetches every feed with a 200 and stores its validators; every feed
//! is then made due again and the second cycle, where every answer is a 304, is timed.
//!
//! Feeds are spread over `--hosts` local listeners (one port each): the scheduler limits
//! fetches per host *and port*, so with 16 hosts × 2 per host the global limit (32) is the
//! binding one.
//!
//! cargo run --release -p herald-bench --bin poll_cycle -- --feeds 5000 --database postgres

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::{DurationRound as _, TimeDelta, Utc};
use clap::{Parser, ValueEnum};
use herald_bench::corpus::{self, CorpusOptions};
use herald_bench::{peak_rss_kib, rss_kib};
use herald_ingest::config::IngestConfig;
use herald_ingest::scheduler;
use herald_store::sources::{self, NewSource, Source};
use herald_store::testing::TestDb;
use herald_store::{Db, topics};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Parser)]
struct Args {
    /// Feeds to poll.
    #[arg(long, default_value_t = 5_000)]
    feeds: usize,
    /// Local listeners (distinct host:port) the feeds are spread over.
    #[arg(long, default_value_t = 16)]
    hosts: usize,
    /// Items in each feed's first (200) answer.
    #[arg(long, default_value_t = 3)]
    items: usize,
    /// Database.
    #[arg(long, value_enum, default_value = "postgres")]
    database: Backend,
    /// PostgreSQL to create a throwaway schema in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    database_url: String,
    /// `ingest.global_concurrency` (default: the shipped default).
    #[arg(long)]
    global_concurrency: Option<usize>,
    /// `ingest.per_host_concurrency` (default: the shipped default).
    #[arg(long)]
    per_host_concurrency: Option<usize>,
    /// Give up on a cycle after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_seconds: u64,
}

/// The local feed server: every feed's body and what it was asked.
struct FeedServer {
    bodies: Vec<Bytes>,
    content_types: Vec<HeaderValue>,
    ok: AtomicU64,
    not_modified: AtomicU64,
    other: AtomicU64,
    hits: Vec<AtomicU32>,
    first_hit: std::sync::Mutex<Option<Instant>>,
    last_hit: std::sync::Mutex<Option<Instant>>,
}

const LAST_MODIFIED: &str = "Wed, 25 Nov 2026 08:00:00 GMT";

fn etag(n: usize) -> String {
    format!("\"v1-{n}\"")
}

impl FeedServer {
    fn reset(&self) {
        self.ok.store(0, Ordering::SeqCst);
        self.not_modified.store(0, Ordering::SeqCst);
        self.other.store(0, Ordering::SeqCst);
        for hit in &self.hits {
            hit.store(0, Ordering::SeqCst);
        }
        *lock(&self.first_hit) = None;
        *lock(&self.last_hit) = None;
    }

    fn answered(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
            + self.not_modified.load(Ordering::SeqCst)
            + self.other.load(Ordering::SeqCst)
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn serve_feed(
    State(server): State<Arc<FeedServer>>,
    Path(n): Path<usize>,
    headers: HeaderMap,
) -> Response {
    let now = Instant::now();
    lock(&server.first_hit).get_or_insert(now);
    *lock(&server.last_hit) = Some(now);
    let (Some(body), Some(hits)) = (server.bodies.get(n), server.hits.get(n)) else {
        server.other.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_FOUND.into_response();
    };
    hits.fetch_add(1, Ordering::SeqCst);
    let tag = etag(n);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if matches {
        server.not_modified.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, tag),
                (header::LAST_MODIFIED, LAST_MODIFIED.into()),
            ],
        )
            .into_response();
    }
    server.ok.fetch_add(1, Ordering::SeqCst);
    let content_type = server.content_types[n].clone();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::ETAG,
                HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"x\"")),
            ),
            (
                header::LAST_MODIFIED,
                HeaderValue::from_static(LAST_MODIFIED),
            ),
        ],
        body.clone(),
    )
        .into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let anchor = Utc::now().duration_trunc(TimeDelta::minutes(1))?;
    let feeds = corpus::generate(&CorpusOptions {
        feeds: args.feeds,
        min_items: args.items,
        max_items: args.items,
        seed: 7,
        anchor,
    });
    let server = Arc::new(FeedServer {
        bodies: feeds.iter().map(|f| Bytes::from(f.body.clone())).collect(),
        content_types: feeds
            .iter()
            .map(|f| {
                HeaderValue::from_str(&f.content_type)
                    .unwrap_or(HeaderValue::from_static("application/xml"))
            })
            .collect(),
        ok: AtomicU64::new(0),
        not_modified: AtomicU64::new(0),
        other: AtomicU64::new(0),
        hits: (0..feeds.len()).map(|_| AtomicU32::new(0)).collect(),
        first_hit: std::sync::Mutex::new(None),
        last_hit: std::sync::Mutex::new(None),
    });
    drop(feeds);
    let app = Router::new()
        .route("/feed/{n}", get(serve_feed))
        .with_state(server.clone());
    let mut ports = Vec::new();
    for _ in 0..args.hosts.max(1) {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        ports.push(listener.local_addr()?.port());
        let app = app.clone();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    let test_db = match args.database {
        Backend::Sqlite => TestDb::sqlite(),
        Backend::Postgres => TestDb::postgres(&args.database_url).await,
    };
    let name = match args.database {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    // The pool the app would open, not the tests' small one.
    let mut db_config = test_db.config();
    db_config.max_connections = herald_store::DatabaseConfig::default().max_connections;
    let db = herald_store::connect(&db_config).await?;
    herald_store::migrate::up(&db).await?;
    let catalog = herald::catalog::Catalog::load(None)?;
    let topic_list = catalog.topics();
    topics::sync(&db, &topic_list).await?;
    let mut created = Vec::with_capacity(args.feeds);
    for (n, topic) in (0..args.feeds).zip(topic_list.iter().cycle()) {
        let port = ports[n % ports.len()];
        created.push(
            sources::create(
                &db,
                NewSource {
                    name: format!("Publisher {n}"),
                    feed_url: format!("http://127.0.0.1:{port}/feed/{n}"),
                    site_url: None,
                    topics: vec![topic.slug.clone()],
                    language: Some("en".into()),
                    breaking: false,
                    poll_interval_seconds: None,
                },
            )
            .await?,
        );
    }

    let mut config = IngestConfig {
        allow_private_addresses: true,
        ..IngestConfig::default()
    };
    if let Some(global) = args.global_concurrency {
        config.global_concurrency = global;
    }
    if let Some(per_host) = args.per_host_concurrency {
        config.per_host_concurrency = per_host;
    }
    println!(
        "{name}: {} feeds over {} hosts, global concurrency {}, per host {}, pool {} connections",
        args.feeds,
        ports.len(),
        config.global_concurrency,
        config.per_host_concurrency,
        db_config.max_connections
    );

    let timeout = Duration::from_secs(args.timeout_seconds);
    let first = cycle(&db, &config, &topic_list, &server, 200, args.feeds, timeout).await?;
    println!(
        "first cycle (200, {} items each, stored): {:.2} s, {:.0} feeds/s",
        args.items,
        first.total,
        args.feeds as f64 / first.total
    );

    for source in &created {
        sources::fetch_now(&db, source.id).await?;
    }
    server.reset();
    let rss_before = rss_kib().unwrap_or(0);
    let second = cycle(&db, &config, &topic_list, &server, 304, args.feeds, timeout).await?;
    let fetched_twice = server
        .hits
        .iter()
        .filter(|h| h.load(Ordering::SeqCst) > 1)
        .count();
    let not_fetched = server
        .hits
        .iter()
        .filter(|h| h.load(Ordering::SeqCst) == 0)
        .count();
    println!(
        "304 cycle: {:.2} s from start, {:.0} feeds/s; first request after {:.2} s (clusterer restore), \
         first to last request {:.2} s; 304s {}, 200s {}, other {}; fetched twice {fetched_twice}, not fetched {not_fetched}",
        second.total,
        args.feeds as f64 / second.total,
        second.to_first_request,
        second.requests_span,
        server.not_modified.load(Ordering::SeqCst),
        server.ok.load(Ordering::SeqCst),
        server.other.load(Ordering::SeqCst),
    );
    println!(
        "RSS before the 304 cycle: {} MiB; peak RSS (feed server in-process): {} MiB",
        rss_before / 1024,
        peak_rss_kib().unwrap_or(0) / 1024
    );
    db.close().await?;
    Ok(())
}

struct Cycle {
    /// From starting the scheduler to the last feed's result recorded.
    total: f64,
    /// From starting the scheduler to the first request the server saw.
    to_first_request: f64,
    /// From the first to the last request the server saw.
    requests_span: f64,
}

/// Runs the ingest role until every feed's last status is `status`, then stops it.
async fn cycle(
    db: &Db,
    config: &IngestConfig,
    topic_list: &[herald_store::topics::Topic],
    server: &FeedServer,
    status: u16,
    feeds: usize,
    timeout: Duration,
) -> anyhow::Result<Cycle> {
    let stop = CancellationToken::new();
    let started = Instant::now();
    let since = Utc::now();
    let role = tokio::spawn(scheduler::run(
        db.clone(),
        config.clone(),
        topic_list.to_vec(),
        herald_store::Heartbeat::new("ingest"),
        stop.clone(),
    ));
    let done = loop {
        if started.elapsed() > timeout {
            stop.cancel();
            bail!("cycle did not finish in {timeout:?}");
        }
        // Listing every source is itself load: only once the server has answered every feed.
        if server.answered() >= feeds as u64 {
            let listed = sources::list(db).await?;
            let finished = |s: &Source| {
                s.last_status == Some(status)
                    && s.lease_owner.is_none()
                    && s.last_fetch_at.is_some_and(|at| at >= since)
            };
            if listed.iter().filter(|s| finished(s)).count() == feeds {
                break started.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.cancel();
    role.await
        .context("the ingest role panicked")?
        .context("the ingest role failed")?;
    let first = (*lock(&server.first_hit)).unwrap_or(started);
    let last = (*lock(&server.last_hit)).unwrap_or(first);
    Ok(Cycle {
        total: done.as_secs_f64(),
        to_first_request: first.duration_since(started).as_secs_f64(),
        requests_span: last.duration_since(first).as_secs_f64(),
    })
}
