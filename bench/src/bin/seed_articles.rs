//! Fills a Herald database with N articles for the reader-API benchmark.
//!
//! Topics and publishers go in through the store (`topics::sync`, `sources::create`); stories
//! and articles by multi-row INSERTs of 500 rows (one transaction per 20,000), because going
//! through `stories::add_article` one article at a time would take hours at 1M. Articles come
//! in stories of four, each from a different publisher, one or two topics each (a sixth of
//! them `world`), published 2.5 s apart from 2026-10-01, with realistic titles and summaries.
//! Ids are deterministic, so the same N always yields the same sample article.
//!
//! When the database already holds exactly N articles it is left as it is (use `--reset` to
//! rebuild). Prints one JSON line: articles, seconds, a sample article id with related articles.
//!
//! cargo run --release -p herald-bench --bin seed_articles -- \
//!   --database-url sqlite://target/bench-data/articles-100000.db --articles 100000
//! cargo run --release -p herald-bench --bin seed_articles -- \
//!   --database-url postgres://postgres@127.0.0.1:5432/test --schema bench_articles_100000 --articles 100000

use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use clap::Parser;
use herald_store::sources::NewSource;
use herald_store::topics::Topic;
use herald_store::{DatabaseConfig, DatabaseUrl, migrate};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, Database, TransactionTrait, Value};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// `sqlite://path.db` or `postgres://...`.
    #[arg(long)]
    database_url: String,
    /// PostgreSQL schema to seed (created if missing).
    #[arg(long)]
    schema: Option<String>,
    /// Articles to create.
    #[arg(long, default_value_t = 100_000)]
    articles: u64,
    /// Publishers.
    #[arg(long, default_value_t = 40)]
    sources: u64,
    /// Drop what is there first.
    #[arg(long)]
    reset: bool,
}

/// Topic slugs of `config/sources.toml`; `world` is the one the benchmark lists.
const TOPICS: [&str; 7] = [
    "world",
    "india",
    "business",
    "technology",
    "entertainment",
    "health",
    "sports",
];
const ARTICLES_PER_STORY: u64 = 4;
const ROWS_PER_INSERT: u64 = 500;
const ROWS_PER_TRANSACTION: u64 = 20_000;

const WORDS: &[&str] = &[
    "government",
    "minister",
    "election",
    "parliament",
    "court",
    "ruling",
    "markets",
    "shares",
    "inflation",
    "central bank",
    "rates",
    "talks",
    "ceasefire",
    "summit",
    "envoy",
    "storm",
    "flood",
    "rescue",
    "police",
    "report",
    "budget",
    "tax",
    "hospital",
    "vaccine",
    "students",
    "climate",
    "energy",
    "oil",
    "prices",
    "final",
    "coach",
    "season",
    "record",
    "league",
    "startup",
    "chip",
    "privacy",
    "researchers",
    "launch",
    "satellite",
    "council",
    "housing",
    "rail",
    "strike",
    "workers",
    "wages",
    "exports",
    "tariffs",
    "border",
    "festival",
    "film",
    "album",
    "award",
];

/// A small deterministic generator (SplitMix64), so titles depend only on the index.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn word(&mut self) -> &'static str {
        WORDS[(self.next() % WORDS.len() as u64) as usize]
    }

    fn sentence(&mut self, words: u64) -> String {
        let mut out = String::new();
        for i in 0..words {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.word());
        }
        let mut chars = out.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => out,
        }
    }
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn published_at(index: u64) -> DateTime<Utc> {
    base_time() + Duration::milliseconds(i64::try_from(index * 2500).unwrap_or(i64::MAX))
}

/// A UUIDv7 carrying the publication time, with the rest derived from `index` and `kind`.
fn v7(index: u64, kind: u8, at: DateTime<Utc>) -> Uuid {
    let mut tail = [0u8; 10];
    tail[..8].copy_from_slice(&index.to_be_bytes());
    tail[8] = kind;
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
}

fn article_id(index: u64) -> Uuid {
    v7(index, 1, published_at(index))
}

