//! Variable Byte Integers: 7 bits a byte, least significant group first, at most 4 bytes.

use super::Writer;
use crate::error::{Error, Field};

/// The largest value 4 bytes can hold, 268,435,455.
pub(crate) const MAX: u32 = 0x0FFF_FFFF;

/// A decoded integer and how it was written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Vbi {
    pub(crate) value: u32,
    /// Bytes taken, 1 to 4.
    pub(crate) len: usize,
    /// Written in the fewest bytes, which 5.0 requires [MQTT-1.5.5-1]; the rule is applied
    /// one layer up.
    pub(crate) minimal: bool,
}

/// Reads an integer from the front of `input`, which may be a partial packet; `None` when
/// `input` ends inside it.
#[inline]
pub(crate) fn parse(input: &[u8], field: Field) -> Result<Option<Vbi>, Error> {
    let mut value = 0u32;
    for (i, &byte) in input.iter().take(4).enumerate() {
        // The low 7 bits carry the value, least significant group first.
        value |= u32::from(byte & 0x7F) << (7 * i);
        // Bit 7 clear: no byte follows.
        if byte & 0x80 == 0 {
            let len = i + 1;
            // A last byte of 0 after others added nothing: a shorter form existed.
            let minimal = len == 1 || byte != 0;
            return Ok(Some(Vbi { value, len, minimal }));
        }
    }
    if input.len() >= 4 { Err(Error::VbiTooLong { field }) } else { Ok(None) }
}

/// How many bytes `value` takes; values over [`MAX`] are the caller's to refuse.
#[inline]
pub(crate) const fn len(value: u32) -> usize {
    match value {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        0x4000..=0x1F_FFFF => 3,
        _ => 4,
    }
}

/// Writes `value`, which the caller has checked is at most [`MAX`], in its shortest form.
pub(crate) fn write(w: &mut Writer<'_>, mut value: u32) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            w.u8(byte);
            return;
        }
        // Bit 7 set: another byte follows.
        w.u8(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_integers_read_back_minimal() {
        for value in [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX] {
            let mut buf = [0u8; 4];
            let n = len(value);
            let mut w = Writer::new(&mut buf[..n]);
            write(&mut w, value);
            assert_eq!(w.finish(), Ok(n));
            let vbi = parse(&buf[..n], Field::RemainingLength).unwrap().unwrap();
            assert_eq!((vbi.value, vbi.len, vbi.minimal), (value, n, true));
        }
        assert!(!parse(&[0x80, 0x00], Field::RemainingLength).unwrap().unwrap().minimal);
        assert!(parse(&[0x80, 0x80], Field::RemainingLength).unwrap().is_none());
    }
}
