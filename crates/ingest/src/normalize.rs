//! Normalisation of [`RawItem`]s into [`NormalizedArticle`]s, and dedupe keys.

use std::cell::RefCell;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use url::Url;

use crate::parse::{MediaKind, RawItem};
use crate::text::{collapse_whitespace, html_to_text, truncate_at_word};

/// Longest summary, in characters, including the trailing "…".
pub const SUMMARY_MAX_CHARS: usize = 300;

/// How far in the future a publication time may be before it is replaced by the fetch time.
pub const FUTURE_TOLERANCE_MINUTES: i64 = 5;

/// Query parameters that only track clicks and never change what a URL points at.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "yclid",
    "_hsenc",
    "_hsmi",
    "ref_src",
    "ref_url",
    "cmpid",
    "ncid",
    "spm",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "__twitter_impression",
    "_ga",
    "_gl",
];

/// An article ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedArticle {
    /// Stable identity of the item within its source, see [`dedupe_key`].
    pub dedupe_key: String,
    /// The guid/id the feed supplied.
    pub guid: Option<String>,
    /// Absolute http(s) URL without tracking parameters or fragment.
    pub canonical_url: Option<Url>,
    /// Plain-text headline.
    pub title: String,
    /// The feed gave no title: the headline was made from the summary or the link.
    pub title_derived: bool,
    /// Plain-text summary of at most [`SUMMARY_MAX_CHARS`] characters.
    pub summary: Option<String>,
    /// Sanitised HTML body.
    pub content_html: Option<String>,
    /// Absolute http(s) lead image.
    pub image_url: Option<Url>,
    /// Author name.
    pub author: Option<String>,
    /// Publication time, never missing and never in the future.
    pub published_at: DateTime<Utc>,
    /// Language tag, lowercased.
    pub language: Option<String>,
}

/// Why an item could not be normalised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NormalizeError {
    /// The item has neither a title nor a usable link.
    #[error("item has neither a title nor a link")]
    Empty,
}

/// Normalises one feed item; `base` is the feed (or site) URL relative links resolve against.
pub fn normalize_item(
    item: &RawItem,
    base: &Url,
    fetched_at: DateTime<Utc>,
) -> Result<NormalizedArticle, NormalizeError> {
    let canonical_url = item
        .link
        .as_deref()
        .and_then(|l| canonicalize_url(l, Some(base)));
    // The item's text: the summary's, else the content's. The content is only turned into text
    // (one more HTML parse) when the summary has none.
    let text = item
        .summary_html
        .as_deref()
        .map(plain_text)
        .filter(|t| !t.is_empty())
        .or_else(|| {
            item.content_html
                .as_deref()
                .map(plain_text)
                .filter(|t| !t.is_empty())
        });
    let mut title = item
        .title
        .as_deref()
        .map(|t| title_text(t, item.title_is_text))
        .unwrap_or_default();
    let title_derived = title.is_empty();
    if title_derived {
        // A title-less item (allowed in RSS) gets a readable headline: the first sentence of
        // its text, else its link.
        title = text
            .as_deref()
            .map(first_sentence)
            .filter(|t| !t.is_empty())
            .or_else(|| canonical_url.as_ref().map(link_headline))
            .unwrap_or_default();
    }
    if title.is_empty() && canonical_url.is_none() {
        return Err(NormalizeError::Empty);
    }
    let summary = text.map(|t| truncate_at_word(&t, SUMMARY_MAX_CHARS));
    let body_html = item
        .content_html
        .as_deref()
        .or(item.summary_html.as_deref());
    let content_html = body_html
        .map(|html| sanitize_html(html, base))
        .filter(|h| !h.trim().is_empty());
    let image_url = extract_image(item, base);
    let published_at = clamp_published(item.published_at, fetched_at);
    let dedupe_key = dedupe_key(
        item.guid.as_deref(),
        canonical_url.as_ref(),
        &title,
        item.link.as_deref(),
    );
    Ok(NormalizedArticle {
        dedupe_key,
        guid: item.guid.clone(),
        canonical_url,
        title,
        title_derived,
        summary,
        content_html,
        image_url,
        author: item
            .author
            .as_deref()
            .map(plain_text)
            .filter(|a| !a.is_empty()),
        published_at,
        language: item
            .language
            .as_deref()
            .map(|l| l.trim().to_lowercase())
            .filter(|l| !l.is_empty()),
    })
}

