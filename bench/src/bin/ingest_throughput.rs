//! Ingestion throughput over a generated corpus of ≥ 1,000 realistic feeds: parse + normalise
//! alone (no database), then the whole path the ingest role takes for each fetched body
//! (`Pipeline::ingest`: parse → normalise → topics → dedupe/store → story assignment →
//! breaking check) on SQLite and PostgreSQL, first with every item new, then re-fetched.
//!
//! cargo run --release -p herald-bench --bin ingest_throughput -- --feeds 1000
//! cargo run --release -p herald-bench --bin ingest_throughput -- --write-corpus /tmp/corpus

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use clap::{Parser, ValueEnum};
use herald_bench::corpus::{self, CorpusFeed, CorpusOptions};
use herald_bench::{peak_rss_kib, rss_kib};
use herald_ingest::cluster::ClusterConfig;
use herald_ingest::normalize::normalize_item;
use herald_ingest::parse::parse_feed;
use herald_ingest::pipeline::{IngestReport, Pipeline};
use herald_store::sources::{self, NewSource, Source};
use herald_store::testing::TestDb;
use herald_store::{Db, topics};
use url::Url;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
    /// No database: parse + normalise only.
    None,
}

#[derive(Parser)]
struct Args {
    /// Feeds in the corpus.
    #[arg(long, default_value_t = 1_000)]
    feeds: usize,
    /// Fewest items per feed.
    #[arg(long, default_value_t = 20)]
    min_items: usize,
    /// Most items per feed.
    #[arg(long, default_value_t = 50)]
    max_items: usize,
    /// Corpus seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Newest item time (RFC 3339); items span the three days before it. Default: this hour.
    #[arg(long)]
    anchor: Option<DateTime<Utc>>,
    /// Write the corpus (feeds + manifest.tsv) to this folder and exit.
    #[arg(long)]
    write_corpus: Option<PathBuf>,
    /// Rounds of the parse + normalise measurement (the best is reported).
    #[arg(long, default_value_t = 3)]
    parse_rounds: usize,
    /// Databases to run the stored path on (none: parse + normalise only).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["sqlite", "postgres"])]
    databases: Vec<Backend>,
    /// PostgreSQL to create a throwaway schema in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    database_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let anchor = match args.anchor {
        Some(anchor) => anchor,
        None => Utc::now().duration_trunc(TimeDelta::hours(1))?,
    };
    let options = CorpusOptions {
        feeds: args.feeds,
        min_items: args.min_items,
        max_items: args.max_items,
        seed: args.seed,
        anchor,
    };
    let started = Instant::now();
    let feeds = corpus::generate(&options);
    let items: usize = feeds.iter().map(|f| f.items).sum();
    let bytes: usize = feeds.iter().map(|f| f.body.len()).sum();
    eprintln!(
        "corpus: {} feeds, {items} items, {:.1} MiB, generated in {:.1} s (seed {}, anchor {})",
        feeds.len(),
        bytes as f64 / 1_048_576.0,
        started.elapsed().as_secs_f64(),
        args.seed,
        anchor.to_rfc3339()
    );
    if let Some(dir) = &args.write_corpus {
        corpus::write_corpus(dir, &feeds, &options)
            .with_context(|| format!("writing the corpus to {}", dir.display()))?;
        println!(
            "wrote {} feeds and manifest.tsv to {}",
            feeds.len(),
            dir.display()
        );
        return Ok(());
    }
    println!(
        "corpus: {} feeds ({} RSS 2.0, {} Atom, {} ISO-8859-1), {items} items, {:.1} MiB",
        feeds.len(),
        feeds
            .iter()
            .filter(|f| f.format == corpus::FeedFormat::Rss2)
            .count(),
        feeds
            .iter()
            .filter(|f| f.format == corpus::FeedFormat::Atom)
            .count(),
        feeds.iter().filter(|f| f.encoding != "UTF-8").count(),
        bytes as f64 / 1_048_576.0
    );
    println!(
        "RSS with the corpus in memory: {} MiB",
        rss_kib().unwrap_or(0) / 1024
    );

    let fetched_at = anchor + TimeDelta::minutes(5);
    let mut best = f64::MAX;
    for round in 0..args.parse_rounds.max(1) {
        let (elapsed, normalized) = parse_and_normalize(&feeds, fetched_at)?;
        eprintln!(
            "parse + normalise round {}: {elapsed:.2} s, {normalized} articles",
            round + 1
        );
        best = best.min(elapsed);
    }
    println!(
        "parse + normalise (one thread, no database): {:.0} items/s, {:.0} feeds/s, {:.1} MiB/s (best of {}: {best:.2} s)",
        items as f64 / best,
        feeds.len() as f64 / best,
        bytes as f64 / 1_048_576.0 / best,
        args.parse_rounds.max(1)
    );
    println!(
        "peak RSS so far: {} MiB",
        peak_rss_kib().unwrap_or(0) / 1024
    );

    let catalog = herald::catalog::Catalog::load(None)?;
    let topics = catalog.topics();
    for backend in &args.databases {
        let test_db = match backend {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres(&args.database_url).await,
            Backend::None => continue,
        };
        let name = match backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::None => continue,
        };
        // The pool the app would open, not the tests' small one.
        let mut config = test_db.config();
        config.max_connections = herald_store::DatabaseConfig::default().max_connections;
        let db = herald_store::connect(&config).await?;
        herald_store::migrate::up(&db).await?;
        topics::sync(&db, &topics).await?;
        let sources = create_sources(&db, &feeds, &topics).await?;
        let mut pipeline = Pipeline::new(&topics, ClusterConfig::default());

        for pass in ["new items", "re-fetched, unchanged"] {
            let started = Instant::now();
            let mut total = IngestReport::default();
            let mut breaking = 0;
            for (done, (feed, source)) in feeds.iter().zip(&sources).enumerate() {
                if done > 0 && done % 100 == 0 {
                    eprintln!(
                        "  {name}, {pass}: {done}/{} feeds, {} items, {:.0} items/s so far",
                        feeds.len(),
                        total.items,
                        total.items as f64 / started.elapsed().as_secs_f64()
                    );
                }
                let url = Url::parse(&feed.feed_url)?;
                let report = pipeline
                    .ingest(
                        &db,
                        source,
                        Bytes::from(feed.body.clone()),
                        Some(feed.content_type.clone()),
                        &url,
                        fetched_at,
                    )
                    .await?;
                total.items += report.items;
                total.skipped += report.skipped;
                total.inserted += report.inserted;
                total.updated += report.updated;
                total.unchanged += report.unchanged;
                breaking += report.breaking.len();
            }
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "{name}, {pass}: {:.0} items/s ({} items in {elapsed:.1} s; inserted {}, updated {}, unchanged {}, skipped {}, breaking events {breaking})",
                total.items as f64 / elapsed,
                total.items,
                total.inserted,
                total.updated,
                total.unchanged,
                total.skipped,
            );
        }
        let story_count = count_stories(&db, anchor - TimeDelta::days(30)).await?;
        println!(
            "{name}: {} articles in {story_count} stories; peak RSS so far: {} MiB",
            herald_store::articles::count(&db).await?,
            peak_rss_kib().unwrap_or(0) / 1024
        );
        db.close().await?;
    }
    Ok(())
}

