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
#[inline(always)]
pub(crate) fn utf8(input: &[u8], field: Field) -> Res<'_, &str> {
    let (rest, bytes) = binary(input, field)?;
    let text = core::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { field })?;
    check_no_null(text, field)?;
    Ok((rest, text))
}

/// Two UTF-8 strings that stand side by side: a User Property's name and value, or the
/// client id and the user name (or will topic) after it.
///
/// When the second is shorter than 128 bytes its length prefix is two ASCII bytes, so first
/// string, prefix and second string validate as one run: one `from_utf8` call instead of two,
/// which is most of the cost of the short strings CONNECT holds. The prefix is a whole
/// character, so the run splits back on character boundaries. Only a failure, to name the
/// field at fault, looks at the two apart.
#[inline(always)]
pub(crate) fn two(input: &[u8], first: Field, second: Field) -> Res<'_, (&str, &str)> {
    let (rest, a) = binary(input, first)?;
    let (after, b) = binary(rest, second)?;
    let run = input.get(2..4 + a.len() + b.len()).filter(|_| b.len() < 0x80);
    let fused = run.and_then(|run| core::str::from_utf8(run).ok()).and_then(|text| {
        let (a, rest) = text.split_at_checked(a.len())?;
        Some((a, rest.get(2..)?))
    });
    let (a, b) = match fused {
        Some(pair) => pair,
        None => (
            core::str::from_utf8(a).map_err(|_| Error::InvalidUtf8 { field: first })?,
            core::str::from_utf8(b).map_err(|_| Error::InvalidUtf8 { field: second })?,
        ),
    };
    check_no_null(a, first)?;
    check_no_null(b, second)?;
    Ok((after, (a, b)))
}

/// The U+0000 rule, for text that is already well-formed.
#[inline(always)]
pub(crate) fn check_no_null(text: &str, field: Field) -> Result<(), Error> {
    if has_zero_byte(text.as_bytes()) {
        return Err(Error::NullCharacter { field });
    }
    Ok(())
}

/// Whether any byte is 0, with branch-free loops. Long strings take a vector minimum; short
/// ones, which CONNECT mostly holds, the classic test `(w - 0x01..) & !w & 0x80..` over words
/// that may overlap (a byte seen twice does no harm). Both beat `contains(&0)`, whose memchr
/// set-up dominates short strings.
#[inline(always)]
pub(crate) fn has_zero_byte(bytes: &[u8]) -> bool {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_in = |w: u64| w.wrapping_sub(LO) & !w & HI != 0;
    // Four bytes widened with 0xFF, which is never zero.
    let wide = |w: &[u8; 4]| u64::from(u32::from_ne_bytes(*w)) | (u64::MAX << 32);
    if bytes.len() >= 64 {
        return long_has_zero_byte(bytes);
    }
    if let Some(last) = bytes.last_chunk::<8>() {
        let (words, _) = bytes.as_chunks::<8>();
        let last = u64::from_ne_bytes(*last);
        return words.iter().fold(zero_in(last), |found, w| found | zero_in(u64::from_ne_bytes(*w)));
    }
    match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(first), Some(last)) => zero_in(wide(first)) | zero_in(wide(last)),
        _ => bytes.iter().fold(false, |found, &b| found | (b == 0)),
    }
}

/// The minimum over 64-byte rows into 64 lanes, which the optimiser keeps in four vector
/// registers: twice the bytes per loop of a plain `fold`. Kept apart so that the short
/// strings' test stays small enough to inline.
#[inline(never)]
fn long_has_zero_byte(bytes: &[u8]) -> bool {
    let (rows, tail) = bytes.as_chunks::<64>();
    let lanes = rows.iter().fold([u8::MAX; 64], |mut lanes, row| {
        for (lane, &b) in lanes.iter_mut().zip(row) {
            *lane = (*lane).min(b);
        }
        lanes
    });
    lanes.iter().chain(tail).fold(u8::MAX, |min, &b| min.min(b)) == 0
}

