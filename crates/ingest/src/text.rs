//! Plain-text helpers shared by normalisation, topic tagging and clustering.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Keeps no tag at all and drops scripts and styles with their content; built once.
static TEXT_ONLY: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder.clean_content_tags(HashSet::from(["script", "style", "template"]));
    builder
});

/// Converts an HTML fragment to plain text: tags and scripts dropped, entities decoded, whitespace collapsed.
///
/// Most fragments go through a tokenizer that follows HTML's rules for tags, comments, raw-text
/// elements and character references without building a tree; fragments it would read
/// differently from an HTML parser (semicolon-less or out-of-range character references, `<plaintext>`)
/// go through the parser.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') && !html.contains('&') {
        return collapse_whitespace(html);
    }
    fast_html_to_text(html).unwrap_or_else(|| parsed_html_to_text(html))
}

/// [`html_to_text`] through the HTML parser (ammonia with no tag allowed).
fn parsed_html_to_text(html: &str) -> String {
    // A space before each tag keeps words of adjacent block elements apart.
    let spaced = html.replace('<', " <");
    let stripped = TEXT_ONLY.clean(&spaced).to_string();
    collapse_whitespace(&html_escape::decode_html_entities(&stripped))
}

/// Elements whose content is dropped with them.
const DROPPED: [&str; 3] = ["script", "style", "template"];
/// Elements whose content is raw text, kept as written (HTML's raw-text elements; `noscript`
/// because the parser runs with scripting on).
const RAW_KEPT: [&str; 5] = ["iframe", "noembed", "noframes", "noscript", "xmp"];
/// Elements whose content is text with character references (HTML's escapable raw text).
const ESCAPABLE_RAW: [&str; 2] = ["textarea", "title"];

/// The tokenizer behind [`html_to_text`]; `None` when the fragment needs the full parser.
fn fast_html_to_text(html: &str) -> Option<String> {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len());
    let mut text_start = 0;
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'<', &bytes[i..]) {
        let lt = i + offset;
        let next = bytes.get(lt + 1).copied();
        let after = match next {
            Some(c) if c.is_ascii_alphabetic() => {
                push_text(&mut out, &html[text_start..lt])?;
                let (name, end) = tag(bytes, lt + 1)?;
                skip_content(html, &mut out, &name, end)?
            }
            Some(b'/') if bytes.get(lt + 2).is_some_and(u8::is_ascii_alphabetic) => {
                push_text(&mut out, &html[text_start..lt])?;
                tag(bytes, lt + 2)?.1
            }
            // "</" at the very end is text.
            Some(b'/') if lt + 2 == bytes.len() => {
                i = lt + 1;
                continue;
            }
            Some(b'/') if bytes.get(lt + 2) == Some(&b'>') => {
                push_text(&mut out, &html[text_start..lt])?;
                lt + 3
            }
            Some(b'!') if html[lt..].starts_with("<!--") => {
                push_text(&mut out, &html[text_start..lt])?;
                comment_end(html, lt + 4)
            }
            Some(b'!' | b'?' | b'/') => {
                push_text(&mut out, &html[text_start..lt])?;
                memchr::memchr(b'>', &bytes[lt..]).map_or(bytes.len(), |p| lt + p + 1)
            }
            // A '<' that starts nothing is text.
            _ => {
                i = lt + 1;
                continue;
            }
        };
        out.push(' ');
        text_start = after;
        i = after;
    }
    push_text(&mut out, &html[text_start..])?;
    Some(collapse_whitespace(&out))
}

/// Reads a tag from its name at `from`; returns the lower-cased name and the index after `>`.
/// `None` when the tag never ends (the parser then drops it, but it may also be a fragment
/// cut short, which the parser reads its own way).
fn tag(bytes: &[u8], from: usize) -> Option<(String, usize)> {
    let name_end = bytes[from..]
        .iter()
        .position(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>')
        .map_or(bytes.len(), |p| from + p);
    let name = String::from_utf8_lossy(&bytes[from..name_end]).to_ascii_lowercase();
    let mut i = name_end;
    let mut quote: Option<u8> = None;
    let mut after_equals = false;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'>' => return Some((name, i + 1)),
            None if (c == b'"' || c == b'\'') && after_equals => quote = Some(c),
            None => {}
        }
        if quote.is_none() && !c.is_ascii_whitespace() {
            after_equals = c == b'=';
        }
        i += 1;
    }
    None
}