fn story_id(story: u64) -> Uuid {
    v7(story, 2, published_at(story * ARTICLES_PER_STORY))
}

fn story_topics(story: u64) -> Vec<String> {
    let primary = TOPICS[(story % TOPICS.len() as u64) as usize];
    let mut topics = vec![primary.to_owned()];
    if story.is_multiple_of(5) {
        let second = TOPICS[((story / 5 + 1) % TOPICS.len() as u64) as usize];
        if second != primary {
            topics.push(second.to_owned());
        }
    }
    topics
}

fn headline(story: u64) -> String {
    Mix(story).sentence(7 + story % 6)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = DatabaseUrl::parse(&args.database_url).map_err(anyhow::Error::msg)?;
    let started = Instant::now();

    if let Some(schema) = &args.schema {
        anyhow::ensure!(
            schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "schema must be letters, digits and underscores"
        );
        let admin = Database::connect(args.database_url.as_str()).await?;
        if args.reset {
            admin
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await?;
        }
        admin
            .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
        admin.close().await?;
    } else if args.reset
        && let Some(path) = url.sqlite_path()
    {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }

    let config = DatabaseConfig {
        url,
        schema: args.schema.clone(),
        max_connections: 4,
        ..DatabaseConfig::default()
    };
    let db = herald_store::connect(&config).await?;
    migrate::up(&db).await?;

    let existing = herald_store::articles::count(&db).await?;
    let mut seeded = false;
    if existing != args.articles {
        anyhow::ensure!(
            existing == 0,
            "the database holds {existing} articles, not {}; run with --reset",
            args.articles
        );
        seed(&db, &args).await?;
        seeded = true;
    }
    let count = herald_store::articles::count(&db).await?;
    // Story 7 is a `technology` story of four: its first article has three related ones; for
    // the list route, `world` is topic 0.
    let sample = article_id(7 * ARTICLES_PER_STORY + 1);
    herald_store::articles::get(&db, sample)
        .await
        .context("the sample article is missing")?;
    println!(
        "{}",
        serde_json::json!({
            "articles": count,
            "seeded": seeded,
            "seconds": started.elapsed().as_secs_f64(),
            "sample_article_id": sample.to_string(),
        })
    );
    db.close().await?;
    Ok(())
}

async fn seed(db: &sea_orm::DatabaseConnection, args: &Args) -> anyhow::Result<()> {
    let topics: Vec<Topic> = TOPICS
        .iter()
        .map(|slug| Topic {
            slug: (*slug).to_owned(),
            name: slug.to_uppercase(),
            description: format!("{slug} news"),
            keywords: Vec::new(),
            min_sources: 4,
            window_minutes: 120,
        })
        .collect();
    herald_store::topics::sync(db, &topics).await?;
    let mut sources = Vec::new();
    for i in 0..args.sources.max(ARTICLES_PER_STORY) {
        let source = herald_store::sources::create(
            db,
            NewSource {
                name: format!("Bench Publisher {i}"),
                feed_url: format!("https://publisher{i}.bench.example/feed.xml"),
                site_url: Some(format!("https://publisher{i}.bench.example/")),
                topics: vec![TOPICS[(i % TOPICS.len() as u64) as usize].to_owned()],
                language: Some("en".to_owned()),
                breaking: false,
                poll_interval_seconds: Some(3600),
            },
        )
        .await?;
        sources.push(source.id);
    }

    let stories = args.articles.div_ceil(ARTICLES_PER_STORY);
    let mut done = 0;
    while done < stories {
        let end = (done + ROWS_PER_TRANSACTION).min(stories);
        let txn = db.begin().await?;
        let result = insert_stories(&txn, done, end, args.articles).await;
        finish(txn, result).await?;
        done = end;
    }
    eprintln!(
        "seed: {stories} stories, now articles ({} per insert)",
        ROWS_PER_INSERT
    );

    let mut done = 0;
    while done < args.articles {
        let end = (done + ROWS_PER_TRANSACTION).min(args.articles);
        let txn = db.begin().await?;
        let result = insert_articles(&txn, done, end, &sources).await;
        finish(txn, result).await?;
        done = end;
        if done.is_multiple_of(200_000) || done == args.articles {
            eprintln!("seed: {done} / {} articles", args.articles);
        }
    }
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(())
}

