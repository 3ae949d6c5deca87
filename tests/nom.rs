//! The nom parser inside a larger nom parser: a CONNECT, then SUBSCRIBE and PINGREQ, in one
//! buffer; `Incomplete` with nom's exact `Needed`; errors carrying this crate's `Error`.
#![cfg(feature = "nom")]

use std::num::NonZeroUsize;

use mqtt_connect::nom::branch::alt;
use mqtt_connect::nom::bytes::streaming::take;
use mqtt_connect::nom::combinator::map;
use mqtt_connect::nom::number::streaming::be_u8;
use mqtt_connect::nom::{Err, IResult, Needed, ParseError, Parser};
use mqtt_connect::{Connect, Decoder, Error, Protocol, Status};

type Res<'a, T> = IResult<&'a [u8], T, ParseError<&'a [u8]>>;

/// A packet of the session, as the analyser sees it; a test keeps the CONNECT inline.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
enum Packet<'a> {
    Connect(Connect<'a>),
    /// Any other: its type nibble and its body.
    Other(u8, &'a [u8]),
}

/// A Variable Byte Integer, streaming.
fn vbi(mut input: &[u8]) -> Res<'_, usize> {
    let mut value = 0usize;
    for shift in [0, 7, 14, 21] {
        let (rest, byte) = be_u8(input)?;
        input = rest;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((input, value));
        }
    }
    Err(Err::Failure(mqtt_connect::nom::error::ParseError::from_error_kind(
        input,
        mqtt_connect::nom::error::ErrorKind::TooLarge,
    )))
}

fn other(input: &[u8]) -> Res<'_, Packet<'_>> {
    let (input, first) = be_u8(input)?;
    let (input, len) = vbi(input)?;
    let (input, body) = take(len).parse(input)?;
    Ok((input, Packet::Other(first >> 4, body)))
}

fn packet(input: &[u8]) -> Res<'_, Packet<'_>> {
    alt((map(mqtt_connect::nom::connect, Packet::Connect), other)).parse(input)
}

fn connect_bytes() -> Vec<u8> {
    let mut connect = Connect::new(Protocol::V5, "analyser");
    connect.username = Some("u");
    let mut buf = vec![0; connect.encoded_len().unwrap()];
    connect.encode(&mut buf).unwrap();
    buf
}

const SUBSCRIBE: &[u8] = b"\x82\x0a\x00\x01\x00\x00\x04a/b/\x00"; // 5.0, id 1, "a/b/" QoS 0
const PINGREQ: &[u8] = b"\xc0\x00";

#[test]
fn a_connect_then_other_packets_in_one_buffer() {
    let connect = connect_bytes();
    let stream = [&connect[..], SUBSCRIBE, PINGREQ].concat();
    let (rest, packets) = (packet, packet, packet).parse(&stream[..]).unwrap();
    assert!(rest.is_empty());
    let Ok(Status::Complete { packet: expected, .. }) = mqtt_connect::decode(&connect) else { panic!() };
    assert_eq!(
        packets,
        (Packet::Connect(expected), Packet::Other(8, &SUBSCRIBE[2..]), Packet::Other(12, &[][..]))
    );
}

#[test]
fn incomplete_maps_to_nom_needed_exactly() {
    let connect = connect_bytes();
    let parser = mqtt_connect::nom::connect::<ParseError<&[u8]>>;
    assert_eq!(parser(&connect[..1]), Err(Err::Incomplete(Needed::Unknown)));
    for cut in 2..connect.len() {
        let want = NonZeroUsize::new(connect.len() - cut).unwrap();
        assert_eq!(parser(&connect[..cut]), Err(Err::Incomplete(Needed::Size(want))), "cut {cut}");
    }
    // Inside the larger parser too.
    let stream = [&connect[..], &PINGREQ[..1]].concat();
    let result = (packet, packet).parse(&stream[..]);
    assert_eq!(result.map(|_| ()), Err(Err::Incomplete(Needed::Size(NonZeroUsize::new(1).unwrap()))));
}

