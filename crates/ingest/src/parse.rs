//! Feed parsing: bytes in any declared encoding → [`ParsedFeed`] via feed-rs.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use encoding_rs::Encoding;
use url::Url;

use crate::recover::{recover_xml, upgrade_dialect};

/// Prefix our id generator gives entries whose feed supplied no guid/id.
const MISSING_ID_MARKER: &str = "\u{0}herald-missing-id";

/// A feed as parsed, before normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFeed {
    /// The feed's title, as plain text.
    pub title: Option<String>,
    /// The publisher's site (the feed's alternate link), absolute.
    pub site_url: Option<Url>,
    /// RSS `<ttl>`: minutes the feed may be cached.
    pub ttl_minutes: Option<u32>,
    /// The feed's entries, in document order.
    pub items: Vec<RawItem>,
    /// WebSub hubs the feed advertises (`<link rel="hub">`, `<atom:link rel="hub">`), absolute.
    pub hubs: Vec<Url>,
    /// The feed's own URL as it states it (`rel="self"`), absolute: the WebSub topic.
    pub self_url: Option<Url>,
}

/// Where an image reference came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `media:content` or an `<enclosure>` (feed-rs merges them).
    Content,
    /// `media:thumbnail`.
    Thumbnail,
}

/// A media reference attached to an item.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRef {
    /// The media's address as given in the feed.
    pub url: String,
    /// MIME type, if declared.
    pub mime: Option<String>,
    /// `media:medium`-like hint derived from the element kind.
    pub kind: MediaKind,
}

/// One entry of a feed as the feed gave it (HTML not yet cleaned).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawItem {
    /// The guid/id the feed supplied; `None` when the feed gave none.
    pub guid: Option<String>,
    /// The item's link (may be relative).
    pub link: Option<String>,
    /// Title, possibly containing HTML or entities.
    pub title: Option<String>,
    /// The title is typed as plain text (Atom `type="text"`, or an RSS title without markup):
    /// its `<` and `>` are literal characters.
    pub title_is_text: bool,
    /// Description / summary, possibly HTML.
    pub summary_html: Option<String>,
    /// Full content (`content:encoded`, Atom content), possibly HTML.
    pub content_html: Option<String>,
    /// Media references in feed order.
    pub media: Vec<MediaRef>,
    /// Author name.
    pub author: Option<String>,
    /// Publication (or else update) time, if the feed gave one.
    pub published_at: Option<DateTime<Utc>>,
    /// Item or feed language.
    pub language: Option<String>,
}

/// Why a feed could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is empty.
    #[error("empty feed body")]
    Empty,
    /// feed-rs rejected the document.
    #[error("malformed feed: {0}")]
    Malformed(String),
}

