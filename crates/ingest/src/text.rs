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
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') && !html.contains('&') {
        return collapse_whitespace(html);
    }
    // A space before each tag keeps words of adjacent block elements apart.
    let spaced = html.replace('<', " <");
    let stripped = TEXT_ONLY.clean(&spaced).to_string();
    collapse_whitespace(&html_escape::decode_html_entities(&stripped))
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
