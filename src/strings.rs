//! UTF-8 strings, binary data, and topic names: u16 length, then the bytes.

use crate::Res;
use crate::error::{Error, Field};
use crate::numbers;

/// Binary Data: raw bytes, never required to be UTF-8.
#[inline]
pub(crate) fn binary(input: &[u8], field: Field) -> Res<'_, &[u8]> {
    let (rest, len) = numbers::u16(input, field)?;
    numbers::take(rest, usize::from(len), field)
}

/// A UTF-8 string: well-formed [MQTT-1.5.4-1], free of U+0000 [MQTT-1.5.4-2], and kept
/// whole, a leading U+FEFF included [MQTT-1.5.4-3].
#[inline]
pub(crate) fn utf8(input: &[u8], field: Field) -> Res<'_, &str> {
    let (rest, bytes) = binary(input, field)?;
    let text = core::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { field })?;
    check_no_null(text, field)?;
    Ok((rest, text))
}

/// The U+0000 rule, for text that is already well-formed.
#[inline]
pub(crate) fn check_no_null(text: &str, field: Field) -> Result<(), Error> {
    if text.as_bytes().contains(&0) {
        return Err(Error::NullCharacter { field });
    }
    Ok(())
}

/// A topic name, as the will topic and the Response Topic must be: at least one character
/// [MQTT-4.7.3-1] and no wildcard [MQTT-3.3.2-2].
pub(crate) fn check_topic(topic: &str, field: Field) -> Result<(), Error> {
    if topic.is_empty() {
        return Err(Error::EmptyTopic { field });
    }
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(Error::WildcardInTopic { field });
    }
    Ok(())
}
