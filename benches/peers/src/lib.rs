//! The two floors of the peer comparison: the least work that reads a CONNECT packet.
//!
//! Neither is a decoder. They show how close a full, validating decode comes to doing nothing
//! at all ([`skim_client_id`]) and to doing only the UTF-8 checks any validating decoder must
//! do ([`validating_floor`]). Both return `None` on anything they cannot read.

/// A cursor over the packet, with `None` for a field cut short.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<usize> {
        let b = self.take(2)?;
        Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// A Variable Byte Integer, without the 5.0 minimality rule.
    fn vbi(&mut self) -> Option<usize> {
        let mut value = 0;
        for shift in [0, 7, 14, 21] {
            let byte = self.u8()?;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn binary(&mut self) -> Option<&'a [u8]> {
        let len = self.u16()?;
        self.take(len)
    }

    fn utf8(&mut self) -> Option<&'a str> {
        core::str::from_utf8(self.binary()?).ok()
    }
}

/// Connect flags that announce payload fields.
const WILL: u8 = 0x04;
const PASSWORD: u8 = 0x40;
const USER_NAME: u8 = 0x80;

/// The skim: the client id's bytes, validating nothing, as APISIX's Lua reads them.
///
/// Skips the fixed header, the protocol name, level, flags and keep alive, and on level 5 the
/// property block, then reads the id.
pub fn skim_client_id(packet: &[u8]) -> Option<&[u8]> {
    let mut r = Reader { buf: packet };
    r.u8()?;
    r.vbi()?;
    r.binary()?;
    let level = r.u8()?;
    r.take(3)?;
    if level == 5 {
        let len = r.vbi()?;
        r.take(len)?;
    }
    r.binary()
}

/// The validating floor: locates every field the connect flags announce, runs
/// `core::str::from_utf8` on every UTF-8 field (property strings included), and returns the
/// client id. No other rule: no U+0000, flag, property or topic check.
pub fn validating_floor(packet: &[u8]) -> Option<&str> {
    let mut r = Reader { buf: packet };
    r.u8()?;
    let len = r.vbi()?;
    let mut r = Reader { buf: r.take(len)? };
    r.utf8()?;
    let level = r.u8()?;
    let flags = r.u8()?;
    r.u16()?;
    let v5 = level == 5;
    if v5 {
        properties(&mut r)?;
    }
    let client_id = r.utf8()?;
    if flags & WILL != 0 {
        if v5 {
            properties(&mut r)?;
        }
        r.utf8()?;
        r.binary()?;
    }
    if flags & USER_NAME != 0 {
        r.utf8()?;
    }
    if flags & PASSWORD != 0 {
        r.binary()?;
    }
    Some(client_id)
}

/// Walks a 5.0 property block (CONNECT or will), checking the UTF-8 of its strings.
///
/// Every CONNECT and will property identifier fits in one byte; the identifier says how long
/// the value is, so an unknown one ends the walk with `None`.
fn properties(r: &mut Reader<'_>) -> Option<()> {
    let len = r.vbi()?;
    let mut block = Reader { buf: r.take(len)? };
    while !block.buf.is_empty() {
        let read = match block.u8()? {
            0x01 | 0x17 | 0x19 => block.take(1).is_some(),
            0x21 | 0x22 => block.take(2).is_some(),
            0x02 | 0x11 | 0x18 | 0x27 => block.take(4).is_some(),
            0x03 | 0x08 | 0x15 => block.utf8().is_some(),
            0x09 | 0x16 => block.binary().is_some(),
            0x26 => block.utf8().is_some() && block.utf8().is_some(),
            _ => false,
        };
        if !read {
            return None;
        }
    }
    Some(())
}

/// What one fused pass would cost: the answer of `from_utf8` and a U+0000 scan together,
/// well-formed UTF-8 with no zero byte, as a `bool`.
///
/// ASCII, the common case, needs only the bitwise OR of all bytes (below 0x80) and their
/// minimum (above 0), which the optimiser computes 64 lanes at a time; other text falls back
/// to the two passes. The decoder cannot use it: under `#![forbid(unsafe_code)]` only
/// `from_utf8` makes a `&str`, so it would still have to run that afterwards. With
/// `from_utf8_unchecked` after it, this would be the whole cost of a string.
pub fn fused_utf8_no_null(bytes: &[u8]) -> bool {
    let (rows, tail) = bytes.as_chunks::<64>();
    let (or, min) = rows.iter().fold(([0u8; 64], [u8::MAX; 64]), |(mut or, mut min), row| {
        for ((or, min), &b) in or.iter_mut().zip(min.iter_mut()).zip(row) {
            *or |= b;
            *min = (*min).min(b);
        }
        (or, min)
    });
    let or = or.iter().chain(tail).fold(0, |acc, &b| acc | b);
    let min = min.iter().chain(tail).fold(u8::MAX, |acc, &b| acc.min(b));
    if or < 0x80 {
        return min != 0;
    }
    core::str::from_utf8(bytes).is_ok() && !bytes.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3.1.1, client id "c1", user name "bob" then a password "pwd".
    const PACKET: &[u8] = b"\x10\x18\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03bob\x00\x03pwd";

    #[test]
    fn both_floors_find_the_client_id() {
        assert_eq!(skim_client_id(PACKET), Some(&b"c1"[..]));
        assert_eq!(validating_floor(PACKET), Some("c1"));
    }

    #[test]
    fn only_the_validating_floor_checks_utf8() {
        let mut packet = PACKET.to_vec();
        packet[19] = 0xff;
        assert_eq!(skim_client_id(&packet), Some(&b"c1"[..]));
        assert_eq!(validating_floor(&packet), None);
    }

    #[test]
    fn the_fused_pass_answers_as_the_two_passes_do() {
        let mut long = [b'a'; 300];
        for text in [&b""[..], b"abc", &long, "é-€-😀".as_bytes(), b"a\0", &[0xff], &[0xc3], &[0xe2, 0x82]]
        {
            let two_passes = core::str::from_utf8(text).is_ok() && !text.contains(&0);
            assert_eq!(fused_utf8_no_null(text), two_passes, "{text:?}");
        }
        for at in [0, 63, 64, 200, 299] {
            long[at] = 0;
            assert!(!fused_utf8_no_null(&long));
            long[at] = 0x80;
            assert!(!fused_utf8_no_null(&long));
            long[at] = b'a';
        }
    }

    #[test]
    fn the_validating_floor_refuses_a_field_cut_short() {
        assert_eq!(validating_floor(&PACKET[..PACKET.len() - 1]), None);
    }
}