/// Handles the content of the element `name` that starts at `from`; returns where markup resumes.
fn skip_content(html: &str, out: &mut String, name: &str, from: usize) -> Option<usize> {
    let dropped = DROPPED.contains(&name);
    let raw_kept = RAW_KEPT.contains(&name);
    let escapable = ESCAPABLE_RAW.contains(&name);
    if name == "plaintext" {
        return None;
    }
    if !(dropped || raw_kept || escapable) {
        return Some(from);
    }
    let end = end_tag(html, from, name);
    let content = &html[from..end.unwrap_or(html.len())];
    // As the parser path sees it: a space before every '<', raw text included.
    if raw_kept {
        out.push(' ');
        out.push_str(&content.replace('\0', "").replace('<', " <"));
    } else if escapable {
        out.push(' ');
        push_text(out, content)?;
    } else if name == "template" && content.contains('<') {
        // A template's content is markup; nested templates are for the parser.
        if content.to_ascii_lowercase().contains("<template") {
            return None;
        }
    }
    match end {
        Some(at) => Some(tag(html.as_bytes(), at + 2)?.1),
        None => Some(html.len()),
    }
}

/// Where `</name` (followed by whitespace, `/` or `>`) starts at or after `from`.
fn end_tag(html: &str, from: usize, name: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    let mut i = from;
    while let Some(p) = memchr::memmem::find(&bytes[i..], b"</") {
        let at = i + p;
        let name_end = at + 2 + name.len();
        if bytes.len() > name_end
            && bytes[at + 2..name_end].eq_ignore_ascii_case(name.as_bytes())
            && matches!(
                bytes[name_end],
                b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'
            )
        {
            return Some(at);
        }
        i = at + 2;
    }
    None
}

/// Where markup resumes after a comment whose text starts at `from`.
fn comment_end(html: &str, from: usize) -> usize {
    let rest = &html[from..];
    if rest.starts_with('>') {
        return from + 1;
    }
    if rest.starts_with("->") {
        return from + 2;
    }
    let close = ["-->", "--!>"]
        .iter()
        .filter_map(|end| rest.find(end).map(|p| p + end.len()))
        .min();
    close.map_or(html.len(), |p| from + p)
}

/// Appends `text` with its character references decoded; `None` when a reference is one that
/// HTML reads in its own way (no semicolon, or a number outside plain Unicode).
fn push_text(out: &mut String, text: &str) -> Option<()> {
    // As the parser path sees it: a space before every '<', a literal one included.
    let spaced;
    let text = if text.contains('<') {
        spaced = text.replace('<', " <");
        spaced.as_str()
    } else {
        text
    };
    if !text.contains('&') {
        out.push_str(&text.replace('\0', ""));
        return Some(());
    }
    let bytes = text.as_bytes();
    for amp in memchr::memchr_iter(b'&', bytes) {
        let reference = &bytes[amp + 1..];
        let len = reference
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'#'))
            .unwrap_or(reference.len());
        if len == 0 {
            continue;
        }
        if reference.get(len) != Some(&b';') {
            return None;
        }
        if reference[0] == b'#' {
            let digits = &text[amp + 2..amp + 1 + len];
            let value = match digits.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => digits.parse::<u32>().ok(),
            };
            match value {
                Some(v) if v != 0 && !(0x80..=0x9f).contains(&v) && char::from_u32(v).is_some() => {
                }
                _ => return None,
            }
        }
    }
    out.push_str(&html_escape::decode_html_entities(text).replace('\0', ""));
    Some(())
}

