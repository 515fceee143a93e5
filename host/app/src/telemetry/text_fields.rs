//! Field formatting for the text log format (`LOG_FORMAT=text`) that escapes
//! control characters in every field value and message, so no value can end
//! the line it is written in and forge another (`\n`, `\r`), or rewrite the
//! terminal. Strings recorded as `?` or plain fields are already escaped by
//! `Debug`; `%` fields and messages are written with `Display`, raw, unless
//! escaped here. JSON lines need none of this: serde escapes them.
//!
//! Links' own text is also bounded and escaped where the host receives it
//! (`conserver-runtime`); this is the second line of defence for every value,
//! whatever wrote it.

use std::fmt::{self, Write as _};

use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

/// `field=value` pairs separated by spaces (the message without its name), as
/// the default text format writes them, with control characters escaped.
pub(super) fn escaping() -> impl for<'writer> FormatFields<'writer> + Send + Sync + 'static {
    debug_fn(write_field).delimited(" ")
}

fn write_field(writer: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn fmt::Debug) -> fmt::Result {
    let name = field.name();
    if name != "message" {
        write!(writer, "{}=", name.strip_prefix("r#").unwrap_or(name))?;
    }
    write!(Escaping(writer), "{value:?}")
}

/// Writes through to `W`, escaping what must not reach a log line as it is.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let Some(c) = rest[at..].chars().next() else { break };
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// C0 and C1 controls, DEL, the Unicode line and paragraph separators and the
/// bidirectional overrides.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on purpose

    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn no_value_or_message_can_start_a_new_line() {
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::fmt().with_writer(buffer.clone()).with_ansi(false).fmt_fields(escaping()).finish();
        tracing::subscriber::with_default(subscriber, || {
            let forged = "x\n2026-01-01T00:00:00.000000Z  INFO conserver: forged\r\u{1b}[2J";
            tracing::warn!(link = %forged, secret = forged, count = 3, "message {forged}");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(!text.trim_end().contains(['\r', '\u{1b}']), "{text:?}");
        assert!(text.contains(r"message x\n2026-01-01T00:00:00.000000Z  INFO conserver: forged\r\u{1b}[2J"), "{text}");
        assert!(text.contains(r"link=x\n2026"), "{text}");
        assert!(text.contains(r#"secret="x\n2026"#), "{text}");
        assert!(text.contains("count=3"), "{text}");
    }
}
