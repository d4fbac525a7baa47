//! Parsing and normalising real feed documents from `tests/fixtures`.

use chrono::{DateTime, TimeZone, Utc};
use herald_ingest::normalize::{NormalizedArticle, normalize_item};
use herald_ingest::parse::{ParseError, ParsedFeed, parse_feed};
use url::Url;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn fetched_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2014, 3, 7, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn parse(name: &str, url: &str) -> (ParsedFeed, Url) {
    let url = Url::parse(url).expect("feed url");
    let feed = parse_feed(&fixture(name), None, &url, fetched_at()).expect("parses");
    (feed, url)
}

fn normalize_all(feed: &ParsedFeed, url: &Url) -> Vec<NormalizedArticle> {
    feed.items
        .iter()
        .map(|item| normalize_item(item, url, fetched_at()).expect("normalises"))
        .collect()
}

fn url_str(url: &Option<Url>) -> Option<&str> {
    url.as_ref().map(Url::as_str)
}

#[test]
fn rss2_feed_is_parsed_and_normalised() {
    let (feed, url) = parse("rss2.xml", "https://news.example.com/feeds/world.xml");
    assert_eq!(feed.title.as_deref(), Some("Example World News"));
    assert_eq!(
        feed.site_url.as_ref().map(Url::as_str),
        Some("https://news.example.com/")
    );
    assert_eq!(feed.ttl_minutes, Some(15));
    assert_eq!(feed.items.len(), 4);
    let articles = normalize_all(&feed, &url);

    let first = &articles[0];
    assert_eq!(first.guid.as_deref(), Some("urn:example:1001"));
    assert_eq!(first.dedupe_key, "guid:urn:example:1001");
    assert_eq!(first.title, "Rates & bonds: central bank holds");
    assert_eq!(
        url_str(&first.canonical_url),
        Some("https://news.example.com/markets/rates?id=7")
    );
    assert_eq!(first.author.as_deref(), Some("Jane Reporter"));
    assert_eq!(first.language.as_deref(), Some("en-gb"));
    assert_eq!(
        first.published_at,
        Utc.with_ymd_and_hms(2014, 3, 6, 10, 0, 0)
            .single()
            .expect("time")
    );
    assert_eq!(
        first.summary.as_deref(),
        Some("The central bank kept its key rate unchanged on Thursday.")
    );
    let html = first.content_html.as_deref().expect("content");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains(r#"href="https://news.example.com/glossary/rate""#),
        "{html}"
    );
    assert!(
        html.contains(r#"rel="noopener noreferrer nofollow""#),
        "{html}"
    );
    // media:content
    assert_eq!(
        url_str(&first.image_url),
        Some("https://cdn.example.com/img/rates.jpg")
    );

    // No guid: relative link resolved, key from the canonical URL, media:thumbnail image.
    let second = &articles[1];
    assert_eq!(second.guid, None);
    assert_eq!(
        url_str(&second.canonical_url),
        Some("https://news.example.com/local/storm-closes-schools")
    );
    assert_eq!(
        second.dedupe_key,
        "url:https://news.example.com/local/storm-closes-schools"
    );
    assert_eq!(
        url_str(&second.image_url),
        Some("https://cdn.example.com/img/storm-thumb.jpg")
    );

    // Future date clamped to the fetch time; image enclosure.
    let third = &articles[2];
    assert_eq!(third.published_at, fetched_at());
    assert_eq!(
        url_str(&third.image_url),
        Some("https://cdn.example.com/img/week.png")
    );

    // First <img> of the description, made absolute; missing date becomes the fetch time.
    let fourth = &articles[3];
    assert_eq!(
        url_str(&fourth.image_url),
        Some("https://news.example.com/photos/first.jpg")
    );
    assert_eq!(fourth.published_at, fetched_at());
    assert_eq!(fourth.summary.as_deref(), Some("Pictures and more"));
}

#[test]
fn items_without_guid_get_the_same_key_on_every_parse() {
    let url = Url::parse("https://news.example.com/feeds/world.xml").expect("url");
    let keys = |_: u8| -> Vec<(Option<String>, String)> {
        let feed = parse_feed(&fixture("rss2.xml"), None, &url, fetched_at()).expect("parses");
        normalize_all(&feed, &url)
            .into_iter()
            .map(|a| (a.guid, a.dedupe_key))
            .collect()
    };
    let (a, b) = (keys(1), keys(2));
    assert_eq!(a, b);
    assert!(a.iter().skip(1).all(|(guid, _)| guid.is_none()));

    // An item with neither guid nor link still gets a stable hash key.
    let body = br#"<rss version="2.0"><channel><title>T</title><item><title>Only a title</title></item></channel></rss>"#;
    let once = parse_feed(body, None, &url, fetched_at()).expect("parses");
    let twice = parse_feed(body, None, &url, fetched_at()).expect("parses");
    assert_eq!(once.items[0].guid, None);
    let k1 = normalize_item(&once.items[0], &url, fetched_at())
        .expect("normalises")
        .dedupe_key;
    let k2 = normalize_item(&twice.items[0], &url, fetched_at())
        .expect("normalises")
        .dedupe_key;
    assert!(k1.starts_with("sha256:"), "{k1}");
    assert_eq!(k1, k2);
}

#[test]
fn rss1_feed_is_parsed() {
    let (feed, url) = parse("rss1.xml", "https://rdf.example.org/index.rdf");
    assert_eq!(feed.title.as_deref(), Some("RDF Science"));
    let articles = normalize_all(&feed, &url);
    assert_eq!(articles.len(), 1);
    assert_eq!(articles[0].title, "Comet passes Earth");
    assert_eq!(
        url_str(&articles[0].canonical_url),
        Some("https://rdf.example.org/a")
    );
    assert_eq!(articles[0].author.as_deref(), Some("Sam Sky"));
    assert_eq!(
        articles[0].published_at,
        Utc.with_ymd_and_hms(2014, 3, 6, 8, 0, 0)
            .single()
            .expect("time")
    );
}

#[test]
fn atom_feed_is_parsed() {
    let (feed, url) = parse("atom.xml", "https://atom.example.net/feed.atom");
    assert_eq!(feed.title.as_deref(), Some("Atom Tech"));
    assert_eq!(
        feed.site_url.as_ref().map(Url::as_str),
        Some("https://atom.example.net/")
    );
    let articles = normalize_all(&feed, &url);
    let a = &articles[0];
    assert_eq!(a.guid.as_deref(), Some("tag:atom.example.net,2014:chips"));
    assert_eq!(a.title, "Chips & servers");
    assert_eq!(
        url_str(&a.canonical_url),
        Some("https://atom.example.net/posts/chips")
    );
    assert_eq!(a.author.as_deref(), Some("Ada Writer"));
    assert_eq!(a.summary.as_deref(), Some("New chips announced."));
    assert_eq!(
        url_str(&a.image_url),
        Some("https://atom.example.net/img/chips.webp")
    );
    assert!(
        a.content_html
            .as_deref()
            .is_some_and(|h| h.contains("nofollow"))
    );
}

#[test]
fn json_feed_is_parsed() {
    let (feed, url) = parse("feed.json", "https://json.example.org/feed.json");
    assert_eq!(feed.title.as_deref(), Some("JSON Health"));
    let articles = normalize_all(&feed, &url);
    let a = &articles[0];
    assert_eq!(a.guid.as_deref(), Some("json-1"));
    assert_eq!(a.title, "Flu season peaks");
    assert_eq!(
        url_str(&a.canonical_url),
        Some("https://json.example.org/posts/1?ref=home")
    );
    assert_eq!(a.author.as_deref(), Some("Dr Who"));
    assert_eq!(a.summary.as_deref(), Some("Flu cases peaked."));
    assert!(
        a.content_html
            .as_deref()
            .is_some_and(|h| h.contains("<b>flu</b>"))
    );
}

#[test]
fn iso_8859_1_feed_is_transcoded() {
    let mut body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<rss version=\"2.0\"><channel><title>Le Caf".to_vec();
    body.push(0xE9); // é
    body.extend_from_slice(b"</title><item><title>Cr");
    body.push(0xE8); // è
    body.extend_from_slice(b"me br");
    body.push(0xFB); // û
    body.extend_from_slice(
        b"l\xE9e \xE0 Paris</title><link>https://latin.example.fr/a</link></item></channel></rss>",
    );
    let url = Url::parse("https://latin.example.fr/rss").expect("url");
    let feed = parse_feed(&body, Some("text/xml"), &url, fetched_at()).expect("parses");
    assert_eq!(feed.title.as_deref(), Some("Le Café"));
    assert_eq!(feed.items[0].title.as_deref(), Some("Crème brûlée à Paris"));
}

#[test]
fn windows_1251_feed_is_transcoded() {
    let text = "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<rss version=\"2.0\"><channel><title>Новости</title><item><title>Привет, мир</title><link>https://ru.example.ru/1</link></item></channel></rss>";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!unmappable);
    assert!(
        bytes.iter().any(|b| *b >= 0xC0),
        "really single-byte Cyrillic"
    );
    let url = Url::parse("https://ru.example.ru/rss").expect("url");
    let feed = parse_feed(&bytes, None, &url, fetched_at()).expect("parses");
    assert_eq!(feed.title.as_deref(), Some("Новости"));
    assert_eq!(feed.items[0].title.as_deref(), Some("Привет, мир"));
}