/// Collapses runs of whitespace into one space and trims the ends.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts `text` to at most `max_chars` characters at a word boundary, ending with "…" when cut.
pub fn truncate_at_word(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let limit = max_chars.saturating_sub(1);
    let head: String = text.chars().take(limit).collect();
    let next_is_break = text.chars().nth(limit).is_none_or(char::is_whitespace);
    let cut = if next_is_break {
        head.as_str()
    } else {
        head.rfind(char::is_whitespace)
            .map_or(head.as_str(), |i| &head[..i])
    };
    let cut = cut.trim_end_matches(|c: char| c.is_whitespace() || ",;:-–—".contains(c));
    format!("{cut}…")
}

/// Removes the backslash of backslash-escaped punctuation (`\?` → `?`), as scraped titles carry.
pub fn unescape_backslashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_punctuation()) {
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_decodes_entities() {
        assert_eq!(
            html_to_text(
                "<p>Fish &amp; <b>chips</b></p><p>daily&nbsp;news</p><script>x()</script>"
            ),
            "Fish & chips daily\u{a0}news".replace('\u{a0}', " ")
        );
    }

    /// The tokenizer reads every fragment as the HTML parser does, or hands it to the parser.
    #[test]
    fn the_tokenizer_agrees_with_the_parser() {
        let samples = [
            "<p>Fish &amp; <b>chips</b></p><p>daily&nbsp;news</p>",
            "a<br>b<br/>c",
            "<script>if (a < b && c > d) { x('</p>') }</script>after",
            "<SCRIPT type=\"text/javascript\">var s = '<b>';</SCRIPT >kept",
            "<style>p > a { color: red }</style>styled",
            "<template><p>hidden</p></template>shown",
            "<img src=\"x.jpg\" alt=\"a > b\" title='it''s'>caption",
            "<a href=\"/x?a=1&b=2\" data-x='>'>link</a> text",
            "<!-- a comment with <b>tags</b> -->visible<!---->x<!-->y",
            "<!DOCTYPE html><![CDATA[cdata]]>z<?php echo 1 ?>w",
            "1 < 2 and 3 <4 and a <= b, x<4, y<",
            "</> gone </ also bogus> here",
            "AT&T &amp;lt; &#8217;quoted&#x2019; &hellip; &unknown; & alone",
            "<iframe src=\"https://x\">fallback <b>bold</b> &amp;</iframe>after",
            "<noscript><img src=\"p.gif\"></noscript>tail",
            "<textarea>a <b> &amp; b</textarea>t",
            "<title>Title &amp; more</title>body",
            "<div\nclass=\"x\"\n>multi\nline</div>",
            "<p>unclosed <em>emphasis",
            "<table><tr><td>a</td><td>b</td></tr></table>",
            "<ul><li>one<li>two</ul>",
            "emoji 🎉 <b>ünïcödé</b> текст",
            "&#128; &#0; &amp semicolon-less &copy 2024",
            "<p>cut in a tag <a href=\"x",
            "<plaintext><b>raw",
            "<template><template>x</template>y</template>z",
            "tab\tand\r\nnewlines <br>\u{a0}nbsp",
        ];
        for sample in samples {
            assert_eq!(
                html_to_text(sample),
                parsed_html_to_text(sample),
                "{sample:?}"
            );
        }
        // The fast path really is taken for ordinary markup.
        assert!(fast_html_to_text("<p>a &amp; b</p>").is_some());
        assert!(fast_html_to_text("&copy 2024").is_none());
    }

    #[test]
    fn truncates_at_word_boundary() {
        let text = "alpha beta gamma delta";
        assert_eq!(truncate_at_word(text, 13), "alpha beta…");
        assert_eq!(truncate_at_word(text, 100), text);
        assert!(truncate_at_word(text, 13).chars().count() <= 13);
    }

    #[test]
    fn unescapes_punctuation_only() {
        assert_eq!(
            unescape_backslashes(r"Why\? \(blog\) a\b"),
            r"Why? (blog) a\b"
        );
    }
}