/// Parses RSS 0.9x/1.0/2.0, Atom or JSON Feed bytes, transcoding any declared charset to UTF-8.
pub fn parse_feed(
    body: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    fetched_at: DateTime<Utc>,
) -> Result<ParsedFeed, ParseError> {
    // fetched_at is accepted so callers have one signature; dates are clamped in normalisation.
    let _ = fetched_at;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let utf8 = to_utf8(body, content_type);
    // A fresh parser for every attempt: feed-rs keeps state that a failed parse leaves behind.
    let parser = || {
        feed_rs::parser::Builder::new()
            .base_uri(Some(feed_url.as_str()))
            .sanitize_content(false)
            .id_generator(|_, _, _| MISSING_ID_MARKER.to_owned())
            .build()
    };
    // Characters XML 1.0 forbids (stray control bytes) are dropped before parsing.
    let utf8: Cow<'_, str> = if utf8.chars().any(is_forbidden_char) {
        Cow::Owned(utf8.chars().filter(|c| !is_forbidden_char(*c)).collect())
    } else {
        utf8
    };
    // Microsoft's CDF, an `<rdf>` root without RDF's namespace, Atom 0.3, and RSS without a
    // version feed-rs knows or without a channel, as feedparser reads them; then Dublin Core titles of RSS items that have no `<title>`.
    let utf8 = match cdf_to_rss(&utf8) {
        Cow::Borrowed(_) => utf8,
        Cow::Owned(rss) => Cow::Owned(rss),
    };
    let utf8 = match bare_rdf_as_rss(&utf8) {
        Cow::Borrowed(_) => utf8,
        Cow::Owned(rss) => Cow::Owned(rss),
    };
    let utf8 = match upgrade_dialect(&utf8) {
        Cow::Borrowed(_) => utf8,
        Cow::Owned(upgraded) => Cow::Owned(upgraded),
    };
    let utf8 = match dc_titles(&utf8) {
        Cow::Borrowed(_) => utf8,
        Cow::Owned(titled) => Cow::Owned(titled),
    };
    let feed = match parser().parse(utf8.as_bytes()) {
        Ok(feed) => feed,
        // Ill-formed XML: repaired as feedparser's loose parser would read it, then parsed
        // again; when that fails too, the first error is the one reported.
        Err(first) if utf8.trim_start().starts_with('<') => parser()
            .parse(recover_xml(&utf8).as_bytes())
            .map_err(|_| ParseError::Malformed(first.to_string()))?,
        Err(first) => return Err(ParseError::Malformed(first.to_string())),
    };
    let not_permalinks = non_permalink_guids(&utf8);

    let site_url = feed
        .links
        .iter()
        .filter(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .filter_map(|l| feed_url.join(&l.href).ok())
        .find(|u| matches!(u.scheme(), "http" | "https"));
    let rel_links = |rel: &str| -> Vec<Url> {
        feed.links
            .iter()
            .filter(|l| {
                l.rel
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(rel))
            })
            .filter_map(|l| feed_url.join(l.href.trim()).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .collect()
    };
    let hubs = rel_links("hub");
    let self_url = rel_links("self").into_iter().next();
    let feed_language = feed.language.clone();
    let atom = feed.feed_type == feed_rs::model::FeedType::Atom;
    let items = feed
        .entries
        .into_iter()
        .map(|entry| raw_item(entry, feed_language.as_deref(), atom, &not_permalinks))
        .collect();
    Ok(ParsedFeed {
        title: feed.title.map(|t| t.content),
        site_url,
        ttl_minutes: feed.ttl,
        items,
        hubs,
        self_url,
    })
}

/// The Dublin Core elements namespace (`dc:title`, `dc:date`, ...).
const DUBLIN_CORE: &str = "http://purl.org/dc/elements/1.1/";

/// The prefix `text` binds to `namespace` (`xmlns:dc="…"` → `dc`), if any.
fn namespace_prefix<'a>(text: &'a str, namespace: &str) -> Option<&'a str> {
    text.match_indices("xmlns:").find_map(|(at, _)| {
        let rest = &text[at + "xmlns:".len()..];
        let name_len = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .filter(|&n| n > 0)?;
        let value = rest[name_len..]
            .trim_start()
            .strip_prefix('=')?
            .trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let value = &value[1..];
        (value[..value.find(quote)?] == *namespace).then_some(&rest[..name_len])
    })
}

/// Where the start tag `<name` (exactly that name: followed by `>`, `/` or whitespace) is
/// first found in `text`.
fn find_start_tag(text: &str, name: &str) -> Option<usize> {
    let open = format!("<{name}");
    text.match_indices(open.as_str())
        .map(|(at, _)| at)
        .find(|&at| {
            text[at + open.len()..]
                .chars()
                .next()
                .is_some_and(|c| c == '>' || c == '/' || c.is_whitespace())
        })
}