/// How many bytes are 0, eight at a time: each word turns into a 1 in every byte lane that
/// was 0, and the lanes add up for up to 255 words before they are summed.
pub(crate) fn count_zero_bytes(bytes: &[u8]) -> usize {
    const LOW7: u64 = u64::from_ne_bytes([0x7F; 8]);
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const EVEN: u64 = 0x00FF_00FF_00FF_00FF;
    // Bit 7 of a lane is set when any bit of it is; no carry crosses lanes.
    let zero_lanes = |w: u64| !((((w & LOW7) + LOW7) | w) >> 7) & ONES;
    let (words, tail) = bytes.as_chunks::<8>();
    let mut count = tail.iter().filter(|&&b| b == 0).count();
    for block in words.chunks(255) {
        let lanes = block.iter().fold(0, |sum, w| sum + zero_lanes(u64::from_ne_bytes(*w)));
        let pairs = (lanes & EVEN) + ((lanes >> 8) & EVEN);
        count += (pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48) as usize;
    }
    count
}

/// A topic name, as the will topic and the Response Topic must be: at least one character
/// [MQTT-4.7.3-1] and no wildcard [MQTT-3.3.2-2].
#[inline(always)]
pub(crate) fn check_topic(topic: &str, field: Field) -> Result<(), Error> {
    if topic.is_empty() {
        return Err(Error::EmptyTopic { field });
    }
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(Error::WildcardInTopic { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_byte_found_at_every_position_of_every_length() {
        for len in 0..150 {
            let clean = [b'a'; 150];
            assert!(!has_zero_byte(&clean[..len]), "len {len}");
            for at in 0..len {
                let mut bytes = clean;
                bytes[at] = 0;
                assert!(has_zero_byte(&bytes[..len]), "len {len}, zero at {at}");
            }
        }
        // Bytes with the high bit set never pass for zero.
        assert!(!has_zero_byte(&[0x80, 0xff, 0x01, 0x80, 0x7f, 0x81, 0xc0, 0x80, 0x01]));
    }

    #[test]
    fn zero_bytes_counted_across_rows_and_blocks() {
        let mut bytes = [b'a'; 70_000];
        for at in (0..bytes.len()).step_by(7) {
            bytes[at] = 0;
        }
        for len in [0usize, 1, 15, 16, 17, 255 * 16, 255 * 16 + 1, 70_000] {
            assert_eq!(count_zero_bytes(&bytes[..len]), len.div_ceil(7), "len {len}");
            assert_eq!(count_zero_bytes(&[0; 70_000][..len]), len);
        }
    }

    fn wire_pair(name: &[u8], value: &[u8]) -> [u8; 512] {
        let mut out = [0u8; 512];
        let mut at = 0;
        for part in [name, value] {
            out[at..at + 2].copy_from_slice(&(part.len() as u16).to_be_bytes());
            out[at + 2..at + 2 + part.len()].copy_from_slice(part);
            at += 2 + part.len();
        }
        out
    }

    const A: Field = Field::ClientId;
    const B: Field = Field::Username;

    #[test]
    fn two_strings_read_alike_short_or_long() {
        let long = [b'v'; 200];
        for value in [&b""[..], b"v", &long[..127], &long[..128], &long[..]] {
            let bytes = wire_pair("né".as_bytes(), value);
            let (_, (n, v)) = two(&bytes, A, B).unwrap();
            assert_eq!((n, v.as_bytes()), ("né", value));
        }
    }

    #[test]
    fn two_strings_name_the_one_at_fault() {
        let two = |a: &[u8], b: &[u8]| two(&wire_pair(a, b), A, B).map(|_| ());
        // A first string cut inside a character: the ASCII prefix after it must not pass it.
        assert_eq!(two(&[0xe2, 0x82], b"x"), Err(Error::InvalidUtf8 { field: A }));
        assert_eq!(two(b"k", &[0xc3]), Err(Error::InvalidUtf8 { field: B }));
        assert_eq!(two(b"k", &[0xc3; 130]), Err(Error::InvalidUtf8 { field: B }));
        assert_eq!(two(b"k\0", b"x"), Err(Error::NullCharacter { field: A }));
        assert_eq!(two(b"k", b"\0"), Err(Error::NullCharacter { field: B }));
    }
}
