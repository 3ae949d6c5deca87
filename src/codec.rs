//! `tokio_util::codec` for the handshake: [`ConnectCodec`] on the server's side of a
//! connection (read the CONNECT, write the CONNACK), [`ConnackCodec`] on the client's (write
//! the CONNECT, read the CONNACK).
//!
//! A codec yields the one packet of the handshake, then steps aside: take the stream and
//! whatever was read past the packet out of the framed stream with `into_parts()`, and relay
//! or speak the rest of MQTT from there. The bytes after the packet are not decoded: polled
//! again, a codec refuses them, as [`CodecError::AfterHandshake`] (or as the second CONNECT or
//! CONNACK the standard forbids), and leaves them in the buffer. A 5.0 server's AUTH before its
//! CONNACK stops the [`ConnackCodec`] short of it, with the AUTH left for the caller
//! ([`CodecError::Auth`]).
//!
//! A proxy's whole CONNECT read:
//!
//! ```
//! use futures_util::StreamExt;
//! use mqtt_connect::codec::{CodecError, ConnectCodec};
//! use mqtt_connect::{Decoder, OwnedConnect};
//! use tokio::{io::AsyncWriteExt, net::TcpStream};
//! use tokio_util::codec::FramedRead;
//!
//! async fn read_connect(client: TcpStream) -> Result<(OwnedConnect, TcpStream, bytes::BytesMut), CodecError> {
//!     let mut framed = FramedRead::new(client, ConnectCodec::new(Decoder::new().max_packet_size(64 * 1024)));
//!     let connect = match framed.next().await {
//!         Some(Ok(connect)) => connect,
//!         Some(Err(e)) => {
//!             // Refuse in the client's own version, when it has one, then drop the connection.
//!             if let Some(ack) = e.connack() {
//!                 framed.get_mut().write_all(ack.as_bytes()).await?;
//!             }
//!             return Err(e);
//!         }
//!         None => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
//!     };
//!     let parts = framed.into_parts(); // the socket, and the bytes pipelined after the CONNECT
//!     Ok((connect, parts.io, parts.read_buf))
//! }
//! ```
//!
//! The caller then picks an upstream from `connect.client_id()` (or any field), writes
//! `connect.frame()` and the pipelined bytes to it, and relays.

extern crate std;

use std::io;

use bytes::BytesMut;

use crate::connack::Connack;
use crate::decode::{Decoder, Needed, Status};
use crate::encode::EncodeError;
use crate::error::{Error, ReasonCode};
use crate::owned::{OwnedConnack, OwnedConnect};
use crate::packet::{ConnackPacket, Connect};
use crate::rules;
use crate::spec::{AUTH_BYTE, CONNACK_BYTE, CONNECT_BYTE, Protocol};

/// What can go wrong in a codec: the socket, or the packet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The socket failed, or closed inside a packet.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The CONNECT was refused; `connack` is the answer to send, in the client's version,
    /// `None` where the server just closes.
    #[error("invalid CONNECT: {error}")]
    Connect {
        /// Why.
        error: Error,
        /// The CONNACK to write before closing.
        connack: Option<Connack>,
    },
    /// A second CONNECT on the connection, after the one the [`ConnectCodec`] yielded: a
    /// Protocol Error, on which the server closes, sending nothing [MQTT-3.1.0-2].
    #[error("a second CONNECT on the connection")]
    SecondConnect,
    /// A second CONNACK on the connection, after the one the [`ConnackCodec`] yielded: a
    /// server sends one [MQTT-3.2.0-2].
    #[error("a second CONNACK on the connection")]
    SecondConnack,
    /// A codec polled again after it yielded its packet, with the bytes of another kind of
    /// packet in the buffer: it reads the handshake's one packet, and leaves them there. Take
    /// them, and the stream, with `into_parts()`.
    #[error("a packet after the handshake's: take the rest of the stream with into_parts()")]
    AfterHandshake,
    /// An AUTH packet before the CONNACK: the server carries on the enhanced authentication
    /// that the 5.0 CONNECT began with its Authentication Method (MQTT 5.0 section 4.12). The
    /// [`ConnackCodec`] reads no AUTH, checks none of it (its flags, its size against the
    /// cap) and is left as it was: the packet stays at the front of the read buffer, whole or
    /// not. Take the parts with `into_parts()`, read the AUTH off `read_buf` and answer it,
    /// then go on with `FramedRead::from_parts(parts)` (or `Framed`), which keeps the codec's
    /// cap and what it holds the CONNACK to, and the bytes read after the AUTH.
    #[error("an AUTH packet before the CONNACK: enhanced authentication is the caller's")]
    Auth,
    /// The CONNACK could not be decoded.
    #[error("invalid CONNACK: {0}")]
    Connack(Error),
    /// A CONNACK to write, by a [`ConnectCodec`], in another version than the CONNECT it
    /// yielded: its client reads the answer in the version it sent.
    #[error("a CONNACK in another version than the CONNECT's, {connect}")]
    ConnackVersion {
        /// The CONNECT's version.
        connect: Protocol,
    },
    /// The CONNECT (by a [`ConnackCodec`]) or the CONNACK (by a [`ConnectCodec`]) could not
    /// be encoded; the inner error names the field.
    #[error("packet not encoded: {0}")]
    Encode(#[from] EncodeError),
}

