//! Feed HTML as text: the stored, sanitised body becomes plain paragraphs that the templates
//! escape like any other feed text, so no publisher markup reaches a page.

/// The paragraphs of `html`: tags dropped, block ends and `<br>` as breaks, entities decoded.
pub fn paragraphs(html: &str) -> Vec<String> {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let inside = &rest[open + 1..open + close];
        let tag = inside
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(
            tag.as_str(),
            "p" | "br"
                | "div"
                | "li"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "blockquote"
                | "tr"
                | "figure"
                | "figcaption"
                | "pre"
                | "ul"
                | "ol"
                | "table"
        ) {
            text.push('\n');
        }
        rest = &rest[open + close + 1..];
        // Script and style bodies are code, not text.
        if !inside.starts_with('/') && matches!(tag.as_str(), "script" | "style") {
            let end = format!("</{tag}");
            rest = rest
                .to_ascii_lowercase()
                .find(&end)
                .map_or("", |at| &rest[at..]);
        }
    }
    text.push_str(rest);
    decode_entities(&text)
        .split('\n')
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|&end| end <= 10);
        let decoded = end.and_then(|end| entity(&after[..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        "mdash" => Some('—'),
        "ndash" => Some('–'),
        "hellip" => Some('…'),
        "rsquo" => Some('’'),
        "lsquo" => Some('‘'),
        "rdquo" => Some('”'),
        "ldquo" => Some('“'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_escaped_later_paragraphs() {
        let html = "<p>First &amp; <b>bold</b></p><p>Second<br/>line &#8217;s &lt;script&gt;</p>\
                    <script>alert(1)</script> tail &bogus;";
        assert_eq!(
            paragraphs(html),
            ["First & bold", "Second", "line ’s <script>", "tail &bogus;"]
        );
        assert!(paragraphs("  <div> </div> ").is_empty());
    }
}
