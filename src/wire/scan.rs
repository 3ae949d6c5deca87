//! Scan kernels: whole-string questions asked of every string a CONNECT holds, answered
//! without a branch per byte. Each kernel has its plain scalar version beside it, which the
//! tests compare it with on every length and position.

/// Whether any byte is 0: the U+0000 check on text that is already well-formed UTF-8, where
/// a 0 byte is exactly U+0000. Long strings take a vector minimum; short ones, which CONNECT
/// mostly holds, the word test in [`zero_in`] over words that may overlap (a byte seen twice
/// does no harm). Both beat `contains(&0)`, whose memchr set-up dominates short strings.
#[inline(always)] // called once per string on the decode path; a call would cost more than its body
pub(crate) fn has_zero_byte(bytes: &[u8]) -> bool {
    // Four bytes widened with 0xFF, which is never zero, to make a word of a short string.
    let wide = |w: &[u8; 4]| u64::from(u32::from_ne_bytes(*w)) | (u64::MAX << 32);
    if bytes.len() >= 64 {
        return long_has_zero_byte(bytes);
    }
    if let Some(last) = bytes.last_chunk::<8>() {
        let (words, _) = bytes.as_chunks::<8>();
        let last = u64::from_ne_bytes(*last);
        // `|` not `||`: no branch per word; the words are few.
        return words.iter().fold(zero_in(last), |found, w| found | zero_in(u64::from_ne_bytes(*w)));
    }
    match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(first), Some(last)) => zero_in(wide(first)) | zero_in(wide(last)),
        _ => bytes.iter().fold(false, |found, &b| found | (b == 0)),
    }
}

/// Whether a word has a zero byte: `w - 0x0101..` borrows through bit 7 of a lane only when
/// the lane was 0 (or borrowed into), and `& !w` drops lanes whose own bit 7 was set, so the
/// lowest zero lane always shows and no non-zero word ever does (the classic test from
/// "Bit Twiddling Hacks").
#[inline(always)] // a three-instruction body inside the kernel's loop
const fn zero_in(w: u64) -> bool {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    w.wrapping_sub(LO) & !w & HI != 0
}

#[cfg(test)]
fn has_zero_byte_scalar(bytes: &[u8]) -> bool {
    bytes.contains(&0)
}

/// The minimum over 64-byte rows into 64 lanes, which the optimiser keeps in four vector
/// registers: twice the bytes per loop of a plain `fold`.
#[inline(never)] // kept apart so that the short strings' test stays small enough to inline
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
/// was 0, and the lanes add up for up to 255 words (a lane holds at most 255) before they
/// are summed. Used on the User Properties span, whose length prefixes hold a known number
/// of zero bytes, so that any other zero is a U+0000 in a string.
pub(crate) fn count_zero_bytes(bytes: &[u8]) -> usize {
    const LOW7: u64 = u64::from_ne_bytes([0x7F; 8]);
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const EVEN: u64 = 0x00FF_00FF_00FF_00FF;
    // `(w & 0x7F..) + 0x7F..` sets bit 7 of a lane when its low 7 bits are not all 0, and
    // `| w` when its own bit 7 is; no carry crosses lanes. Inverted, bit 7 marks a zero lane.
    let zero_lanes = |w: u64| !((((w & LOW7) + LOW7) | w) >> 7) & ONES;
    let (words, tail) = bytes.as_chunks::<8>();
    let mut count = tail.iter().filter(|&&b| b == 0).count();
    for block in words.chunks(255) {
        let lanes = block.iter().fold(0, |sum, w| sum + zero_lanes(u64::from_ne_bytes(*w)));
        // Pairs of lanes into four 16-bit sums of at most 510, which cannot overflow.
        let pairs = (lanes & EVEN) + ((lanes >> 8) & EVEN);
        // The horizontal sum: multiplying by 0x0001_0001_0001_0001 adds every 16-bit sum
        // into the top 16 bits (at most 2,040, so no carry out), which the shift reads.
        count += (pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48) as usize;
    }
    count
}

#[cfg(test)]
fn count_zero_bytes_scalar(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == 0).count()
}

/// Whether well-formed text holds a control character, U+0001..U+001F or U+007F..U+009F:
/// a byte below 0x20 or 0x7F, or 0xC2 followed by 0x80..0x9F (the UTF-8 of U+0080..U+009F).
/// Scalar only: it runs when a caller opts in, off the default path.
pub(crate) fn has_control_character(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .zip(bytes.get(1..).unwrap_or_default().iter().chain([&0]))
        .any(|(&b, &next)| (1..0x20).contains(&b) || b == 0x7F || (b == 0xC2 && (0x80..0xA0).contains(&next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_byte_kernel_agrees_with_scalar_at_every_position_of_every_length() {
        for len in 0..150 {
            let clean = [b'a'; 150];
            assert!(!has_zero_byte(&clean[..len]), "len {len}");
            assert!(!has_zero_byte_scalar(&clean[..len]));
            for at in 0..len {
                let mut bytes = clean;
                bytes[at] = 0;
                assert!(has_zero_byte(&bytes[..len]), "len {len}, zero at {at}");
                assert!(has_zero_byte_scalar(&bytes[..len]));
            }
        }
        // Bytes with the high bit set, or 1, never pass for zero.
        let tricky = [0x80, 0xff, 0x01, 0x80, 0x7f, 0x81, 0xc0, 0x80, 0x01];
        assert_eq!(has_zero_byte(&tricky), has_zero_byte_scalar(&tricky));
        for b in 1..=255u8 {
            for len in [1, 5, 9, 70] {
                assert!(!has_zero_byte(&[b; 70][..len]), "byte {b:#x}");
            }
        }
    }

    #[test]
    fn zero_count_kernel_agrees_with_scalar_across_rows_and_blocks() {
        let mut bytes = [b'a'; 70_000];
        for at in (0..bytes.len()).step_by(7) {
            bytes[at] = 0;
        }
        for (at, b) in bytes.iter_mut().enumerate().skip(3).step_by(11) {
            *b = (at % 256) as u8;
        }
        for len in [0usize, 1, 15, 16, 17, 255 * 8, 255 * 8 + 1, 255 * 16 + 9, 70_000] {
            assert_eq!(count_zero_bytes(&bytes[..len]), count_zero_bytes_scalar(&bytes[..len]), "len {len}");
            assert_eq!(count_zero_bytes(&[0; 70_000][..len]), len);
        }
    }

    #[test]
    fn control_characters_are_c0_del_and_c1() {
        for c in (1..0x20).chain(0x7F..0xA0).filter_map(char::from_u32) {
            let mut buf = [b'a'; 4];
            let len = c.encode_utf8(&mut buf[1..]).len();
            assert!(has_control_character(core::str::from_utf8(&buf[1..1 + len]).unwrap()), "{c:?}");
            assert!(has_control_character(core::str::from_utf8(&buf[..2 + len]).unwrap()), "{c:?} inside");
        }
        for text in ["", "plain", "é ü", "\u{a0}", "\u{100}", "\u{2028}", "€"] {
            assert!(!has_control_character(text), "{text:?}");
        }
    }
}
