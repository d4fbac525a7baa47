//! Repairs the ill-formed XML real feeds are published with, as feedparser's loose parser
//! recovers from it, so one bad byte does not cost a feed all its entries:
//!
//! - C0 control characters other than tab and line breaks (not allowed in XML 1.0) go;
//! - a bare `&` (`?id=1&ref=rss`, `Salt & pepper`) becomes `&amp;`;
//! - an HTML entity XML does not define (`&eacute;`, `&nbsp;`, RSS 0.9x) becomes its numeric
//!   reference; `&#X41;` becomes `&#x41;`;
//! - a closing tag missing its `>` (`</item` then `<item>`) is closed;
//! - a closing tag that closes nothing open is dropped, one that skips open elements closes
//!   them, and elements still open at the end (a truncated body) are closed;
//! - Atom's `type="text/plain"` (which feed-rs refuses) reads as `type="text"`.
//!
//! CDATA sections, comments, processing instructions and the doctype pass unchanged.

/// The five entities XML defines itself.
const XML_ENTITIES: [&str; 5] = ["amp", "lt", "gt", "quot", "apos"];

/// Longest entity name looked up.
const MAX_ENTITY_NAME: usize = 32;

/// `text` with the repairs above applied.
pub fn recover_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            rest = markup(rest, &mut out, &mut open);
        } else if c == '&' {
            rest = reference(rest, &mut out);
        } else {
            if !is_invalid_char(c) {
                out.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    for name in open.iter().rev() {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    out
}

fn is_invalid_char(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
}

/// Copies `&…` at the start of `rest` as a well-formed reference; returns what follows.
fn reference<'a>(rest: &'a str, out: &mut String) -> &'a str {
    let after = &rest[1..];
    if let Some(body) = after.strip_prefix('#') {
        let (hex, digits) = match body.strip_prefix(['x', 'X']) {
            Some(hex) => (true, hex),
            None => (false, body),
        };
        let len = digits
            .bytes()
            .take_while(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        let value = u32::from_str_radix(&digits[..len], if hex { 16 } else { 10 }).ok();
        let valid = value
            .and_then(char::from_u32)
            .is_some_and(|c| !is_invalid_char(c));
        if len > 0 && valid && digits[len..].starts_with(';') {
            out.push_str(if hex { "&#x" } else { "&#" });
            out.push_str(&digits[..len]);
            out.push(';');
            return &digits[len + 1..];
        }
        out.push_str("&amp;");
        return after;
    }
    let len = after
        .bytes()
        .take(MAX_ENTITY_NAME + 1)
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    if len > 0 && len <= MAX_ENTITY_NAME && after[len..].starts_with(';') {
        let name = &after[..len];
        if XML_ENTITIES.contains(&name) {
            out.push('&');
            out.push_str(name);
            out.push(';');
            return &after[len + 1..];
        }
        let entity = &rest[..len + 2];
        let decoded = html_escape::decode_html_entities(entity);
        if decoded != entity {
            for c in decoded.chars() {
                out.push_str(&format!("&#{};", u32::from(c)));
            }
            return &after[len + 1..];
        }
    }
    out.push_str("&amp;");
    after
}

/// Copies the markup at the start of `rest` (which begins with `<`); returns what follows.
fn markup<'a>(rest: &'a str, out: &mut String, open: &mut Vec<String>) -> &'a str {
    for (start, end) in [("<![CDATA[", "]]>"), ("<!--", "-->"), ("<?", "?>")] {
        if let Some(inner) = rest.strip_prefix(start) {
            let stop = inner
                .find(end)
                .map_or(rest.len(), |at| start.len() + at + end.len());
            out.push_str(&rest[..stop]);
            return &rest[stop..];
        }
    }
    if rest.starts_with("<!") {
        let stop = rest.find('>').map_or(rest.len(), |at| at + 1);
        out.push_str(&rest[..stop]);
        return &rest[stop..];
    }
    let closing = rest.starts_with("</");
    let name_start = if closing { 2 } else { 1 };
    let name_len = rest[name_start..]
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, ':' | '_' | '-' | '.')))
        .map_or(rest.len() - name_start, |(i, _)| i);
    if name_len == 0 {
        // `<` that starts no tag: text.
        out.push_str("&lt;");
        return &rest[1..];
    }
    let name = &rest[name_start..name_start + name_len];
    let after_name = &rest[name_start + name_len..];
    if closing {
        let trimmed = after_name.trim_start();
        let remainder = match trimmed.strip_prefix('>') {
            Some(remainder) => remainder,
            // `</item` with its `>` lost.
            None => after_name,
        };
        if let Some(at) = open.iter().rposition(|n| n == name) {
            for skipped in open.drain(at..).skip(1).rev() {
                out.push_str("</");
                out.push_str(&skipped);
                out.push('>');
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        return remainder;
    }
    // An opening tag: find its end outside quoted attribute values.
    let mut quote: Option<char> = None;
    let mut end = None;
    for (i, c) in after_name.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                end = Some(i);
                break;
            }
            // A tag that runs into the next one lost its `>`.
            (None, '<') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end.unwrap_or(after_name.len());
    let attributes = &after_name[..end];
    let self_closing = attributes.trim_end().ends_with('/');
    out.push('<');
    out.push_str(name);
    let mut attrs = String::with_capacity(attributes.len());
    let mut attr_rest = attributes;
    while let Some(c) = attr_rest.chars().next() {
        if c == '&' {
            attr_rest = reference(attr_rest, &mut attrs);
        } else {
            if !is_invalid_char(c) {
                attrs.push(c);
            }
            attr_rest = &attr_rest[c.len_utf8()..];
        }
    }
    out.push_str(
        &attrs
            .replace("type=\"text/plain\"", "type=\"text\"")
            .replace("type=\"application/xhtml+xml\"", "type=\"xhtml\""),
    );
    out.push('>');
    if !self_closing {
        open.push(name.to_owned());
    }
    let consumed = if after_name[end..].starts_with('>') {
        end + 1
    } else {
        end
    };
    &after_name[consumed..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_made_well_formed() {
        assert_eq!(
            recover_xml("<a>Salt & pepper</a>"),
            "<a>Salt &amp; pepper</a>"
        );
        assert_eq!(
            recover_xml("<a href=\"/x?id=1&ref=rss\">t</a>"),
            "<a href=\"/x?id=1&amp;ref=rss\">t</a>"
        );
        assert_eq!(recover_xml("<a>&eacute;&nbsp;</a>"), "<a>&#233;&#160;</a>");
        assert_eq!(
            recover_xml("<a>&#X41;&#x42;&#67;</a>"),
            "<a>&#x41;&#x42;&#67;</a>"
        );
        assert_eq!(
            recover_xml("<a>&amp;&lt;&bogus;</a>"),
            "<a>&amp;&lt;&amp;bogus;</a>"
        );
        assert_eq!(
            recover_xml("<a>&#0;&#xFFFE;</a>"),
            "<a>&amp;#0;&amp;#xFFFE;</a>"
        );
        assert_eq!(
            recover_xml("<a><![CDATA[a & b <c>]]></a>"),
            "<a><![CDATA[a & b <c>]]></a>"
        );
    }

    #[test]
    fn tags_are_closed() {
        assert_eq!(
            recover_xml("<rss><item><t>a</t></item\n<item><t>b</t></item></rss>"),
            "<rss><item><t>a</t></item>\n<item><t>b</t></item></rss>"
        );
        assert_eq!(recover_xml("<rss><c><i>x"), "<rss><c><i>x</i></c></rss>");
        assert_eq!(recover_xml("<r><a><b>x</a></r>"), "<r><a><b>x</b></a></r>");
        assert_eq!(recover_xml("<r>x</q></r>"), "<r>x</r>");
        assert_eq!(recover_xml("<r><br/>1 < 2</r>"), "<r><br/>1 &lt; 2</r>");
        assert_eq!(
            recover_xml("<?xml version=\"1.0\"?><!DOCTYPE rss><r a='>'>\u{1}x</r>"),
            "<?xml version=\"1.0\"?><!DOCTYPE rss><r a='>'>x</r>"
        );
        assert_eq!(
            recover_xml("<title type=\"text/plain\">a</title>"),
            "<title type=\"text\">a</title>"
        );
    }
}

/// The Atom 0.3 namespace (2003), still served by some old publishing systems.
const ATOM_03_NS: &str = "http://purl.org/atom/ns#";

/// RSS versions feed-rs reads; any other (or none) is read as RSS 2.0, as feedparser does.
const KNOWN_RSS_VERSIONS: [&str; 3] = ["2.0", "0.91", "0.92"];

/// Rewrites feed dialects feed-rs does not read into ones it does, as feedparser reads them:
/// Atom 0.3 becomes Atom 1.0 (namespace, `issued`/`modified`/`tagline`/`copyright`, escaped and
/// XML modes); an `<rss>` root without a version feed-rs knows reads as 2.0, and one whose
/// items sit outside a `<channel>` gets one. Anything else is returned as it is.
pub fn upgrade_dialect(text: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let Some((start, end, name)) = root_tag(text) else {
        return Cow::Borrowed(text);
    };
    let tag = &text[start..end];
    if name == "feed" && text.contains(ATOM_03_NS) {
        let mut out = text.replace(ATOM_03_NS, "http://www.w3.org/2005/Atom");
        for (old, new) in [
            ("issued", "published"),
            ("modified", "updated"),
            ("tagline", "subtitle"),
            ("copyright", "rights"),
        ] {
            out = out
                .replace(&format!("<{old}>"), &format!("<{new}>"))
                .replace(&format!("<{old} "), &format!("<{new} "))
                .replace(&format!("</{old}>"), &format!("</{new}>"));
        }
        for (old, new) in [
            (r#"type="text/html" mode="escaped""#, r#"type="html""#),
            (r#"mode="escaped" type="text/html""#, r#"type="html""#),
            (
                r#"type="application/xhtml+xml" mode="xml""#,
                r#"type="xhtml""#,
            ),
            (
                r#"mode="xml" type="application/xhtml+xml""#,
                r#"type="xhtml""#,
            ),
            (r#"type="application/xhtml+xml""#, r#"type="xhtml""#),
            (r#"type="text/plain""#, r#"type="text""#),
            (r#"mode="escaped""#, ""),
            (r#"mode="xml""#, ""),
        ] {
            out = out.replace(old, new);
        }
        return Cow::Owned(out);
    }
    if name != "rss" {
        return Cow::Borrowed(text);
    }
    let version = attribute(tag, "version");
    let known = version.is_some_and(|v| KNOWN_RSS_VERSIONS.contains(&v.trim()));
    let has_channel = text.contains("<channel");
    if known && has_channel {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    out.push_str(&text[..start]);
    if known {
        out.push_str(tag);
    } else {
        let without = match version {
            Some(v) => tag.replacen(&format!("version=\"{v}\""), "", 1).replacen(
                &format!("version='{v}'"),
                "",
                1,
            ),
            None => tag.to_owned(),
        };
        let (head, close) = match without.strip_suffix("/>") {
            Some(head) => (head.to_owned(), "/>"),
            None => (without.trim_end_matches('>').to_owned(), ">"),
        };
        out.push_str(head.trim_end());
        out.push_str(" version=\"2.0\"");
        out.push_str(close);
    }
    let body = &text[end..];
    if has_channel {
        out.push_str(body);
    } else {
        out.push_str("<channel>");
        match body.rfind("</rss") {
            Some(at) => {
                out.push_str(&body[..at]);
                out.push_str("</channel>");
                out.push_str(&body[at..]);
            }
            None => {
                out.push_str(body);
                out.push_str("</channel>");
            }
        }
    }
    Cow::Owned(out)
}

/// The root element's start tag: its byte range and name (after declarations, comments and
/// processing instructions).
fn root_tag(text: &str) -> Option<(usize, usize, &str)> {
    let mut at = 0;
    loop {
        let rest = &text[at..];
        let open = rest.find('<')?;
        let from = at + open;
        let tail = &text[from..];
        let skip = if tail.starts_with("<?") {
            tail.find("?>").map(|e| e + 2)
        } else if tail.starts_with("<!--") {
            tail.find("-->").map(|e| e + 3)
        } else if tail.starts_with("<!") {
            tail.find('>').map(|e| e + 1)
        } else {
            let end = from + tail.find('>')? + 1;
            let name_len = tail[1..]
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(tail.len() - 1);
            let name = &tail[1..1 + name_len];
            let local = name.rsplit(':').next().unwrap_or(name);
            return Some((from, end, local));
        };
        at = from + skip?;
    }
}

/// The value of `name="…"` (or `'…'`) in a start tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!("{name}="))?;
    let rest = &tag[at + name.len() + 1..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(&value[..value.find(quote)?])
}

#[cfg(test)]
mod dialect_tests {
    use super::*;

    #[test]
    fn atom_03_reads_as_atom_10() {
        let old = r#"<?xml version="1.0"?><feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry><title type="text/html" mode="escaped">&lt;b&gt;x&lt;/b&gt;</title><issued>2004-01-01T00:00:00Z</issued><modified>2004-01-02T00:00:00Z</modified></entry></feed>"#;
        let new = upgrade_dialect(old);
        assert!(new.contains("http://www.w3.org/2005/Atom"), "{new}");
        assert!(new.contains(r#"<title type="html">"#), "{new}");
        assert!(
            new.contains("<published>2004-01-01T00:00:00Z</published>"),
            "{new}"
        );
        assert!(
            new.contains("<updated>2004-01-02T00:00:00Z</updated>"),
            "{new}"
        );
    }

    #[test]
    fn rss_without_a_known_version_or_channel_reads_as_rss_20() {
        assert_eq!(
            upgrade_dialect("<!-- c --><rss>\n<item><title>a</title></item>\n</rss>"),
            "<!-- c --><rss version=\"2.0\"><channel>\n<item><title>a</title></item>\n</channel></rss>"
        );
        assert_eq!(
            upgrade_dialect("<rss version=\"0.93\"><channel></channel></rss>"),
            "<rss version=\"2.0\"><channel></channel></rss>"
        );
        let fine = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel></channel></rss>";
        assert!(matches!(
            upgrade_dialect(fine),
            std::borrow::Cow::Borrowed(_)
        ));
        let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"></feed>";
        assert!(matches!(
            upgrade_dialect(atom),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
