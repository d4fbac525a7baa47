//! Feed parsing: bytes in any declared encoding → [`ParsedFeed`] via feed-rs.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use encoding_rs::Encoding;
use url::Url;

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
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        .sanitize_content(false)
        .id_generator(|_, _, _| MISSING_ID_MARKER.to_owned())
        .build();
    let feed = parser
        .parse(utf8.as_bytes())
        .map_err(|e| ParseError::Malformed(e.to_string()))?;

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
        .map(|entry| raw_item(entry, feed_language.as_deref(), atom))
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

fn raw_item(entry: feed_rs::model::Entry, feed_language: Option<&str>, atom: bool) -> RawItem {
    let title_is_text = entry.title.as_ref().is_some_and(|t| {
        if atom {
            t.content_type.to_string().starts_with("text/plain")
        } else {
            !looks_like_html(&t.content)
        }
    });
    let guid = (!entry.id.is_empty() && entry.id != MISSING_ID_MARKER).then(|| entry.id.clone());
    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or_else(|| entry.links.first())
        .map(|l| l.href.clone());
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
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _) = declared.decode_without_bom_handling(body);
    rewrite_declaration(text)
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
    fn latin1_is_transcoded() {
        let mut body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf".to_vec();
        body.push(0xE9);
        body.extend_from_slice(b"</a>");
        let text = to_utf8(&body, None);
        assert!(text.contains("café"));
        assert!(text.contains("UTF-8"));
    }
}
