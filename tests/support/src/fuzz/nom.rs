//! The `nom` target: the nom parser agrees with `decode` on every input.

use mqtt_connect::nom::{Err, Needed, ParseError};
use mqtt_connect::{Decoder, Error, Status};

/// Parses `data` with `nom::connect` and decodes it: the same packet and rest, nom's `Needed`
/// for `Incomplete`, a recoverable error for "not a CONNECT" and a failure for any other fault.
pub fn nom(data: &[u8]) {
    let parsed = mqtt_connect::nom::connect::<ParseError<&[u8]>>(data);
    match (Decoder::new().decode(data), parsed) {
        (Ok(Status::Complete { packet, len }), Ok((rest, got))) => {
            assert_eq!(got, packet);
            assert_eq!(rest, &data[len..]);
        }
        (Ok(Status::Incomplete(mqtt_connect::Needed::Unknown)), Err(Err::Incomplete(Needed::Unknown))) => {}
        (Ok(Status::Incomplete(mqtt_connect::Needed::Size(n))), Err(Err::Incomplete(Needed::Size(m)))) => {
            assert_eq!(n, m);
        }
        (Err(e @ Error::NotConnect { .. }), Err(Err::Error(ParseError::Connect(got)))) => assert_eq!(got, e),
        (Err(e), Err(Err::Failure(ParseError::Connect(got)))) => {
            assert!(!matches!(e, Error::NotConnect { .. }));
            assert_eq!(got, e);
        }
        (decoded, parsed) => panic!("decode gave {decoded:?}, nom {parsed:?}"),
    }
}