#[test]
fn http_charset_applies_when_the_declaration_is_missing() {
    let text = "<rss version=\"2.0\"><channel><title>Сводка</title></channel></rss>";
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(text);
    let url = Url::parse("https://ru.example.ru/rss").expect("url");
    let feed = parse_feed(
        &bytes,
        Some("application/rss+xml; charset=windows-1251"),
        &url,
        fetched_at(),
    )
    .expect("parses");
    assert_eq!(feed.title.as_deref(), Some("Сводка"));
}

#[test]
fn malformed_feeds_are_errors() {
    let url = Url::parse("https://bad.example/rss").expect("url");
    for body in [
        b"".to_vec(),
        b"   ".to_vec(),
        b"not a feed at all".to_vec(),
        b"<html><body>Hello</body></html>".to_vec(),
        b"{\"version\": 3".to_vec(),
        vec![0xFF, 0xFE, 0x00, 0xD8],
    ] {
        let result = parse_feed(&body, None, &url, fetched_at());
        assert!(
            result.is_err(),
            "{:?} parsed: {result:?}",
            String::from_utf8_lossy(&body)
        );
    }
    assert!(matches!(
        parse_feed(b"", None, &url, fetched_at()),
        Err(ParseError::Empty)
    ));
}

#[test]
fn ill_formed_feeds_are_recovered_as_feedparser_would() {
    let url = Url::parse("https://bad.example/rss").expect("url");
    // `<title>` closed by `</item>`, `</rss>` missing.
    let feed = parse_feed(&fixture("malformed.xml"), None, &url, fetched_at()).expect("recovered");
    assert_eq!(feed.title.as_deref(), Some("Broken"));
    assert_eq!(feed.items.len(), 1);
    assert_eq!(feed.items[0].title.as_deref(), Some("Unclosed"));
}