/// Parses and normalises every feed the way the pipeline does; returns seconds and articles.
fn parse_and_normalize(
    feeds: &[CorpusFeed],
    fetched_at: DateTime<Utc>,
) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let mut normalized = 0;
    for feed in feeds {
        let url = Url::parse(&feed.feed_url)?;
        let parsed = parse_feed(&feed.body, Some(&feed.content_type), &url, fetched_at)
            .with_context(|| format!("feed {}", feed.index))?;
        let base = parsed.site_url.clone().unwrap_or(url);
        normalized += parsed
            .items
            .iter()
            .filter_map(|item| normalize_item(item, &base, fetched_at).ok())
            .count();
    }
    Ok((started.elapsed().as_secs_f64(), normalized))
}

/// One source per feed, each with one of the catalogue's topics as its default, as publishers
/// are configured.
async fn create_sources(
    db: &Db,
    feeds: &[CorpusFeed],
    topics: &[herald_store::topics::Topic],
) -> anyhow::Result<Vec<Source>> {
    let mut created = Vec::with_capacity(feeds.len());
    for (feed, topic) in feeds.iter().zip(topics.iter().cycle()) {
        created.push(
            sources::create(
                db,
                NewSource {
                    name: feed.publisher.clone(),
                    feed_url: feed.feed_url.clone(),
                    site_url: Some(feed.site_url.clone()),
                    topics: vec![topic.slug.clone()],
                    language: Some("en".into()),
                    breaking: false,
                    poll_interval_seconds: None,
                },
            )
            .await?,
        );
    }
    Ok(created)
}

/// Distinct stories of the stored articles.
async fn count_stories(db: &Db, since: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut ids = std::collections::HashSet::new();
    for article in herald_store::articles::published_since(db, since).await? {
        if let Some(story) = article.story_id {
            ids.insert(story);
        }
    }
    Ok(ids.len())
}
