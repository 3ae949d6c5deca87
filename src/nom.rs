//! nom 8 parsers for the CONNECT, for protocol analysers written with nom: this module is
//! nom itself (a re-export of the version this crate builds with, so that parsers combine
//! without version skew), plus [`connect`] and [`connect_with`].
//!
//! The decoding stays this crate's: nom only carries the outcome. `Incomplete` maps to nom's
//! `Err::Incomplete` with the exact [`Needed`]; a first byte that is not a
//! CONNECT to a recoverable `Err::Error`, so that `alt` tries the next parser; any other fault
//! to `Err::Failure`, carrying this crate's [`Error`] to any error type that takes it
//! (`FromExternalError`), such as [`ParseError`].
//!
//! ```
//! use mqtt_connect::nom::{IResult, Parser, bytes::streaming::take, number::streaming::be_u8};
//!
//! /// Any other packet, framed by its fixed header (Remaining Length under 128 here).
//! fn other(input: &[u8]) -> IResult<&[u8], (u8, &[u8]), mqtt_connect::nom::ParseError<&[u8]>> {
//!     let (input, (first, len)) = (be_u8, be_u8).parse(input)?;
//!     let (input, body) = take(len).parse(input)?;
//!     Ok((input, (first, body)))
//! }
//!
//! let stream = b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1\xc0\x00";
//! let (rest, (connect, ping)) = (mqtt_connect::nom::connect, other).parse(&stream[..])?;
//! assert_eq!(connect.client_id, "c1");
//! assert_eq!(ping, (0xc0, &b""[..]));
//! assert!(rest.is_empty());
//! # Ok::<(), mqtt_connect::nom::Err<mqtt_connect::nom::ParseError<&[u8]>>>(())
//! ```

pub use ::nom::*;

use ::nom::error::{ErrorKind, FromExternalError};
use core::any::Any;
use core::fmt;

use crate::decode::{Decoder, Status};
use crate::error::Error;
use crate::packet::Connect;

/// Parses the CONNECT at the front of `input` with the default [`Decoder`].
///
/// It streams: a CONNECT cut short is `Err::Incomplete`, as more may come. Where the input is
/// all there is (a capture, a reassembled segment), `complete` makes that an error:
///
/// ```
/// use mqtt_connect::nom::{Err, IResult, Needed, ParseError, Parser, combinator::complete, error::ErrorKind};
///
/// let cut = &b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c"[..];
/// let streaming: IResult<&[u8], _, ParseError<&[u8]>> = mqtt_connect::nom::connect(cut);
/// assert_eq!(streaming.unwrap_err(), Err::Incomplete(Needed::new(1)));
/// let whole: IResult<&[u8], _, ParseError<&[u8]>> = complete(mqtt_connect::nom::connect).parse(cut);
/// assert_eq!(whole.unwrap_err(), Err::Error(ParseError::Nom { input: cut, kind: ErrorKind::Complete }));
/// ```
pub fn connect<'a, E>(input: &'a [u8]) -> IResult<&'a [u8], Connect<'a>, E>
where
    E: error::ParseError<&'a [u8]> + FromExternalError<&'a [u8], Error>,
{
    parse(&Decoder::new(), input)
}

/// A parser for the CONNECT at the front of its input, decoding with `decoder`.
///
/// ```
/// use mqtt_connect::{Decoder, Error, nom::{Err, IResult, ParseError}};
///
/// let mut parser = mqtt_connect::nom::connect_with(Decoder::new().max_packet_size(16));
/// let result: IResult<&[u8], _, ParseError<&[u8]>> = parser(b"\x10\x7f");
/// assert_eq!(result.unwrap_err(), Err::Failure(ParseError::Connect(Error::PacketTooLarge { size: 129, limit: 16 })));
/// ```
pub fn connect_with<'a, E>(decoder: Decoder) -> impl FnMut(&'a [u8]) -> IResult<&'a [u8], Connect<'a>, E>
where
    E: error::ParseError<&'a [u8]> + FromExternalError<&'a [u8], Error>,
{
    move |input| parse(&decoder, input)
}

fn parse<'a, E>(decoder: &Decoder, input: &'a [u8]) -> IResult<&'a [u8], Connect<'a>, E>
where
    E: error::ParseError<&'a [u8]> + FromExternalError<&'a [u8], Error>,
{
    match decoder.decode(input) {
        Ok(Status::Complete { packet, len }) => Ok((input.get(len..).unwrap_or_default(), packet)),
        Ok(Status::Incomplete(crate::decode::Needed::Unknown)) => Err(Err::Incomplete(Needed::Unknown)),
        Ok(Status::Incomplete(crate::decode::Needed::Size(n))) => Err(Err::Incomplete(Needed::Size(n))),
        Err(e @ Error::NotConnect { .. }) => {
            Err(Err::Error(E::from_external_error(input, ErrorKind::Verify, e)))
        }
        Err(e) => Err(Err::Failure(E::from_external_error(input, ErrorKind::Verify, e))),
    }
}

/// A nom error that keeps this crate's [`Error`] when the CONNECT was at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError<I> {
    /// The CONNECT is invalid: why, and the reason code to answer with.
    Connect(Error),
    /// Another nom parser failed at `input`.
    Nom {
        /// Where.
        input: I,
        /// Which parser.
        kind: ErrorKind,
    },
}

impl<I> error::ParseError<I> for ParseError<I> {
    fn from_error_kind(input: I, kind: ErrorKind) -> Self {
        Self::Nom { input, kind }
    }

    /// Keeps the innermost error: the one that says what was wrong.
    fn append(_: I, _: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Keeps the innermost error, as [`append`](error::ParseError::append) does.
impl<I> error::ContextError<I> for ParseError<I> {}

/// This crate's [`Error`] as [`ParseError::Connect`]; any other (a `map_res` function's) as
/// [`ParseError::Nom`] at `input`, as nom's own error type keeps it. One impl for every error
/// type, since two would overlap: the `TypeId` tells this crate's apart.
impl<I, E: Any> FromExternalError<I, E> for ParseError<I> {
    fn from_external_error(input: I, kind: ErrorKind, e: E) -> Self {
        match (&e as &dyn Any).downcast_ref::<Error>() {
            Some(&e) => Self::Connect(e),
            None => Self::Nom { input, kind },
        }
    }
}

impl<I> fmt::Display for ParseError<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => e.fmt(f),
            Self::Nom { kind, .. } => write!(f, "nom parser {kind:?} failed"),
        }
    }
}

impl<I: fmt::Debug> core::error::Error for ParseError<I> {}