#[test]
fn a_bad_connect_fails_with_the_crates_error_and_stops_alt() {
    // 5.0 with the reserved flag set: alt must not hand it to `other`.
    let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
    assert_eq!(packet(bad), Err(Err::Failure(ParseError::Connect(Error::ReservedFlag))));
    // The answer a broker sends is still one call away.
    let Err(Err::Failure(ParseError::Connect(e))) = packet(bad) else { panic!() };
    assert_eq!(e.connack(bad).unwrap().as_bytes(), [0x20, 0x03, 0x00, 0x81, 0x00]);
}

#[test]
fn a_packet_that_is_not_a_connect_is_a_recoverable_error() {
    let result = mqtt_connect::nom::connect::<ParseError<&[u8]>>(PINGREQ);
    assert_eq!(result, Err(Err::Error(ParseError::Connect(Error::NotConnect { byte: 0xc0 }))));
}

#[test]
fn nom_s_own_error_type_works_too() {
    let connect = connect_bytes();
    let (rest, parsed) =
        mqtt_connect::nom::connect::<mqtt_connect::nom::error::Error<&[u8]>>(&connect).unwrap();
    assert!(rest.is_empty());
    assert_eq!(parsed.client_id, "analyser");
}

#[test]
fn the_decoders_options_apply() {
    let connect = connect_bytes();
    let mut parser = mqtt_connect::nom::connect_with::<ParseError<&[u8]>>(Decoder::new().max_packet_size(8));
    assert!(matches!(parser(&connect), Err(Err::Failure(ParseError::Connect(Error::PacketTooLarge { .. })))));
}

/// An analyser counts the faults it meets by kind, in a map keyed by the error: the error is a
/// small plain value, `Hash` as well as `Eq`, `Send + Sync`, and an `Error` that displays.
#[test]
fn the_errors_are_plain_values_to_count_and_send() {
    use std::{error, fmt, hash::Hash};
    fn assert_traits<T: Copy + Eq + Hash + fmt::Debug + fmt::Display + error::Error + Send + Sync>() {}
    assert_traits::<Error>();
    assert_traits::<ParseError<&'static [u8]>>();

    let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
    let mut seen = std::collections::HashMap::<ParseError<&[u8]>, usize>::new();
    for input in [&bad[..], &bad[..], PINGREQ] {
        if let Err(Err::Error(e) | Err::Failure(e)) = packet(input) {
            *seen.entry(e).or_default() += 1;
        }
    }
    assert_eq!(seen.get(&ParseError::Connect(Error::ReservedFlag)), Some(&2));
    assert_eq!(seen.len(), 1, "the PINGREQ parses as another packet");
}

/// An analyser's own parsers take `ParseError` as they take nom's error type: `map_res` over
/// a function with an error of its own (here UTF-8's), and `context`.
#[test]
fn parse_error_serves_map_res_and_context() {
    use mqtt_connect::nom::combinator::map_res;
    use mqtt_connect::nom::error::{ErrorKind, context};
    use mqtt_connect::nom::number::streaming::be_u16;

    fn topic(input: &[u8]) -> Res<'_, &str> {
        let (input, len) = be_u16(input)?;
        context("topic", map_res(take(len), core::str::from_utf8)).parse(input)
    }
    assert_eq!(topic(b"\x00\x03a/bc"), Ok((&b"c"[..], "a/b")));
    assert_eq!(
        topic(b"\x00\x01\xff"),
        Err(Err::Error(ParseError::Nom { input: &b"\xff"[..], kind: ErrorKind::MapRes }))
    );
    // The CONNECT's own fault still comes through whole.
    let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
    let result = context("connect", mqtt_connect::nom::connect).parse(&bad[..]);
    assert_eq!(result.map(|_| ()), Err(Err::Failure(ParseError::Connect(Error::ReservedFlag))));
}

/// An analyser logs a failed parse in words: the CONNECT's fault as this crate says it, another
/// parser's by its kind.
#[test]
fn a_parse_error_displays_the_connect_fault_or_the_nom_parser() {
    use mqtt_connect::nom::error::ErrorKind;

    let connect = ParseError::<&[u8]>::Connect(Error::ReservedFlag);
    assert_eq!(connect.to_string(), Error::ReservedFlag.to_string());
    assert_eq!(connect.to_string(), "Connect Flags: reserved bit is set");
    let nom = ParseError::Nom { input: &b"\xff"[..], kind: ErrorKind::MapRes };
    assert_eq!(nom.to_string(), "nom parser MapRes failed");
}
