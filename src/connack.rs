//! Answering a CONNECT: the CONNACK a server sends, in the client's own version; and the
//! whole CONNACK both ways, in [`packet`].

mod packet;

use crate::decode::{FixedHeader, protocol_in};
use crate::error::{Error, ReasonCode};
use crate::spec::Protocol;

/// A CONNACK packet, ready to write to the socket; no session present, no properties: the
/// answer to a refused CONNECT, made without a buffer. [`ConnackPacket`](crate::ConnackPacket)
/// is the whole CONNACK, with Session Present and properties, both ways.
///
/// ```
/// use mqtt_connect::{Protocol, ReasonCode};
///
/// let ack = Protocol::V5.connack(ReasonCode::ServerBusy).unwrap();
/// assert_eq!(ack.as_bytes(), [0x20, 0x03, 0x00, 0x89, 0x00]);
/// let ack = Protocol::V3_1_1.connack(ReasonCode::ServerBusy).unwrap();
/// assert_eq!(ack.as_bytes(), [0x20, 0x02, 0x00, 0x03]);
/// // 3.x has no code for a malformed packet: the server just closes.
/// assert!(Protocol::V3_1_1.connack(ReasonCode::MalformedPacket).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Connack {
    bytes: [u8; 5],
    len: u8,
    code: ReasonCode,
}

impl Connack {
    /// The packet's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The reason code it answers with, as given to [`Protocol::connack`]; in 3.x the byte
    /// on the wire is the return code it maps to.
    ///
    /// ```
    /// use mqtt_connect::{Protocol, ReasonCode};
    ///
    /// let ack = Protocol::V3_1_1.connack(ReasonCode::ServerBusy).unwrap();
    /// assert_eq!(ack.reason_code(), ReasonCode::ServerBusy);
    /// assert_eq!(ack.as_bytes()[3], 0x03);
    /// ```
    pub const fn reason_code(&self) -> ReasonCode {
        self.code
    }

    /// Whether it is in 5.0's form, which has a property block.
    #[cfg(feature = "tokio-util")]
    pub(crate) const fn is_v5(&self) -> bool {
        self.len == 5
    }
}

impl Protocol {
    /// The CONNACK a server of this version sends for `code`; `None` where 3.x has no return
    /// code for it and the server closes instead.
    #[must_use = "the client is told why only if this CONNACK is written"]
    pub const fn connack(self, code: ReasonCode) -> Option<Connack> {
        if self.is_v5() {
            return Some(Connack { bytes: [0x20, 0x03, 0x00, code as u8, 0x00], len: 5, code });
        }
        match packet::return_code_v3(code) {
            Some(return_code) => Some(Connack { bytes: [0x20, 0x02, 0x00, return_code, 0x00], len: 4, code }),
            None => None,
        }
    }
}

/// The version a CONNECT announces, read from as far as its bytes go, even when the packet
/// fails to decode; `None` before the level byte or when name and level do not pair.
///
/// ```
/// use mqtt_connect::Protocol;
///
/// // A 5.0 CONNECT whose reserved flag is set: invalid, but its version is known.
/// let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
/// assert!(mqtt_connect::decode(bad).is_err());
/// assert_eq!(mqtt_connect::protocol_of(bad), Some(Protocol::V5));
/// ```
pub fn protocol_of(buf: &[u8]) -> Option<Protocol> {
    let header = FixedHeader::parse(buf).ok()??;
    let body = buf.get(header.len..)?;
    let frame = usize::try_from(header.remaining).ok().and_then(|n| body.get(..n)).unwrap_or(body);
    protocol_in(frame)
}

impl Error {
    /// The CONNACK a server answers this error with, in the version of the packet in `buf`;
    /// `None` where the server just closes.
    ///
    /// An unsupported version gets the 3.1.1 answer, return code 0x01, which every version
    /// of client understands.
    ///
    /// ```
    /// let bad = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00";
    /// let err = mqtt_connect::decode(bad).unwrap_err();
    /// let ack = err.connack(bad).unwrap();
    /// assert_eq!(ack.as_bytes(), [0x20, 0x03, 0x00, 0x81, 0x00]);
    /// ```
    #[must_use = "the client is told why only if this CONNACK is written"]
    pub fn connack(&self, buf: &[u8]) -> Option<Connack> {
        let code = self.reason_code();
        match protocol_of(buf) {
            Some(protocol) => protocol.connack(code),
            None if matches!(self, Self::UnsupportedProtocolLevel { .. }) => Protocol::V3_1_1.connack(code),
            None => None,
        }
    }
}

/// What `#[must_use]` refuses: a refusal's CONNACK made and dropped, so the client is never
/// told why.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn refuse(e: &mqtt_connect::Error, buf: &[u8]) {
///     e.connack(buf);
/// }
/// ```
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// mqtt_connect::Protocol::V5.connack(mqtt_connect::ReasonCode::ServerBusy);
/// ```
#[cfg(doctest)]
struct MustUse;
