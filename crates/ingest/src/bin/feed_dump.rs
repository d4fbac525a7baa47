//! Prints what Herald extracts from feed files, one JSON line per feed:
//! `{"file", "error"?, "entries": [{"title", "link", "image"}]}` — for comparing with
//! feedparser (`bench/feedparser/compare.py`).

use std::io::Write as _;

use herald_ingest::normalize::normalize_item;
use herald_ingest::parse::parse_feed;
use url::Url;

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(value: Option<&str>) -> String {
    value.map_or_else(|| "null".to_owned(), json_string)
}

fn main() {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let now = chrono::Utc::now();
    for path in std::env::args().skip(1) {
        let Ok(body) = std::fs::read(&path) else {
            eprintln!("cannot read {path}");
            continue;
        };
        let name = std::path::Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(base) = Url::parse(&format!("https://fixtures.invalid/{name}")) else {
            continue;
        };
        let line = match parse_feed(&body, None, &base, now) {
            Err(err) => format!(
                "{{\"file\":{},\"error\":{},\"entries\":[]}}",
                json_string(&path),
                json_string(&err.to_string())
            ),
            Ok(feed) => {
                let site = feed.site_url.clone().unwrap_or(base);
                let entries: Vec<String> = feed
                    .items
                    .iter()
                    .map(|item| match normalize_item(item, &site, now) {
                        Ok(a) => format!(
                            "{{\"title\":{},\"link\":{},\"image\":{},\"derived\":{}}}",
                            json_string(&a.title),
                            json_opt(a.canonical_url.as_ref().map(Url::as_str)),
                            json_opt(a.image_url.as_ref().map(Url::as_str)),
                            a.title_derived
                        ),
                        Err(err) => format!(
                            "{{\"title\":null,\"link\":null,\"image\":null,\"refused\":{}}}",
                            json_string(&err.to_string())
                        ),
                    })
                    .collect();
                format!(
                    "{{\"file\":{},\"entries\":[{}]}}",
                    json_string(&path),
                    entries.join(",")
                )
            }
        };
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}
