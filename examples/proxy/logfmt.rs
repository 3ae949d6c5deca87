//! Client-supplied text made safe for a log line: every control character, quote and backslash
//! escaped, so that no client can forge a line or drive a terminal, and cut at a length with a
//! marker, so that no client can write a 64 KiB line. JSON lines escape the text themselves, so
//! there it is only cut.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Characters of a client-supplied field kept in a log line.
pub const MAX_CHARS: usize = 128;

/// Whether the lines are JSON, whose writer escapes what a client sends; set once, at start.
static JSON: AtomicBool = AtomicBool::new(false);

/// The lines are JSON: a field is cut, not escaped, so that a consumer reads the client's text
/// as sent (`a"b`, not `a\"b`).
pub fn leave_escaping_to_json() {
    JSON.store(true, Ordering::Relaxed);
}

/// `text` escaped and cut for a log line. Within the kept characters, `\n`, `\r`, `\t`, `\\` and
/// `"` are written as such, other control characters (ESC among them) and Unicode format
/// characters that reorder text as `\u{..}`; past them, `…(+N bytes)` says how much was cut.
/// In JSON lines, the kept characters are as sent.
pub fn field(text: &str) -> String {
    let escape = !JSON.load(Ordering::Relaxed);
    let mut out = String::with_capacity(text.len().min(MAX_CHARS) + 16);
    for (kept, (at, c)) in text.char_indices().enumerate() {
        if kept == MAX_CHARS {
            // Writing to a String cannot fail.
            let _ = write!(out, "…(+{} bytes)", text.len() - at);
            break;
        }
        match c {
            c if !escape => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Unicode's explicit direction controls, which can make a line read other than it is
/// (CVE-2021-42574, "Trojan Source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}
