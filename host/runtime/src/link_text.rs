//! Text a link controls, made safe to write into a log line or a DLQ reason:
//! bounded in length and with every control character escaped, so a link can
//! neither flood the log through one message nor forge a line (`\n`, `\r`) or
//! rewrite the terminal (ANSI escapes) in the text log format.
//!
//! Link log messages, refusal and trap messages, panic reports and the values
//! of host warnings that came from a link (a secret name, a URL's host) all go
//! through here before anything writes them.

use std::fmt::{self, Write as _};

/// Longest piece of link-supplied text kept in one log line or failure reason,
/// in bytes (before the marker saying how much was cut).
pub(crate) const MAX_TEXT_BYTES: usize = 4 * 1024;

/// Longest link-supplied value of a host warning's field, in bytes.
pub(crate) const MAX_FIELD_BYTES: usize = 256;

/// `text` with control characters escaped, cut to at most `max` bytes at a
/// character boundary; a cut ends in `…[N more bytes]`. `cut_before` counts
/// bytes the caller already removed from the end, so the marker stays true.
pub(crate) fn bounded(text: &str, max: usize, cut_before: usize) -> String {
    let (mut out, kept) = escaped(text, max);
    let cut = text.len() - kept + cut_before;
    if cut > 0 {
        let _ = write!(out, "…[{cut} more bytes]");
    }
    out
}

/// `text` escaped up to `max` bytes of output, and how many bytes of `text`
/// that took.
fn escaped(text: &str, max: usize) -> (String, usize) {
    let mut out = String::with_capacity(text.len().min(max) + 24);
    let mut kept = 0;
    for c in text.chars() {
        let before = out.len();
        push_escaped(&mut out, c);
        if out.len() > max {
            out.truncate(before);
            break;
        }
        kept += c.len_utf8();
    }
    (out, kept)
}

/// The longest prefix of `text` of at most `max` bytes ending at a character
/// boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// A host warning's field value: `value` formatted (never more than `max`
/// bytes of it), then escaped and bounded; a cut ends in `…[cut]`.
pub(crate) fn field(value: &(impl fmt::Display + ?Sized), max: usize) -> String {
    let mut writer = Capped { text: String::new(), max, more: false };
    let _ = write!(writer, "{value}");
    let (mut out, kept) = escaped(&writer.text, max);
    if writer.more || kept < writer.text.len() {
        out.push_str("…[cut]");
    }
    out
}

/// A formatter target that stops taking text past `max` bytes.
struct Capped {
    text: String,
    max: usize,
    more: bool,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.max - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        self.text.push_str(prefix(s, room));
        self.more = true;
        Err(fmt::Error)
    }
}

/// Whether `c` must not reach a log line as it is: C0 and C1 controls, DEL, the
/// Unicode line and paragraph separators, and the bidirectional overrides that
/// can make a line read differently from what it holds.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_so_no_line_can_be_forged() {
        let forged = "ok\n2025-01-01T00:00:00Z  INFO conserver: admin logged in\r\x1b[2J\u{7f}\u{85}\u{2028}\u{202e}";
        let text = bounded(forged, MAX_TEXT_BYTES, 0);
        assert_eq!(
            text,
            "ok\\n2025-01-01T00:00:00Z  INFO conserver: admin logged in\\r\\u{1b}[2J\\u{7f}\\u{85}\\u{2028}\\u{202e}"
        );
        assert!(!text.chars().any(needs_escape), "{text:?}");
        assert_eq!(bounded("tab\there, ünïcode kept", 100, 0), "tab\\there, ünïcode kept");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_with_a_marker() {
        let long = "é".repeat(10_000); // 20 000 bytes
        let text = bounded(&long, 101, 0);
        assert!(text.starts_with(&"é".repeat(50)), "{text}");
        assert!(text.ends_with("…[19900 more bytes]"), "{text}");
        // Escapes count toward the bound too.
        let newlines = "\n".repeat(1_000);
        assert_eq!(bounded(&newlines, 10, 0), format!("{}…[995 more bytes]", "\\n".repeat(5)));
        // Bytes the caller removed first are reported as cut.
        assert_eq!(bounded("abc", 10, 7), "abc…[7 more bytes]");
        assert_eq!(prefix("aé", 2), "a");
    }

    #[test]
    fn field_values_are_formatted_only_up_to_their_bound() {
        struct Huge;
        impl fmt::Display for Huge {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for _ in 0..1_000_000 {
                    f.write_str("0123456789")?;
                }
                Ok(())
            }
        }
        let text = field(&Huge, 16);
        assert_eq!(text, "0123456789012345…[cut]");
        assert_eq!(field("NOT\nGRANTED", MAX_FIELD_BYTES), "NOT\\nGRANTED");
    }
}
