//! Feed parsing throughput: every feed file of a directory through Herald's parse + normalise,
//! exactly as ingestion runs them (`parse_feed` with the served `Content-Type`, then
//! `normalize_item` per item against the feed's site URL), on one thread. Files are read into
//! memory first; only parsing is timed. Prints one JSON line (the best of `--rounds`).
//!
//! A `manifest.tsv` in the directory (as `ingest_throughput --write-corpus` writes: file, feed
//! URL, content type, ...) gives each file its URL and `Content-Type`; without one, files are
//! parsed with no content type (the XML declaration names the encoding).
//!
//! cargo run --release -p herald-bench --bin parse_corpus -- --dir target/bench-data/corpus

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::Utc;
use clap::Parser;
use herald_ingest::normalize::normalize_item;
use herald_ingest::parse::parse_feed;
use url::Url;

#[derive(Parser)]
struct Args {
    /// Directory of feed files (RSS, Atom, JSON Feed; any encoding).
    #[arg(long)]
    dir: PathBuf,
    /// Passes over the corpus; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let manifest = read_manifest(&args.dir)?;
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&args.dir)
        .with_context(|| format!("reading {}", args.dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() || name == "manifest.tsv" {
            continue;
        }
        let (url, content_type) = match manifest.get(&name) {
            Some((url, content_type)) => (Url::parse(url)?, Some(content_type.clone())),
            None => (
                Url::parse(&format!("https://feeds.example.com/{name}"))?,
                None,
            ),
        };
        files.push((url, content_type, std::fs::read(entry.path())?));
    }
    if files.is_empty() {
        bail!("no files in {}", args.dir.display());
    }
    let bytes: usize = files.iter().map(|(_, _, body)| body.len()).sum();

    let mut best = f64::INFINITY;
    let (mut items, mut normalised, mut failed_feeds) = (0usize, 0usize, 0usize);
    for _ in 0..args.rounds.max(1) {
        (items, normalised, failed_feeds) = (0, 0, 0);
        let fetched_at = Utc::now();
        let started = Instant::now();
        for (feed_url, content_type, body) in &files {
            let parsed = match parse_feed(body, content_type.as_deref(), feed_url, fetched_at) {
                Ok(parsed) => parsed,
                Err(_) => {
                    failed_feeds += 1;
                    continue;
                }
            };
            let base = parsed.site_url.clone().unwrap_or_else(|| feed_url.clone());
            items += parsed.items.len();
            normalised += parsed
                .items
                .iter()
                .filter_map(|item| normalize_item(item, &base, fetched_at).ok())
                .count();
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({
            "parser": "herald",
            "manifest": !manifest.is_empty(),
            "files": files.len(),
            "failed_feeds": failed_feeds,
            "bytes": bytes,
            "items": items,
            "normalised": normalised,
            "seconds": best,
            "items_per_s": items as f64 / best,
            "mb_per_s": bytes as f64 / 1e6 / best,
        })
    );
    Ok(())
}

/// `file -> (feed URL, content type)` from `manifest.tsv`, if the directory has one.
fn read_manifest(dir: &std::path::Path) -> anyhow::Result<HashMap<String, (String, String)>> {
    let mut map = HashMap::new();
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.tsv")) else {
        return Ok(map);
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = line.split('\t');
        if let (Some(file), Some(url), Some(content_type)) =
            (fields.next(), fields.next(), fields.next())
            && file != "file"
        {
            map.insert(file.to_owned(), (url.to_owned(), content_type.to_owned()));
        }
    }
    Ok(map)
}