impl CodecError {
    /// The CONNACK a server answers a refused CONNECT with, in the client's version.
    #[must_use = "the client is told why only if this CONNACK is written"]
    pub fn connack(&self) -> Option<Connack> {
        match self {
            Self::Connect { connack, .. } => *connack,
            _ => None,
        }
    }
}

impl From<CodecError> for io::Error {
    /// For code that speaks `io::Result`, as tokio-util's own codecs' errors do: the socket's
    /// error as it was; a packet's fault as [`io::ErrorKind::InvalidData`] that carries the
    /// `CodecError` (`get_ref`, then `downcast_ref`), and with it the CONNACK to send.
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Io(e) => e,
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// The most [`reserve`] sets aside ahead of the bytes: more than any usual CONNECT or CONNACK.
const MAX_RESERVE: usize = 64 * 1024;

/// Reserves room for what `needed` says is missing, so that the next read fills it; at most
/// [`MAX_RESERVE`], as the size is the peer's claim (five bytes can announce 256 MiB). A
/// larger packet's buffer grows as its bytes arrive.
fn reserve(src: &mut BytesMut, needed: Needed) {
    if let Needed::Size(n) = needed {
        src.reserve(n.get().min(MAX_RESERVE));
    }
}

/// The server's side of the handshake: decodes the CONNECT into an [`OwnedConnect`], split off
/// the read buffer and validated once; encodes the CONNACK.
///
/// Once it has yielded a CONNECT, it refuses another as [`CodecError::SecondConnect`]
/// [MQTT-3.1.0-2], and a CONNACK to write in another version as
/// [`CodecError::ConnackVersion`]. It holds the CONNACK to what the CONNECT asked, as the
/// [`ConnackCodec`] does on the other side: a CONNACK with Session Present after a Clean
/// Start, or over the client's Maximum Packet Size, is [`CodecError::Encode`] with
/// [`Error::SessionPresentAfterCleanStart`] [MQTT-3.2.2-2] or [`Error::PacketTooLarge`]
/// [MQTT-3.1.2-24], and nothing is written. So is a CONNACK with an Authentication Method
/// after a CONNECT without one, [`Error::UnaskedAuthentication`] [MQTT-4.12.0-6], and a
/// successful one without after a CONNECT with one, [`Error::AuthenticationMethodMissing`]
/// [MQTT-4.12.0-5]; that it is the same method is the caller's to check.
#[derive(Clone, Copy, Debug)]
pub struct ConnectCodec {
    decoder: Decoder,
    /// What the connection's CONNECT asked, once it has yielded it.
    connected: Option<Asked>,
}

/// What a CONNECT asks of the CONNACK that answers it.
#[derive(Clone, Copy, Debug)]
struct Asked {
    protocol: Protocol,
    clean_start: bool,
    /// The Maximum Packet Size a 5.0 client announced; `u32::MAX` without one.
    max_packet_size: u32,
    /// Whether the 5.0 CONNECT named an Authentication Method.
    authentication_method: bool,
}

/// What a CONNACK is, for the rules that hold it to the CONNECT, whichever form it comes in.
struct Reply {
    session_present: bool,
    success: bool,
    /// Whether it carries an Authentication Method.
    authentication_method: bool,
    /// The whole packet's size, fixed header included.
    len: usize,
}

impl Default for ConnectCodec {
    /// A codec with the default [`Decoder`], which has no cap on the packet but the
    /// standard's: a client can make it buffer up to 256 MiB for a CONNECT, 64 KiB reserved
    /// ahead and the rest as the bytes arrive. Cap it with
    /// `ConnectCodec::new(Decoder::new().max_packet_size(bytes))`.
    fn default() -> Self {
        Self::new(Decoder::new())
    }
}

impl ConnectCodec {
    /// A codec that decodes with `decoder`, with its cap and options.
    pub const fn new(decoder: Decoder) -> Self {
        Self { decoder, connected: None }
    }