/// A headline from an item's text: its first sentence, cut at a word within 120 characters.
fn first_sentence(text: &str) -> String {
    let end = text
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?' | '\u{3002}')
                && text[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
                && i > 0
        })
        .map_or(text.len(), |(i, c)| i + c.len_utf8());
    truncate_at_word(text[..end].trim(), 120)
}

/// A headline from a link: its host and path, readable (`example.com/2024/story-title`).
fn link_headline(url: &Url) -> String {
    let path = url.path().trim_end_matches('/');
    let readable = percent_decode(path);
    format!("{}{}", url.host_str().unwrap_or_default(), readable)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A feed title as plain text: a title typed as text keeps its literal `<` and `>`; an HTML
/// one (Atom `type="html"`, or an RSS title that looks like markup) is stripped of its tags.
pub fn title_text(title: &str, typed_text: bool) -> String {
    if typed_text {
        collapse_whitespace(title)
    } else {
        plain_text(title)
    }
}

/// The identity of an item within a source, independent of the source id.
///
/// In order of preference: `guid:` + the feed's GUID; else `url:` + the canonical URL; else
/// `sha256:` + hex SHA-256 of the title, a newline and the raw link. The prefix keeps the three
/// kinds from colliding.
pub fn dedupe_key(
    guid: Option<&str>,
    canonical_url: Option<&Url>,
    title: &str,
    link: Option<&str>,
) -> String {
    if let Some(guid) = guid.map(str::trim).filter(|g| !g.is_empty()) {
        return format!("guid:{guid}");
    }
    if let Some(url) = canonical_url {
        return format!("url:{url}");
    }
    let mut hasher = Sha256::new();
    hasher.update(title.as_bytes());
    hasher.update(b"\n");
    hasher.update(link.unwrap_or_default().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Publication time: missing or more than five minutes ahead of `fetched_at` becomes `fetched_at`.
pub fn clamp_published(
    published: Option<DateTime<Utc>>,
    fetched_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match published {
        Some(t) if t <= fetched_at + Duration::minutes(FUTURE_TOLERANCE_MINUTES) => t,
        _ => fetched_at,
    }
}

/// Absolute http(s) URL with tracking parameters and fragment removed; `None` for other schemes.
pub fn canonicalize_url(raw: &str, base: Option<&Url>) -> Option<Url> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let mut url = match base {
        Some(base) => base.join(raw).ok()?,
        None => Url::parse(raw).ok()?,
    };
    // The url crate already lowercases scheme and host of special schemes.
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    url.set_fragment(None);
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !is_tracking_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    Some(url)
}

fn is_tracking_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.starts_with("utm_") || TRACKING_PARAMS.contains(&key.as_str())
}

/// [`html_to_text`], without the HTML parser for text that has no markup to remove.
///
/// Text with no `<`, no NUL and no `&` that could start a character reference (one followed by a
/// letter, digit or `#`) comes out of the parser unchanged, so collapsing its whitespace gives
/// the same result. Titles and author names are mostly such text.
fn plain_text(html: &str) -> String {
    if is_plain_text(html) {
        collapse_whitespace(html)
    } else {
        html_to_text(html)
    }
}

/// Whether an HTML parser would read `html` as exactly its own characters (see [`plain_text`]).
fn is_plain_text(html: &str) -> bool {
    let bytes = html.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'<' | b'\0' => false,
        b'&' => bytes
            .get(i + 1)
            .is_none_or(|&next| !next.is_ascii_alphanumeric() && next != b'#'),
        _ => true,
    })
}

thread_local! {
    /// The sanitiser, built once per thread: building ammonia's default policy (hundreds of
    /// hash-set entries) for every item took a quarter of the sanitising time. Only the base that
    /// relative links resolve against changes from call to call.
    static SANITIZER: RefCell<ammonia::Builder<'static>> = RefCell::new({
        let mut builder = ammonia::Builder::default();
        builder.link_rel(Some("noopener noreferrer nofollow"));
        builder
    });
}

/// Sanitises HTML with ammonia: safe tags only, relative links made absolute, rel="noopener noreferrer nofollow".
pub fn sanitize_html(html: &str, base: &Url) -> String {
    if is_inert_text(html) {
        return html.to_owned();
    }
    sanitize_parsed(html, base)
}

