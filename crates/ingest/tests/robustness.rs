//! Feeds as they really are (issue #22 §2): one fixture per class of rule-breaking that
//! feedparser copes with, read through the same parse → normalise path as a poll.

use chrono::Utc;
use herald_ingest::normalize::{NormalizeError, NormalizedArticle, normalize_item};
use herald_ingest::parse::parse_feed;
use url::Url;

/// (title, link) of every entry, or the refusal.
fn read(name: &str) -> Vec<Result<NormalizedArticle, NormalizeError>> {
    let path = format!("{}/tests/fixtures/feeds/{name}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).expect("fixture");
    let url = Url::parse(&format!("https://fixtures.invalid/{name}")).expect("url");
    let now = Utc::now();
    let feed = parse_feed(&body, None, &url, now).unwrap_or_else(|e| panic!("{name}: {e}"));
    let base = feed.site_url.clone().unwrap_or(url);
    feed.items
        .iter()
        .map(|item| normalize_item(item, &base, now))
        .collect()
}

fn pairs(name: &str) -> Vec<(String, Option<String>)> {
    read(name)
        .into_iter()
        .filter_map(Result::ok)
        .map(|a| (a.title, a.canonical_url.map(String::from)))
        .collect()
}

fn pair(title: &str, link: Option<&str>) -> (String, Option<String>) {
    (title.to_owned(), link.map(str::to_owned))
}

#[test]
fn a_permalink_guid_or_an_http_atom_id_is_the_link() {
    let entries = read("permalink_guid.rss");
    assert_eq!(entries.len(), 4);
    let links: Vec<Option<String>> = entries
        .iter()
        .map(|e| {
            e.as_ref()
                .ok()
                .and_then(|a| a.canonical_url.as_ref().map(Url::to_string))
        })
        .collect();
    assert_eq!(
        links[..3],
        [
            Some("https://guids.example/2026/permalink".to_owned()),
            Some("https://guids.example/2026/default".to_owned()),
            None, // isPermaLink="false": an id, not an address
        ]
    );
    // Neither a title nor a link: refused, with the reason (counted in the source's health).
    assert_eq!(entries[3], Err(NormalizeError::Empty));
    assert_eq!(
        pairs("atom_id_url.atom"),
        [
            pair("Id is the link", Some("https://ids.example/posts/42")),
            pair("Urn id, no link", None),
        ]
    );
}

#[test]
fn xml_base_resolves_relative_links_in_atom_and_rss() {
    assert_eq!(
        pairs("xml_base.atom"),
        [
            pair("Feed base", Some("https://base.example/news/2026/one.html")),
            pair("Entry base", Some("https://other.example/blog/two.html")),
            pair("Link base", Some("https://cdn.example/x/three.html")),
        ]
    );
    assert_eq!(
        pairs("xml_base.rss"),
        [
            pair(
                "Channel base",
                Some("https://rssbase.example/section/stories/one.html")
            ),
            pair("Item base", Some("https://item.example/a/two.html")),
            pair("Link base", Some("https://linkbase.example/b/three.html")),
        ]
    );
}

#[test]
fn atom_links_prefer_alternate_skip_hrefless_and_never_take_an_enclosure() {
    assert_eq!(
        pairs("atom_links.atom"),
        [
            pair("Enclosure first", Some("https://links.example/one")),
            pair("Related then no rel", Some("https://links.example/two")),
            pair("Link without href", Some("https://links.example/three")),
            pair("Only an enclosure", None),
            pair("After the broken one", Some("https://links.example/five")),
        ]
    );
}

#[test]
fn text_titles_keep_their_angle_brackets_and_html_titles_lose_their_tags() {
    let titles: Vec<String> = pairs("title_types.atom").into_iter().map(|p| p.0).collect();
    assert_eq!(
        titles,
        [
            "Is 3 < 5 && 7 > 2? <b>Yes</b>",
            "Vector<T> in Rust",
            "Bold move & more",
            "No type: <i> stays",
            "X HTML title",
        ]
    );
    let titles: Vec<String> = pairs("title_types.rss").into_iter().map(|p| p.0).collect();
    assert_eq!(titles, ["Markets: 3 < 5", "Bold claim", "Fish & chips"]);
}

#[test]
fn undeclared_non_utf8_encodings_are_detected() {
    for (file, title) in [
        ("shift_jis.rss", "東京で大きな地震が発生しました"),
        ("euc_jp.rss", "大阪の新しい駅が開業しました"),
        ("koi8_r.rss", "Москва: новый мост открыт для движения"),
        ("gb2312.rss", "北京举行国际会议讨论气候变化"),
    ] {
        let entries = pairs(file);
        assert_eq!(entries.len(), 1, "{file}");
        assert_eq!(entries[0].0, title, "{file}");
    }
}

#[test]
fn entities_in_every_form_and_query_strings_exactly() {
    assert_eq!(
        pairs("entities.rss"),
        [
            pair(
                "Café & crème — open",
                Some("http://entities.example/cafe?item")
            ),
            pair(
                "Hex ABc and dec AB",
                Some("http://entities.example/hex?id=7&page=2")
            ),
            pair("Query <kept>", Some("http://entities.example/p?a=1&b&c=")),
        ]
    );
}

#[test]
fn ill_formed_xml_is_recovered_not_refused_whole() {
    assert_eq!(
        pairs("bare_ampersand.rss"),
        [
            pair(
                "Salt & pepper",
                Some("https://amps.example/story?id=1&ref=rss")
            ),
            pair("Second item", Some("https://amps.example/story?id=2")),
        ]
    );
    let truncated: Vec<String> = pairs("truncated.rss").into_iter().map(|p| p.0).collect();
    assert_eq!(truncated, ["First whole item", "Second item", "Third item"]);
    let stray: Vec<String> = pairs("stray_byte.rss").into_iter().map(|p| p.0).collect();
    assert_eq!(stray.len(), 2);
    assert_eq!(stray[0], "Stray form feed and byte");
    assert!(stray[1].starts_with("Bad utf-8"), "{stray:?}");
}

#[test]
fn an_untitled_entry_gets_a_headline_and_is_marked() {
    let entries = read("untitled.rss");
    let first = entries[0].as_ref().expect("kept");
    assert_eq!(first.title, "The river rose two metres overnight.");
    assert!(first.title_derived);
    let second = entries[1].as_ref().expect("kept");
    assert_eq!(second.title, "untitled.example/2026/12/quiet-day");
    assert!(second.title_derived);
    assert_eq!(entries[2], Err(NormalizeError::Empty));
    let titled = &read("xml_base.rss")[0];
    assert!(!titled.as_ref().expect("kept").title_derived);
}

#[test]
fn atom_03_and_versionless_rss_are_read_as_feedparser_reads_them() {
    assert_eq!(
        pairs("atom03.atom"),
        [
            pair("Ferry service resumes", Some("https://old.example/ferry")),
            pair("Plain old title", Some("https://old.example/plain")),
        ]
    );
    // A comments page is not the entry's link.
    assert_eq!(
        pairs("rss_no_version.rss"),
        [
            pair("Versionless item", Some("https://nover.example/1")),
            pair("Only comments", None),
        ]
    );
}

#[test]
fn dublin_core_titles_are_read_when_an_item_has_no_title() {
    assert_eq!(
        pairs("dc_title.rss"),
        [
            pair(
                "Tram line & depot open on Monday",
                Some("https://dc.example/2026/tram")
            ),
            pair(
                "The element title wins",
                Some("https://dc.example/2026/both")
            ),
            pair(
                "Budget <vote> delayed",
                Some("https://dc.example/2026/budget")
            ),
            pair(
                "An empty dc:title is no title.",
                Some("https://dc.example/2026/empty-dc-title")
            ),
        ]
    );
    let entries = read("dc_title.rss");
    let derived: Vec<bool> = entries
        .iter()
        .map(|e| e.as_ref().expect("kept").title_derived)
        .collect();
    assert_eq!(derived, [false, false, false, true]);
    // RSS 1.0, with the namespace under another prefix.
    assert_eq!(
        pairs("dc_title.rdf"),
        [
            pair(
                "Harbour crane back in service",
                Some("https://rdf.example/harbour")
            ),
            pair("Library hours", Some("https://rdf.example/library")),
        ]
    );
}

#[test]
fn channel_definition_format_items_are_read() {
    assert_eq!(
        pairs("channel_definition.cdf"),
        [
            pair(
                "Canteen menu & opening times",
                Some("https://cdf.example/news/canteen.htm?week=49&lang=en")
            ),
            pair(
                "Car park closed on Friday",
                Some("https://other.example/car-park")
            ),
            pair(
                "The lifts are serviced tomorrow.",
                Some("https://cdf.example/news/untitled.htm")
            ),
        ]
    );
    let path = format!(
        "{}/tests/fixtures/feeds/channel_definition.cdf",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(path).expect("fixture");
    let url = Url::parse("https://fixtures.invalid/channel_definition.cdf").expect("url");
    let feed = parse_feed(&body, None, &url, Utc::now()).expect("parses");
    assert_eq!(feed.title.as_deref(), Some("Intranet news"));
    assert_eq!(
        feed.site_url.map(String::from).as_deref(),
        Some("https://cdf.example/")
    );
    let first = &feed.items[0];
    assert_eq!(
        first.published_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-12-01T07:30:00+00:00")
    );
    assert_eq!(first.summary_html.as_deref(), Some("New dishes this week."));
    let read = read("channel_definition.cdf");
    assert!(read[2].as_ref().expect("kept").title_derived);
}
