//! Fixed-width big-endian integers and byte runs, read inside a complete frame.
//!
//! These were nom's `be_u8`/`be_u16`/`be_u32`/`take`. nom 8's `Input` impl for `&[u8]` leaves
//! `take_from` and `input_len` without `#[inline]`, so every field cost a call across crates
//! and a bounds check: core's `split_first_chunk` and `split_at_checked` do the same check
//! inline, and took 21% of the instructions off a minimal 3.1.1 decode and 16% off a full 5.0
//! one (callgrind, see the README's benchmarks).

use crate::Res;
use crate::error::{Error, Field};

/// `N` bytes from the front of `input`; a short read inside a complete frame is malformed,
/// never "need more".
#[inline]
fn chunk<const N: usize>(input: &[u8], field: Field) -> Res<'_, [u8; N]> {
    match input.split_first_chunk::<N>() {
        Some((bytes, rest)) => Ok((rest, *bytes)),
        None => Err(Error::Truncated { field }),
    }
}

#[inline]
pub(crate) fn u8(input: &[u8], field: Field) -> Res<'_, u8> {
    chunk::<1>(input, field).map(|(rest, [b])| (rest, b))
}

#[inline]
pub(crate) fn u16(input: &[u8], field: Field) -> Res<'_, u16> {
    chunk(input, field).map(|(rest, b)| (rest, u16::from_be_bytes(b)))
}

#[inline]
pub(crate) fn u32(input: &[u8], field: Field) -> Res<'_, u32> {
    chunk(input, field).map(|(rest, b)| (rest, u32::from_be_bytes(b)))
}

/// `len` bytes from the front of `input`.
#[inline]
pub(crate) fn take(input: &[u8], len: usize, field: Field) -> Res<'_, &[u8]> {
    match input.split_at_checked(len) {
        Some((taken, rest)) => Ok((rest, taken)),
        None => Err(Error::Truncated { field }),
    }
}