/// [`sanitize_html`] through ammonia, whatever the input.
fn sanitize_parsed(html: &str, base: &Url) -> String {
    SANITIZER.with(|sanitizer| {
        let mut builder = sanitizer.borrow_mut();
        if builder.url_relative_base() != Some(base) {
            builder.url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()));
        }
        builder.clean(html).to_string()
    })
}

/// Whether ammonia would return `html` unchanged without parsing it: no markup, no character
/// reference, nothing the serialiser escapes (`&`, `<`, `>`, no-break space) and nothing the
/// parser rewrites (carriage returns, NUL).
fn is_inert_text(html: &str) -> bool {
    !html
        .bytes()
        .any(|b| matches!(b, b'<' | b'>' | b'&' | b'\r' | b'\0'))
        && !html.contains('\u{a0}')
}

/// Lead image: media:content, then media:thumbnail, then image enclosures, then the first `<img>` of the body.
pub fn extract_image(item: &RawItem, base: &Url) -> Option<Url> {
    let content = item
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Content && is_image(m.mime.as_deref(), &m.url));
    let thumbnails = item.media.iter().filter(|m| m.kind == MediaKind::Thumbnail);
    content
        .chain(thumbnails)
        .find_map(|m| canonicalize_image(&m.url, base))
        .or_else(|| {
            [item.content_html.as_deref(), item.summary_html.as_deref()]
                .into_iter()
                .flatten()
                .find_map(first_img_src)
                .and_then(|src| canonicalize_image(&src, base))
        })
}

