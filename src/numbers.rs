//! Fixed-width big-endian integers, read inside a complete frame.

use nom::number::complete::{be_u8, be_u16, be_u32};

use crate::Res;
use crate::error::{Error, Field};

/// A short read inside a complete frame is malformed, never "need more".
#[inline]
fn truncated(field: Field) -> impl Fn(nom::Err<()>) -> Error {
    move |_| Error::Truncated { field }
}

#[inline]
pub(crate) fn u8(input: &[u8], field: Field) -> Res<'_, u8> {
    be_u8(input).map_err(truncated(field))
}

#[inline]
pub(crate) fn u16(input: &[u8], field: Field) -> Res<'_, u16> {
    be_u16(input).map_err(truncated(field))
}

#[inline]
pub(crate) fn u32(input: &[u8], field: Field) -> Res<'_, u32> {
    be_u32(input).map_err(truncated(field))
}

/// `len` bytes from the front of `input`.
#[inline]
pub(crate) fn take(input: &[u8], len: usize, field: Field) -> Res<'_, &[u8]> {
    nom::bytes::complete::take::<_, _, ()>(len)(input).map_err(truncated(field))
}