    /// Holds a CONNACK to what the CONNECT asked: no Session Present after a Clean Start, an
    /// Authentication Method as the CONNECT's named one or not, and within the client's
    /// Maximum Packet Size. Before a CONNECT, a refusal asks nothing.
    fn answers(&self, reply: Reply) -> Result<(), CodecError> {
        let Some(asked) = self.connected else { return Ok(()) };
        let method = asked.authentication_method;
        rules::no_session_after_clean_start(asked.clean_start, reply.session_present)
            .map_err(EncodeError::from)?;
        rules::no_authentication_unasked(method, reply.authentication_method).map_err(EncodeError::from)?;
        rules::success_carries_authentication_method(method, reply.success, reply.authentication_method)
            .map_err(EncodeError::from)?;
        let len = u32::try_from(reply.len).unwrap_or(u32::MAX);
        rules::within_cap(0, len, asked.max_packet_size).map_err(EncodeError::from)?;
        Ok(())
    }

    /// Refuses a CONNACK that `same` says is in another version than the CONNECT it yielded:
    /// the client reads the answer in the version it sent. One exception: a server refuses a
    /// version it does not support in its own, 3.1.1's to a 5.0 CONNECT, 5.0's to an older
    /// one [MQTT-3.1.2-2]; `v5` says whether the CONNACK is in 5.0's form. Before a CONNECT, a
    /// refusal's version is the caller's to pick.
    fn answers_in_version(
        &self,
        same: impl FnOnce(Protocol) -> bool,
        v5: bool,
        code: ReasonCode,
    ) -> Result<(), CodecError> {
        let Some(connect) = self.connected.map(|asked| asked.protocol) else { return Ok(()) };
        let unsupported = rules::unsupported_version_in_servers_version(connect, v5, code);
        if unsupported || same(connect) { Ok(()) } else { Err(CodecError::ConnackVersion { connect }) }
    }
}

/// Whether `src` starts a packet of the type whose first byte is `first`: known from the
/// packet type, so before its body arrives.
fn starts(src: &BytesMut, first: u8) -> bool {
    src.first().is_some_and(|byte| byte >> 4 == first >> 4)
}

/// [MQTT-3.1.0-2] A client's second CONNECT is a Protocol Error, on which the server closes.
fn no_second_connect(src: &BytesMut) -> Result<(), CodecError> {
    if starts(src, CONNECT_BYTE) { Err(CodecError::SecondConnect) } else { Ok(()) }
}

/// [MQTT-3.2.0-2] A server sends one CONNACK on a connection.
fn no_second_connack(src: &BytesMut) -> Result<(), CodecError> {
    if starts(src, CONNACK_BYTE) { Err(CodecError::SecondConnack) } else { Ok(()) }
}

/// At the end of the stream, what is left of a packet not yet whole: the peer closed inside it.
/// tokio-util's default calls it "bytes remaining on stream", of kind `Other`, which a caller
/// cannot tell from any other failure.
fn cut_short(src: &BytesMut, packet: &str) -> Result<(), CodecError> {
    if src.is_empty() {
        return Ok(());
    }
    let why = std::format!("the stream ended inside the {packet}, after {} bytes of it", src.len());
    Err(CodecError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, why)))
}