fn canonicalize_image(raw: &str, base: &Url) -> Option<Url> {
    let url = base.join(raw.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

fn is_image(mime: Option<&str>, url: &str) -> bool {
    match mime {
        Some(m) => m.trim().to_ascii_lowercase().starts_with("image/"),
        None => {
            let path = url
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            [".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif"]
                .iter()
                .any(|ext| path.ends_with(ext))
        }
    }
}

/// The `src` of the first `<img>` tag in an HTML fragment.
fn first_img_src(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("<img") {
        let start = from + pos;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        let tag_lower = &lower[start..end];
        let mut search = 0;
        while let Some(p) = tag_lower[search..].find("src") {
            let at = search + p;
            search = at + 3;
            let preceded_ok = tag_lower[..at].ends_with(|c: char| c.is_ascii_whitespace());
            let rest = tag[at + 3..].trim_start();
            if !preceded_ok || !rest.starts_with('=') {
                continue;
            }
            let value = rest[1..].trim_start();
            let src = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
                _ => value
                    .split(|c: char| c.is_ascii_whitespace() || c == '>')
                    .next()
                    .unwrap_or_default(),
            };
            let src = html_escape::decode_html_entities(src).trim().to_owned();
            if !src.is_empty() {
                return Some(src);
            }
        }
        from = end;
    }
    None
}

#[cfg(test)]
fn tracking_params_unique() -> bool {
    TRACKING_PARAMS
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len()
        == TRACKING_PARAMS.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::MediaRef;

    fn base() -> Url {
        Url::parse("https://news.example.com/feeds/world.xml").expect("valid url")
    }

    #[test]
    fn tracking_list_has_no_duplicates() {
        assert!(tracking_params_unique());
    }

    #[test]
    fn strips_tracking_params_and_fragment() {
        let url = canonicalize_url(
            "HTTPS://News.Example.COM/a/b?id=7&utm_source=rss&utm_medium=x&fbclid=1&page=2#top",
            None,
        )
        .expect("canonical");
        assert_eq!(url.as_str(), "https://news.example.com/a/b?id=7&page=2");
        let bare = canonicalize_url("https://x.example/p?utm_campaign=a&gclid=b", None)
            .expect("canonical");
        assert_eq!(bare.as_str(), "https://x.example/p");
    }

    #[test]
    fn resolves_relative_links_and_rejects_other_schemes() {
        assert_eq!(
            canonicalize_url("../2024/story.html", Some(&base()))
                .map(String::from)
                .as_deref(),
            Some("https://news.example.com/2024/story.html")
        );
        assert_eq!(canonicalize_url("javascript:alert(1)", Some(&base())), None);
        assert_eq!(canonicalize_url("mailto:a@b.c", None), None);
        assert_eq!(canonicalize_url("ftp://x.example/f", None), None);
    }

    #[test]
    fn future_dates_are_clamped() {
        let now = Utc::now();
        assert_eq!(clamp_published(Some(now + Duration::hours(3)), now), now);
        assert_eq!(clamp_published(None, now), now);
        let soon = now + Duration::minutes(2);
        assert_eq!(clamp_published(Some(soon), now), soon);
        let past = now - Duration::days(1);
        assert_eq!(clamp_published(Some(past), now), past);
    }

    #[test]
    fn dedupe_key_prefers_guid_then_url_then_hash() {
        let url = Url::parse("https://a.example/x").expect("url");
        assert_eq!(dedupe_key(Some("g1"), Some(&url), "t", None), "guid:g1");
        assert_eq!(
            dedupe_key(None, Some(&url), "t", None),
            "url:https://a.example/x"
        );
        let h1 = dedupe_key(None, None, "Title", Some("x"));
        assert!(h1.starts_with("sha256:"));
        assert_eq!(h1, dedupe_key(None, None, "Title", Some("x")));
        assert_ne!(h1, dedupe_key(None, None, "Other", Some("x")));
    }

    #[test]
    fn normalizes_title_summary_and_content() {
        let long = "word ".repeat(100);
        let item = RawItem {
            title: Some("  Rates &amp; <b>bonds</b>\n rise ".into()),
            link: Some("/markets/rates?utm_source=feed".into()),
            summary_html: Some(format!("<p>{long}</p>")),
            content_html: Some(
                r#"<p onclick="x()">Hi <a href="/more">more</a><script>bad()</script></p>"#.into(),
            ),
            ..RawItem::default()
        };
        let now = Utc::now();
        let a = normalize_item(&item, &base(), now).expect("normalised");
        assert_eq!(a.title, "Rates & bonds rise");
        assert_eq!(
            a.canonical_url.map(String::from).as_deref(),
            Some("https://news.example.com/markets/rates")
        );
        let summary = a.summary.expect("summary");
        assert!(summary.chars().count() <= SUMMARY_MAX_CHARS);
        assert!(summary.ends_with("word…"), "{summary}");
        let html = a.content_html.expect("content");
        assert!(!html.contains("script") && !html.contains("onclick"));
        assert!(
            html.contains(r#"rel="noopener noreferrer nofollow""#),
            "{html}"
        );
        assert!(html.contains("https://news.example.com/more"), "{html}");
        assert_eq!(a.published_at, now);
    }

    /// Strings for the fast-path checks: plain text of many shapes, and near misses.
    const SAMPLES: &[&str] = &[
        "",
        "   ",
        "Plain headline",
        "  Rates\n\t rise  again ",
        "Caf\u{e9} \u{201c}quoted\u{201d} \u{2014} \u{65e5}\u{672c} \u{1f4f0}",
        "Fish & chips",
        "AT&T buys & sells",
        "Q&A",
        "&",
        "trailing &",
        "& leading",
        "&&& ;;",
        "&;",
        "&amp;",
        "&amp",
        "a &amp; b",
        "&#38;",
        "&#x26; x",
        "&nbsp;",
        "&notit;",
        "&copy 2024",
        "x &lt; y",
        "x < y",
        "x > y",
        "a <b>bold</b> c",
        "<p>para</p>",
        "quote \" and ' apostrophe",
        "no\u{a0}break",
        "cr\r\nlf\rcr",
        "nul\0byte",
        "form\u{c}feed",
        "]]> --> <!-- x",
        "= / ? # % + ; :",
        "Price: $5 & up; 50% off!",
    ];

    #[test]
    fn plain_text_fast_path_matches_the_parser() {
        let mut fast = 0;
        for sample in SAMPLES {
            assert_eq!(plain_text(sample), html_to_text(sample), "{sample:?}");
            if is_plain_text(sample) {
                fast += 1;
                assert_eq!(
                    collapse_whitespace(sample),
                    html_to_text(sample),
                    "{sample:?}"
                );
            }
        }
        assert!(fast >= 10, "the fast path took only {fast} samples");
        for slow in ["AT&T", "&amp;", "&#38;", "a <b>c</b>", "nul\0"] {
            assert!(!is_plain_text(slow), "{slow:?}");
        }
    }

    #[test]
    fn inert_text_is_what_ammonia_returns() {
        let mut inert = 0;
        for sample in SAMPLES {
            let parsed = sanitize_parsed(sample, &base());
            assert_eq!(sanitize_html(sample, &base()), parsed, "{sample:?}");
            if is_inert_text(sample) {
                inert += 1;
                assert_eq!(*sample, parsed, "{sample:?}");
            }
        }
        assert!(inert >= 8, "the fast path took only {inert} samples");
        for not_inert in ["x > y", "no\u{a0}break", "cr\r\n", "Q&A", "<i>x</i>"] {
            assert!(!is_inert_text(not_inert), "{not_inert:?}");
        }
    }

    #[test]
    fn sanitiser_resolves_against_each_calls_base() {
        let html = r#"<a href="story.html">x</a><img src="/i.png">"#;
        let first = Url::parse("https://one.example/news/").expect("url");
        let second = Url::parse("https://two.example/blog/feed").expect("url");
        for _ in 0..2 {
            let a = sanitize_html(html, &first);
            assert!(a.contains("https://one.example/news/story.html"), "{a}");
            assert!(a.contains("https://one.example/i.png"), "{a}");
            let b = sanitize_html(html, &second);
            assert!(b.contains("https://two.example/blog/story.html"), "{b}");
            assert!(b.contains("https://two.example/i.png"), "{b}");
            assert!(!b.contains("one.example"), "{b}");
        }
        let fresh = ammonia::Builder::default()
            .link_rel(Some("noopener noreferrer nofollow"))
            .url_relative(ammonia::UrlRelative::RewriteWithBase(second.clone()))
            .clean(html)
            .to_string();
        assert_eq!(sanitize_html(html, &second), fresh);
    }

    #[test]
    fn text_comes_from_the_summary_else_the_content() {
        let now = Utc::now();
        let content = "<p>Body <i>text</i> here</p>";
        for summary in [
            None,
            Some(""),
            Some("<p> </p>"),
            Some("<script>x()</script>"),
        ] {
            let item = RawItem {
                link: Some("https://a.example/x".into()),
                summary_html: summary.map(str::to_owned),
                content_html: Some(content.into()),
                ..RawItem::default()
            };
            let a = normalize_item(&item, &base(), now).expect("normalised");
            assert_eq!(a.summary.as_deref(), Some("Body text here"), "{summary:?}");
            assert_eq!(a.title, "Body text here", "{summary:?}");
        }
        let item = RawItem {
            link: Some("https://a.example/x".into()),
            summary_html: Some("<p>Short &amp; <b>sweet</b></p>".into()),
            content_html: Some(content.into()),
            ..RawItem::default()
        };
        let a = normalize_item(&item, &base(), now).expect("normalised");
        assert_eq!(a.summary.as_deref(), Some("Short & sweet"));
        assert_eq!(a.title, "Short & sweet");
        assert_eq!(
            a.content_html.as_deref(),
            Some("<p>Body <i>text</i> here</p>")
        );
        let empty = RawItem {
            summary_html: Some("<p></p>".into()),
            content_html: Some("<br>".into()),
            ..RawItem::default()
        };
        assert_eq!(
            normalize_item(&empty, &base(), now),
            Err(NormalizeError::Empty)
        );
    }

    #[test]
    fn image_sources_in_priority_order() {
        let mut item = RawItem {
            content_html: Some(r#"<p><IMG alt="x" SRC="/img/body.jpg"></p>"#.into()),
            ..RawItem::default()
        };
        assert_eq!(
            extract_image(&item, &base()).map(String::from).as_deref(),
            Some("https://news.example.com/img/body.jpg")
        );
        item.media.push(MediaRef {
            url: "https://cdn.example/a.mp3".into(),
            mime: Some("audio/mpeg".into()),
            kind: MediaKind::Content,
        });
        item.media.push(MediaRef {
            url: "https://cdn.example/thumb.jpg".into(),
            mime: None,
            kind: MediaKind::Thumbnail,
        });
        assert_eq!(
            extract_image(&item, &base()).map(String::from).as_deref(),
            Some("https://cdn.example/thumb.jpg")
        );
        item.media.push(MediaRef {
            url: "https://cdn.example/enc.png".into(),
            mime: Some("image/png".into()),
            kind: MediaKind::Content,
        });
        assert_eq!(
            extract_image(&item, &base()).map(String::from).as_deref(),
            Some("https://cdn.example/enc.png")
        );
    }
}
