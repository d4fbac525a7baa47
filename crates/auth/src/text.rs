//! Text that other readers see (comments, display names) must look like what it is: no
//! characters that reorder the text around them or hide in it.
//!
//! Refused anywhere:
//! - bidirectional controls: embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069,
//!   the marks U+200E, U+200F and U+061C (they make "gnp.exe" read as "exe.png", or push a
//!   name over the text beside it);
//! - invisible formatting: U+200B zero width space, U+2060–U+2064 word joiner and invisible
//!   operators, U+FEFF, U+00AD soft hyphen, U+180E, U+206A–U+206F, U+FFF9–U+FFFB;
//! - characters that draw as nothing and are used to fake an empty or a lookalike name: the
//!   Hangul fillers U+115F, U+1160, U+3164, U+FFA0;
//! - control characters other than newline, carriage return and tab (a name's are folded into
//!   spaces where it is stored).
//!
//! Allowed because real text needs them:
//! - U+200C zero width non-joiner and U+200D zero width joiner *between two visible
//!   characters*: Persian and Indic scripts join or part letters with them, and emoji
//!   sequences (👩‍💻, 👨‍👩‍👧) are joined by U+200D. A joiner at either end, beside a space or
//!   beside another invisible character hides nothing legitimate and is refused;
//! - tag characters U+E0020–U+E007F only inside an emoji tag sequence (the black flag U+1F3F4,
//!   tags, then U+E007F), as the flags of England, Scotland and Wales are written.

/// Why a text was refused, in words for the `message` of a field error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HiddenText {
    /// A bidirectional control character.
    #[error(
        "must not contain bidirectional control characters (U+{0:04X}): they reorder the text shown around them"
    )]
    Bidi(u32),
    /// An invisible formatting character, or a joiner that joins nothing.
    #[error("must not contain invisible characters (U+{0:04X})")]
    Invisible(u32),
    /// A control character.
    #[error("must be plain text: no control characters (U+{0:04X})")]
    Control(u32),
}

/// Refuses text with characters that reorder or hide; see the module documentation.
pub fn check_visible(text: &str) -> Result<(), HiddenText> {
    let chars: Vec<char> = text.chars().collect();
    let mut in_flag_tags = false;
    for (i, &c) in chars.iter().enumerate() {
        let code = u32::from(c);
        if is_bidi_control(c) {
            return Err(HiddenText::Bidi(code));
        }
        if c.is_control() {
            if matches!(c, '\n' | '\r' | '\t') {
                continue;
            }
            return Err(HiddenText::Control(code));
        }
        match c {
            '\u{200C}' | '\u{200D}' => {
                let before = i.checked_sub(1).and_then(|j| chars.get(j));
                let after = chars.get(i + 1);
                if !before.is_some_and(|&b| joinable(b)) || !after.is_some_and(|&a| joinable(a)) {
                    return Err(HiddenText::Invisible(code));
                }
            }
            '\u{1F3F4}' => in_flag_tags = true,
            '\u{E0020}'..='\u{E007E}' if in_flag_tags => {}
            '\u{E007F}' if in_flag_tags => in_flag_tags = false,
            _ if is_invisible(c) => return Err(HiddenText::Invisible(code)),
            _ => in_flag_tags = false,
        }
    }
    Ok(())
}

fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// A character a joiner may stand beside: something visible.
fn joinable(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !is_bidi_control(c) && !is_invisible(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_refused() {
        for c in [
            '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}',
        ] {
            let text = format!("invoice{c}gnp.exe");
            assert_eq!(
                check_visible(&text),
                Err(HiddenText::Bidi(u32::from(c))),
                "{c:?}"
            );
        }
    }

    #[test]
    fn invisible_characters_are_refused() {
        for c in [
            '\u{200B}',
            '\u{2060}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{3164}',
            '\u{E0041}',
        ] {
            let text = format!("ad{c}min");
            assert_eq!(
                check_visible(&text),
                Err(HiddenText::Invisible(u32::from(c))),
                "{c:?}"
            );
        }
        assert_eq!(
            check_visible("\u{3164}"),
            Err(HiddenText::Invisible(0x3164))
        );
    }

    #[test]
    fn joiners_must_join_visible_characters() {
        // Emoji ZWJ sequences: woman technologist, a family.
        assert_eq!(check_visible("👩\u{200D}💻 on call"), Ok(()));
        assert_eq!(check_visible("👨\u{200D}👩\u{200D}👧"), Ok(()));
        // Persian "mi-khaham" with a non-joiner, Malayalam with a joiner.
        assert_eq!(check_visible("می\u{200C}خواهم"), Ok(()));
        assert_eq!(check_visible("ന്\u{200D}റ"), Ok(()));
        for text in [
            "\u{200D}admin",
            "admin\u{200C}",
            "ad \u{200D}min",
            "ad\u{200D}\u{200D}min",
            "ad\u{200B}\u{200D}min",
        ] {
            assert!(
                matches!(check_visible(text), Err(HiddenText::Invisible(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn flag_tag_sequences_are_allowed_and_stray_tags_are_not() {
        let england = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}";
        assert_eq!(check_visible(&format!("Go {england}!")), Ok(()));
        assert!(check_visible("hi\u{E0067}\u{E007F}").is_err());
        // After the cancel tag, tags are stray again.
        assert!(check_visible(&format!("{england}\u{E0067}")).is_err());
    }

    #[test]
    fn newlines_and_tabs_are_the_only_controls() {
        assert_eq!(check_visible("one\r\ntwo\tthree"), Ok(()));
        assert_eq!(check_visible("bell\u{7}"), Err(HiddenText::Control(0x07)));
        assert_eq!(check_visible("C1\u{85}"), Err(HiddenText::Control(0x85)));
    }

    #[test]
    fn ordinary_text_passes() {
        for text in [
            "Plain words, punctuation; numbers 1,234.",
            "हिन्दी समाचार",
            "مرحبا بالعالم",
            "日本語のニュース",
            "Crème brûlée 🍮👍🏽",
        ] {
            assert_eq!(check_visible(text), Ok(()), "{text}");
        }
    }
}