/// RSS 1.0 and 2.0 items whose only title is Dublin Core's `dc:title` get it as their
/// `<title>` (feed-rs reads only the latter; feedparser takes either). Items with a `<title>`
/// keep theirs. Anything else is returned as it is.
fn dc_titles(text: &str) -> Cow<'_, str> {
    let Some(prefix) = namespace_prefix(text, DUBLIN_CORE) else {
        return Cow::Borrowed(text);
    };
    let dc_title = format!("{prefix}:title");
    if find_start_tag(text, &dc_title).is_none() {
        return Cow::Borrowed(text);
    }
    let close = format!("</{dc_title}>");
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text;
    while let Some(start) = find_start_tag(rest, "item") {
        let Some(open_end) = rest[start..].find('>').map(|e| start + e + 1) else {
            break;
        };
        let Some(end) = rest[open_end..].find("</item>").map(|e| open_end + e) else {
            break;
        };
        out.push_str(&rest[..open_end]);
        let body = &rest[open_end..end];
        let title = (find_start_tag(body, "title").is_none())
            .then(|| {
                let at = find_start_tag(body, &dc_title)?;
                let content = body[at..].find('>').map(|e| at + e + 1)?;
                // `<dc:title/>` has no content.
                if body[..content].ends_with("/>") {
                    return None;
                }
                let len = body[content..].find(close.as_str())?;
                Some(&body[content..content + len])
            })
            .flatten();
        if let Some(title) = title {
            out.push_str("<title>");
            out.push_str(title);
            out.push_str("</title>");
        }
        out.push_str(body);
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The name of the document's root element, past the XML declaration, comments, processing
/// instructions and the doctype.
fn root_name(text: &str) -> Option<&str> {
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after[after.find("-->")? + 3..].trim_start();
        } else if rest.starts_with("<?") || rest.starts_with("<!") {
            rest = rest[rest.find('>')? + 1..].trim_start();
        } else {
            let name = rest.strip_prefix('<')?;
            let len = name
                .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
                .unwrap_or(name.len());
            return Some(&name[..len]);
        }
    }
}

/// The attributes of a start tag's inside (`ITEM HREF="/a" LASTMOD='…'`), names lowercased,
/// values with their character references decoded.
fn tag_attributes(tag: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = tag
        .find(char::is_whitespace)
        .map_or("", |at| &tag[at..])
        .trim_end_matches('/');
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().to_ascii_lowercase();
        let value = rest[eq + 1..].trim_start();
        let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let Some(len) = value[1..].find(quote) else {
            break;
        };
        let raw = &value[1..1 + len];
        found.push((name, html_escape::decode_html_entities(raw).into_owned()));
        rest = &value[1 + len + 1..];
    }
    found
}

/// A root `<rdf>` with no namespace (RSS 1.0 written without `rdf:`, which feed-rs does not
/// recognise) as the `<rss>` feedparser reads it as; the items then get their channel from
/// [`upgrade_dialect`]. Any other document is returned as it is.
fn bare_rdf_as_rss(text: &str) -> Cow<'_, str> {
    if root_name(text) != Some("rdf") {
        return Cow::Borrowed(text);
    }
    let (Some(open), Some(close)) = (find_start_tag(text, "rdf"), text.rfind("</rdf>")) else {
        return Cow::Borrowed(text);
    };
    if close < open {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..open]);
    out.push_str("<rss");
    out.push_str(&text[open + "<rdf".len()..close]);
    out.push_str("</rss>");
    out.push_str(&text[close + "</rdf>".len()..]);
    Cow::Owned(out)
}