/// Refuses what follows the handshake's packet, which the codec does not decode: a PUBLISH
/// would otherwise be refused as an invalid CONNECT or CONNACK.
fn handshake_only(src: &BytesMut) -> Result<(), CodecError> {
    if src.is_empty() { Ok(()) } else { Err(CodecError::AfterHandshake) }
}

impl tokio_util::codec::Decoder for ConnectCodec {
    type Item = OwnedConnect;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<OwnedConnect>, CodecError> {
        if self.connected.is_some() {
            no_second_connect(src)?;
            handshake_only(src)?;
        }
        match OwnedConnect::split_from(&self.decoder, src) {
            Ok(Status::Complete { packet, .. }) => {
                self.connected = Some(Asked {
                    protocol: packet.protocol(),
                    clean_start: packet.clean_start(),
                    max_packet_size: packet.maximum_packet_size().unwrap_or(u32::MAX),
                    authentication_method: packet.authentication_method().is_some(),
                });
                Ok(Some(packet))
            }
            Ok(Status::Incomplete(needed)) => {
                reserve(src, needed);
                Ok(None)
            }
            // The buffer still holds the packet, so the answer is in its version.
            Err(error) => Err(CodecError::Connect { error, connack: error.connack(src) }),
        }
    }

    /// As `decode`; a CONNECT the stream ended inside is an
    /// [`io::ErrorKind::UnexpectedEof`].
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<OwnedConnect>, CodecError> {
        let decoded = self.decode(src)?;
        if decoded.is_none() {
            cut_short(src, "CONNECT")?;
        }
        Ok(decoded)
    }
}

impl tokio_util::codec::Encoder<ConnackPacket<'_>> for ConnectCodec {
    type Error = CodecError;

    fn encode(&mut self, ack: ConnackPacket<'_>, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.answers_in_version(|connect| connect == ack.protocol, ack.protocol.is_v5(), ack.reason_code)?;
        self.answers(Reply {
            session_present: ack.session_present,
            success: ack.reason_code == ReasonCode::Success,
            authentication_method: ack.properties.authentication_method.is_some(),
            len: ack.encoded_len()?,
        })?;
        ack.encode_to(dst)?;
        Ok(())
    }
}

impl tokio_util::codec::Encoder<Connack> for ConnectCodec {
    type Error = CodecError;

    fn encode(&mut self, ack: Connack, dst: &mut BytesMut) -> Result<(), CodecError> {
        // 3.1's and 3.1.1's refusals are the same bytes: without Session Present, only 5.0's differ.
        self.answers_in_version(|connect| connect.is_v5() == ack.is_v5(), ack.is_v5(), ack.reason_code())?;
        self.answers(Reply {
            session_present: false,
            success: ack.reason_code() == ReasonCode::Success,
            authentication_method: false,
            len: ack.as_bytes().len(),
        })?;
        dst.extend_from_slice(ack.as_bytes());
        Ok(())
    }
}

impl tokio_util::codec::Encoder<&OwnedConnack> for ConnectCodec {
    type Error = CodecError;

    /// Forwards a CONNACK as it was received (a broker's, read by a [`ConnackCodec`]), byte
    /// for byte.
    fn encode(&mut self, ack: &OwnedConnack, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.answers_in_version(
            |connect| connect == ack.protocol(),
            ack.protocol().is_v5(),
            ack.reason_code(),
        )?;
        self.answers(Reply {
            session_present: ack.session_present(),
            success: ack.reason_code() == ReasonCode::Success,
            authentication_method: ack.has_authentication_method(),
            len: ack.frame().len(),
        })?;
        dst.extend_from_slice(ack.frame());
        Ok(())
    }
}

impl tokio_util::codec::Encoder<OwnedConnack> for ConnectCodec {
    type Error = CodecError;

    /// As for `&OwnedConnack`.
    fn encode(&mut self, ack: OwnedConnack, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&ack, dst)
    }
}

