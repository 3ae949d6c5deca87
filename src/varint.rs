//! Variable Byte Integers: 7 bits a byte, least significant group first, at most 4 bytes.

use crate::error::{Error, Field};
use crate::{Res, encode::Writer};

/// The largest value 4 bytes can hold, 268,435,455.
pub(crate) const MAX: u32 = 0x0FFF_FFFF;

/// A decoded integer and how it was written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Vbi {
    pub(crate) value: u32,
    /// Bytes taken, 1 to 4.
    pub(crate) len: usize,
    /// Written in the fewest bytes, as 5.0 requires [MQTT-1.5.5-1].
    pub(crate) minimal: bool,
}

/// Reads an integer from the front of `input`; `None` when `input` ends inside it.
#[inline]
pub(crate) fn parse(input: &[u8], field: Field) -> Result<Option<Vbi>, Error> {
    let mut value = 0u32;
    for (i, &byte) in input.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let len = i + 1;
            let minimal = len == 1 || byte != 0;
            return Ok(Some(Vbi { value, len, minimal }));
        }
    }
    if input.len() >= 4 { Err(Error::VbiTooLong { field }) } else { Ok(None) }
}

/// Reads a 5.0 integer inside a complete frame: it must be there, and minimal.
#[inline]
pub(crate) fn parse_v5(input: &[u8], field: Field) -> Res<'_, u32> {
    let vbi = parse(input, field)?.ok_or(Error::Truncated { field })?;
    if !vbi.minimal {
        return Err(Error::VbiNotMinimal { field });
    }
    let rest = input.get(vbi.len..).unwrap_or_default();
    Ok((rest, vbi.value))
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
        w.u8(byte | 0x80);
    }
}