/// Microsoft's Channel Definition Format (1997: `<CHANNEL HREF=…><ITEM HREF=…><TITLE>…`) as
/// the RSS 2.0 feedparser reads it as: a channel's or item's `HREF` is its link (an item's
/// resolved against the channel's `BASE`), `TITLE` its title, `ABSTRACT` its description and
/// `LASTMOD` an item's date. Any other document is returned as it is.
fn cdf_to_rss(text: &str) -> Cow<'_, str> {
    if !root_name(text).is_some_and(|name| name.eq_ignore_ascii_case("channel"))
        || !text.contains("<ITEM")
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 256);
    let mut base: Option<Url> = None;
    let mut rest = text;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let passed = [
            ("<![CDATA[", "]]>"),
            ("<!--", "-->"),
            ("<?", "?>"),
            ("<!", ">"),
        ]
        .into_iter()
        .find(|(start, _)| rest.starts_with(start));
        if let Some((start, end)) = passed {
            let stop = rest[start.len()..]
                .find(end)
                .map_or(rest.len(), |e| start.len() + e + end.len());
            out.push_str(&rest[..stop]);
            rest = &rest[stop..];
            continue;
        }
        let Some(close) = rest.find('>') else {
            out.push_str(rest);
            return Cow::Owned(out);
        };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let closing = tag.starts_with('/');
        let inner = tag.trim_start_matches('/');
        let name_len = inner
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(inner.len());
        let name = inner[..name_len].to_ascii_lowercase();
        let href = |attributes: &[(String, String)], base: Option<&Url>| {
            attributes
                .iter()
                .find(|(n, _)| n == "href")
                .map(|(_, href)| {
                    let resolved = base.and_then(|b| b.join(href.trim()).ok());
                    let href = resolved.map_or_else(|| href.clone(), String::from);
                    format!("<link>{}</link>", html_escape::encode_text(&href))
                })
                .unwrap_or_default()
        };
        match (name.as_str(), closing) {
            ("channel", false) => {
                let attributes = tag_attributes(inner);
                base = attributes
                    .iter()
                    .find(|(n, _)| n == "base")
                    .and_then(|(_, b)| Url::parse(b.trim()).ok());
                out.push_str("<rss version=\"2.0\"><channel>");
                out.push_str(&href(&attributes, None));
            }
            ("channel", true) => out.push_str("</channel></rss>"),
            ("item", false) => {
                let attributes = tag_attributes(inner);
                out.push_str("<item>");
                out.push_str(&href(&attributes, base.as_ref()));
                let date = attributes
                    .iter()
                    .find(|(n, _)| n == "lastmod")
                    .and_then(|(_, d)| DateTime::parse_from_rfc3339(d.trim()).ok());
                if let Some(date) = date {
                    out.push_str(&format!("<pubDate>{}</pubDate>", date.to_rfc2822()));
                }
                if inner.ends_with('/') {
                    out.push_str("</item>");
                }
            }
            ("item", true) => out.push_str("</item>"),
            ("title", _) => out.push_str(if closing { "</title>" } else { "<title>" }),
            ("abstract", _) => out.push_str(if closing {
                "</description>"
            } else {
                "<description>"
            }),
            _ => {
                out.push('<');
                out.push_str(tag);
                out.push('>');
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Whether a title an RSS feed typed as nothing looks like HTML, as feedparser decides it: a
/// closing tag, or a character reference (which the XML parser has already decoded once).
fn looks_like_html(text: &str) -> bool {
    let has_close_tag = text.match_indices("</").any(|(at, _)| {
        let rest = &text[at + 2..];
        let name_len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        name_len > 0 && rest[name_len..].starts_with('>')
    });
    let has_reference = text.match_indices('&').any(|(at, _)| {
        let rest = &text[at + 1..];
        let rest = rest.strip_prefix('#').unwrap_or(rest);
        let name_len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        name_len > 0 && rest[name_len..].starts_with(';')
    });
    has_close_tag || has_reference || text.contains("<br") || text.contains("<img")
}

fn is_forbidden_char(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
}

/// The RSS guids marked `isPermaLink="false"` (feed-rs does not keep the attribute).
fn non_permalink_guids(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    if !text.contains("isPermaLink") {
        return found;
    }
    let mut rest = text;
    while let Some(at) = rest.find("<guid") {
        rest = &rest[at + 5..];
        let Some(close) = rest.find('>') else { break };
        let attributes = &rest[..close];
        rest = &rest[close + 1..];
        let Some(end) = rest.find("</guid") else {
            break;
        };
        let compact: String = attributes.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.contains("isPermaLink=\"false\"") || compact.contains("isPermaLink='false'") {
            let value = rest[..end].trim();
            let value = value
                .strip_prefix("<![CDATA[")
                .and_then(|v| v.strip_suffix("]]>"))
                .unwrap_or(value);
            found.insert(html_escape::decode_html_entities(value.trim()).into_owned());
        }
        rest = &rest[end..];
    }
    found
}

fn raw_item(
    entry: feed_rs::model::Entry,
    feed_language: Option<&str>,
    atom: bool,
    not_permalinks: &HashSet<String>,
) -> RawItem {
    let title_is_text = entry.title.as_ref().is_some_and(|t| {
        if atom {
            t.content_type.to_string().starts_with("text/plain")
        } else {
            !looks_like_html(&t.content)
        }
    });
    let guid = (!entry.id.is_empty() && entry.id != MISSING_ID_MARKER).then(|| entry.id.clone());
    // `rel="alternate"` (feed-rs gives a link without `rel` that relation), never an
    // enclosure, a `related` page or an RSS `<comments>` link (feed-rs gives those a target),
    // as feedparser chooses; else a permalink guid, or an Atom id that is an http(s) URL.
    let link = entry
        .links
        .iter()
        .filter(|l| l.target.is_none())
        .find(|l| {
            l.rel
                .as_deref()
                .is_none_or(|r| r.eq_ignore_ascii_case("alternate"))
        })
        .map(|l| l.href.clone())
        .filter(|href| !href.trim().is_empty())
        .or_else(|| {
            let id = entry.id.trim();
            let is_url = id.starts_with("http://") || id.starts_with("https://");
            (is_url && id != MISSING_ID_MARKER && !not_permalinks.contains(id))
                .then(|| id.to_owned())
        });
    let mut media = Vec::new();
    for object in &entry.media {
        for content in &object.content {
            if let Some(url) = &content.url {
                media.push(MediaRef {
                    url: url.to_string(),
                    mime: content.content_type.as_ref().map(|m| m.to_string()),
                    kind: MediaKind::Content,
                });
            }
        }
        for thumb in &object.thumbnails {
            media.push(MediaRef {
                url: thumb.image.uri.clone(),
                mime: None,
                kind: MediaKind::Thumbnail,
            });
        }
    }
    // Atom/JSON enclosures arrive as links with rel="enclosure".
    for l in entry
        .links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("enclosure"))
    {
        media.push(MediaRef {
            url: l.href.clone(),
            mime: l.media_type.clone(),
            kind: MediaKind::Content,
        });
    }
    let author = entry
        .authors
        .iter()
        .find_map(|p| p.name.clone().filter(|n| !n.trim().is_empty()))
        .or_else(|| entry.authors.iter().find_map(|p| p.email.clone()));
    RawItem {
        guid,
        link,
        title: entry.title.map(|t| t.content),
        title_is_text,
        summary_html: entry.summary.map(|t| t.content),
        content_html: entry.content.and_then(|c| c.body),
        media,
        author,
        published_at: entry.published.or(entry.updated),
        language: entry.language.or_else(|| feed_language.map(str::to_owned)),
    }
}

/// Decodes `body` to UTF-8: BOM, then HTTP charset, then the XML declaration, else UTF-8.
pub fn to_utf8<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        let (text, _) = encoding.decode_without_bom_handling(&body[bom_len..]);
        return rewrite_declaration(text);
    }
    let declared = content_type
        .and_then(charset_from_content_type)
        .or_else(|| xml_declared_encoding(body))
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .unwrap_or_else(|| undeclared_encoding(body));
    let (text, _) = declared.decode_without_bom_handling(body);
    rewrite_declaration(text)
}