/// The client's side of the handshake (a proxy's, toward its upstream): encodes the CONNECT,
/// decodes the CONNACK of the version it sent.
///
/// A CONNECT it encodes sets the version the CONNACK is read in, whatever version the codec
/// was made with: the answer comes in the CONNECT's version.
///
/// A 5.0 CONNECT it encodes with a Maximum Packet Size caps the CONNACK at that size, unless
/// [`max_packet_size`](Self::max_packet_size) set a lower cap: the server must not send a
/// packet over it [MQTT-3.1.2-24], and a client takes one as a Packet too large (0x95).
///
/// A CONNECT it encodes with Clean Start (3.1.1: Clean Session) makes a CONNACK with Session
/// Present an error, [`Error::SessionPresentAfterCleanStart`], taken off the buffer
/// [MQTT-3.2.2-2].
///
/// A 5.0 server may answer with AUTH packets before its CONNACK, when the CONNECT named an
/// Authentication Method: the codec stops at the first with [`CodecError::Auth`] and leaves it
/// in the buffer. After a CONNECT it encodes without one, an AUTH is
/// [`Error::UnaskedAuthentication`] [MQTT-4.12.0-6], left in the buffer, and so is a CONNACK
/// with an Authentication Method, taken off it. After a CONNECT with one, a successful CONNACK
/// without is [`Error::AuthenticationMethodMissing`] [MQTT-4.12.0-5], taken off the buffer;
/// that it is the same method is the caller's to check.
///
/// Once it has yielded a CONNACK, it refuses another as [`CodecError::SecondConnack`]
/// [MQTT-3.2.0-2].
#[derive(Clone, Copy, Debug)]
pub struct ConnackCodec {
    protocol: Protocol,
    max_packet_size: u32,
    /// Whether the CONNECT it wrote asked for a clean start; `false` before it wrote one.
    clean_start: bool,
    /// What the CONNECT it wrote said of enhanced authentication.
    authentication: Authentication,
    /// Whether it has yielded the connection's CONNACK.
    acknowledged: bool,
}

impl ConnackCodec {
    /// A codec for the CONNACK that answers a CONNECT of `protocol`, until it encodes a
    /// CONNECT of another.
    ///
    /// It has no cap on the CONNACK but the standard's, as a client that announces no
    /// Maximum Packet Size takes any size: a server can make it buffer up to 256 MiB, 64 KiB
    /// reserved ahead and the rest as the bytes arrive. Cap it with
    /// [`max_packet_size`](Self::max_packet_size), or by encoding a 5.0 CONNECT that
    /// announces a Maximum Packet Size.
    pub const fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            max_packet_size: u32::MAX,
            clean_start: false,
            authentication: Authentication::Unknown,
            acknowledged: false,
        }
    }

    /// Cap on the CONNACK, fixed header included. Decided from the Remaining Length alone: a
    /// CONNACK over the cap is [`CodecError::Connack`] with [`Error::PacketTooLarge`]
    /// (reason code 0x95) before its body arrives.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mqtt_connect::codec::{CodecError, ConnackCodec};
    /// use mqtt_connect::{Error, Protocol};
    /// use tokio_util::codec::Decoder;
    ///
    /// let mut codec = ConnackCodec::new(Protocol::V5).max_packet_size(1024);
    /// // Five bytes that announce a CONNACK of 256 MiB.
    /// let mut buf = BytesMut::from(&b"\x20\xff\xff\xff\x7f"[..]);
    /// let err = codec.decode(&mut buf).unwrap_err();
    /// assert!(matches!(err, CodecError::Connack(Error::PacketTooLarge { size: 268_435_460, limit: 1024 })));
    /// ```
    #[must_use = "returns the capped codec, leaving this one as it was"]
    pub const fn max_packet_size(self, bytes: u32) -> Self {
        Self { max_packet_size: bytes, ..self }
    }

    /// Takes the version, the clean start and the Authentication Method of a CONNECT it wrote,
    /// and the Maximum Packet Size it announced as the cap, unless the cap is lower.
    fn adopt(&mut self, protocol: Protocol, clean_start: bool, method: bool, announced: Option<u32>) {
        self.protocol = protocol;
        self.clean_start = clean_start;
        self.authentication = if method { Authentication::Named } else { Authentication::Unnamed };
        if let Some(announced) = announced {
            self.max_packet_size = self.max_packet_size.min(announced);
        }
    }
}