/// Commits on success, rolls back on failure: never leaves a transaction open.
async fn finish(
    txn: sea_orm::DatabaseTransaction,
    result: anyhow::Result<()>,
) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(txn.commit().await?),
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

async fn insert_stories(
    txn: &impl ConnectionTrait,
    from: u64,
    to: u64,
    articles: u64,
) -> anyhow::Result<()> {
    let mut start = from;
    while start < to {
        let end = (start + ROWS_PER_INSERT).min(to);
        let mut insert = Query::insert();
        insert.into_table(Alias::new("stories")).columns(
            [
                "id",
                "headline",
                "topics",
                "article_count",
                "source_count",
                "first_seen_at",
                "updated_at",
                "breaking_at",
            ]
            .map(Alias::new),
        );
        for story in start..end {
            let first = story * ARTICLES_PER_STORY;
            let members = (articles - first).min(ARTICLES_PER_STORY);
            let members = i32::try_from(members).unwrap_or(i32::MAX);
            let last = published_at(first + ARTICLES_PER_STORY - 1);
            insert.values([
                story_id(story).into(),
                headline(story).into(),
                serde_json::json!(story_topics(story)).into(),
                members.into(),
                members.into(),
                published_at(first).into(),
                last.into(),
                Expr::val(Value::ChronoDateTimeUtc(None)),
            ])?;
        }
        txn.execute(&insert).await?;
        start = end;
    }
    Ok(())
}

async fn insert_articles(
    txn: &impl ConnectionTrait,
    from: u64,
    to: u64,
    sources: &[Uuid],
) -> anyhow::Result<()> {
    let mut start = from;
    while start < to {
        let end = (start + ROWS_PER_INSERT).min(to);
        let mut insert = Query::insert();
        insert.into_table(Alias::new("articles")).columns(
            [
                "id",
                "source_id",
                "dedupe_key",
                "canonical_url",
                "title",
                "summary",
                "content_html",
                "image_url",
                "author",
                "language",
                "topics",
                "story_id",
                "published_at",
                "fetched_at",
                "updated_at",
            ]
            .map(Alias::new),
        );
        for index in start..end {
            let story = index / ARTICLES_PER_STORY;
            // Consecutive articles of a story come from different publishers.
            let publisher = (story * 7 + index % ARTICLES_PER_STORY) % sources.len() as u64;
            let mut mix = Mix(index.wrapping_mul(0x2545_F491_4F6C_DD1D));
            let topics = story_topics(story);
            let mut title = headline(story);
            title.push_str(&format!(" — {}", mix.sentence(2 + index % 3)));
            let summary = format!(
                "{}. {}. {}.",
                mix.sentence(18),
                mix.sentence(14),
                mix.sentence(10)
            );
            let content = format!(
                "<p>{summary}</p><p>{}.</p><p>{}.</p>",
                mix.sentence(30),
                mix.sentence(24)
            );
            let host = format!("https://publisher{publisher}.bench.example");
            let slug = title
                .to_lowercase()
                .split_whitespace()
                .take(6)
                .collect::<Vec<_>>()
                .join("-");
            let at = published_at(index);
            let source_id = sources
                .get(usize::try_from(publisher).unwrap_or(0))
                .copied()
                .unwrap_or_default();
            insert.values([
                article_id(index).into(),
                source_id.into(),
                format!("guid:bench-{index}").into(),
                format!("{host}/{}/{slug}-{index}", topics[0]).into(),
                title.into(),
                summary.into(),
                content.into(),
                format!("{host}/images/{index}.jpg").into(),
                mix.sentence(2).into(),
                "en".into(),
                serde_json::json!(topics).into(),
                story_id(story).into(),
                at.into(),
                (at + Duration::seconds(90)).into(),
                (at + Duration::seconds(90)).into(),
            ])?;
        }
        txn.execute(&insert).await?;
        start = end;
    }
    Ok(())
}