/// The encoding of a body that declares none: UTF-8 when it is valid UTF-8, else what
/// `chardetng` (Firefox's detector) guesses (Shift_JIS, EUC-JP, KOI8-R, GBK, windows-1252…).
fn undeclared_encoding(body: &[u8]) -> &'static Encoding {
    if std::str::from_utf8(body).is_ok() {
        return encoding_rs::UTF_8;
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(body, true);
    detector.guess(None, false)
}

fn charset_from_content_type(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// The `encoding="…"` of an XML declaration at the start of `body`.
fn xml_declared_encoding(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(512)];
    let head = String::from_utf8_lossy(head);
    let start = head.trim_start();
    if !start.starts_with("<?xml") {
        return None;
    }
    let decl = &start[..start.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_owned())
}

/// Rewrites a non-UTF-8 `encoding=` in the XML declaration, since the text is now UTF-8.
fn rewrite_declaration(text: Cow<'_, str>) -> Cow<'_, str> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with("<?xml") {
        return text;
    }
    let Some(end) = trimmed.find("?>") else {
        return text;
    };
    let decl = &trimmed[..end];
    if !decl.contains("encoding") {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"");
    out.push_str(&trimmed[end..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_encoding_is_read() {
        let body = b"<?xml version='1.0' encoding='windows-1251'?><rss/>";
        assert_eq!(xml_declared_encoding(body).as_deref(), Some("windows-1251"));
    }

    #[test]
    fn http_charset_is_read() {
        assert_eq!(
            charset_from_content_type("application/rss+xml; charset=\"ISO-8859-1\"").as_deref(),
            Some("ISO-8859-1")
        );
    }

    #[test]
    fn websub_hub_and_self_links_are_found_in_rss_and_atom() {
        let url = Url::parse("https://pub.example/feeds/news.xml").expect("url");
        let rss = br#"<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
            <title>t</title><link>https://pub.example/</link>
            <atom:link rel="hub" href="https://hub.example/"/>
            <atom:link rel="self" href="/feeds/news.xml?self" type="application/rss+xml"/>
            <item><title>a</title><link>https://pub.example/a</link></item></channel></rss>"#;
        let feed = parse_feed(rss, None, &url, Utc::now()).expect("parses");
        assert_eq!(
            feed.hubs,
            [Url::parse("https://hub.example/").expect("url")]
        );
        assert_eq!(
            feed.self_url.map(String::from).as_deref(),
            Some("https://pub.example/feeds/news.xml?self")
        );
        let atom = br#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>
            <link rel="hub" href="https://hub-a.example/"/><link rel="hub" href="https://hub-b.example/"/>
            <updated>2026-12-01T00:00:00Z</updated></feed>"#;
        let feed = parse_feed(atom, None, &url, Utc::now()).expect("parses");
        assert_eq!(feed.hubs.len(), 2);
        assert_eq!(feed.self_url, None);
        let plain = br#"<rss version="2.0"><channel><title>t</title></channel></rss>"#;
        assert!(
            parse_feed(plain, None, &url, Utc::now())
                .expect("parses")
                .hubs
                .is_empty()
        );
    }

    #[test]
    fn dialect_rewrites_leave_other_feeds_alone() {
        let rss = r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><item><title>t</title><dc:title>d</dc:title></item></channel></rss>"#;
        assert!(matches!(cdf_to_rss(rss), Cow::Borrowed(_)));
        assert!(!dc_titles(rss).contains("<title>d</title>"));
        let atom =
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>t</title></entry></feed>"#;
        assert!(matches!(cdf_to_rss(atom), Cow::Borrowed(_)));
        assert!(matches!(dc_titles(atom), Cow::Borrowed(_)));
        assert_eq!(
            root_name("<!-- c --><?pi x?>\n<CHANNEL HREF='x'>"),
            Some("CHANNEL")
        );
        assert!(matches!(bare_rdf_as_rss(rss), Cow::Borrowed(_)));
        assert_eq!(
            bare_rdf_as_rss(
                "<?xml version=\"1.0\"?>\n<rdf>\n<item><title>a</title></item>\n</rdf>\n"
            ),
            "<?xml version=\"1.0\"?>\n<rss>\n<item><title>a</title></item>\n</rss>\n"
        );
        assert_eq!(
            namespace_prefix(
                r#"<rss xmlns:a="urn:x" xmlns:d = 'http://purl.org/dc/elements/1.1/'>"#,
                DUBLIN_CORE
            ),
            Some("d")
        );
        assert_eq!(
            tag_attributes(r#"ITEM HREF="a?b=1&amp;c=2" LASTMOD='2026' /"#),
            [
                ("href".to_owned(), "a?b=1&c=2".to_owned()),
                ("lastmod".to_owned(), "2026".to_owned())
            ]
        );
    }

    #[test]
    fn latin1_is_transcoded() {
        let mut body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf".to_vec();
        body.push(0xE9);
        body.extend_from_slice(b"</a>");
        let text = to_utf8(&body, None);
        assert!(text.contains("café"));
        assert!(text.contains("UTF-8"));
    }
}