/// What the CONNECT a [`ConnackCodec`] wrote said of enhanced authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Authentication {
    /// It wrote no CONNECT, and cannot tell.
    Unknown,
    /// The CONNECT named an Authentication Method.
    Named,
    /// The CONNECT named none.
    Unnamed,
}

impl Authentication {
    /// Whether the server may begin enhanced authentication: unless the CONNECT named no
    /// method [MQTT-4.12.0-6].
    fn may_begin(self) -> bool {
        self != Self::Unnamed
    }
}

impl tokio_util::codec::Decoder for ConnackCodec {
    type Item = OwnedConnack;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<OwnedConnack>, CodecError> {
        if self.acknowledged {
            no_second_connack(src)?;
            handshake_only(src)?;
        } else if self.protocol.is_v5() && starts(src, AUTH_BYTE) {
            rules::no_authentication_unasked(self.authentication.may_begin(), true)
                .map_err(CodecError::Connack)?;
            return Err(CodecError::Auth);
        }
        match OwnedConnack::split_within(self.protocol, src, self.max_packet_size)
            .map_err(CodecError::Connack)?
        {
            Status::Complete { packet, .. } => {
                rules::no_session_after_clean_start(self.clean_start, packet.session_present())
                    .map_err(CodecError::Connack)?;
                let method = packet.has_authentication_method();
                rules::no_authentication_unasked(self.authentication.may_begin(), method)
                    .map_err(CodecError::Connack)?;
                rules::success_carries_authentication_method(
                    self.authentication == Authentication::Named,
                    packet.reason_code() == ReasonCode::Success,
                    method,
                )
                .map_err(CodecError::Connack)?;
                self.acknowledged = true;
                Ok(Some(packet))
            }
            Status::Incomplete(needed) => {
                reserve(src, needed);
                Ok(None)
            }
        }
    }

    /// As `decode`; a CONNACK the stream ended inside is an
    /// [`io::ErrorKind::UnexpectedEof`].
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<OwnedConnack>, CodecError> {
        let decoded = self.decode(src)?;
        if decoded.is_none() {
            cut_short(src, "CONNACK")?;
        }
        Ok(decoded)
    }
}

impl tokio_util::codec::Encoder<Connect<'_>> for ConnackCodec {
    type Error = CodecError;

    /// Writes the CONNECT; the CONNACK is read in its version, and a Maximum Packet Size in it
    /// caps the CONNACK (see [`ConnackCodec`]).
    fn encode(&mut self, connect: Connect<'_>, dst: &mut BytesMut) -> Result<(), CodecError> {
        connect.encode_to(dst)?;
        let p = &connect.properties;
        self.adopt(
            connect.protocol,
            connect.clean_start,
            p.authentication_method.is_some(),
            p.maximum_packet_size,
        );
        Ok(())
    }
}

impl tokio_util::codec::Encoder<&OwnedConnect> for ConnackCodec {
    type Error = CodecError;

    /// Forwards the CONNECT as it was received, byte for byte; the CONNACK is read in its
    /// version, and a Maximum Packet Size in it caps the CONNACK (see [`ConnackCodec`]).
    fn encode(&mut self, connect: &OwnedConnect, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(connect.frame());
        let method = connect.authentication_method().is_some();
        self.adopt(connect.protocol(), connect.clean_start(), method, connect.maximum_packet_size());
        Ok(())
    }
}

impl tokio_util::codec::Encoder<OwnedConnect> for ConnackCodec {
    type Error = CodecError;

    /// As for `&OwnedConnect`.
    fn encode(&mut self, connect: OwnedConnect, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&connect, dst)
    }
}

/// What `#[must_use]` refuses: results whose drop is a bug.
///
/// A cap set and dropped: the codec is `Copy`, so `max_packet_size` returns a capped codec
/// and leaves `codec` uncapped.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let codec = mqtt_connect::codec::ConnackCodec::new(mqtt_connect::Protocol::V5);
/// codec.max_packet_size(1024);
/// ```
///
/// A refusal read and dropped: the client is never told.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn refuse(e: &mqtt_connect::codec::CodecError) {
///     e.connack();
/// }
/// ```
#[cfg(doctest)]
struct MustUse;
