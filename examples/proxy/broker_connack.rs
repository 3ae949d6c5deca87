//! What the proxy reads from the broker's CONNACK as it relays it byte for byte: the reason (or
//! return) code, and a 5.0 Server Keep Alive; read with the crate's CONNACK decoder, in the
//! version the client's CONNECT announced.

use mqtt_connect::{ConnackPacket, Protocol, ReasonCode, Status};

/// The largest CONNACK the proxy reads, fixed header included, here and where it adds an
/// assigned client id (`sticky.rs`): one declared longer is forwarded unread. A CONNACK is a few
/// dozen bytes.
pub const MAX_CONNACK: u32 = 64 * 1024;

/// What the proxy needs from the broker's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerConnack {
    /// The reason code; a 3.x return code by the 5.0 name the decoder gives it.
    pub code: ReasonCode,
    /// Property 0x13, when a 5.0 broker sets it.
    pub server_keep_alive: Option<u16>,
}

/// Collects the broker's first bytes until its first packet is whole, then reads it once.
#[derive(Debug)]
pub struct Sniff {
    protocol: Protocol,
    buf: Vec<u8>,
    done: bool,
}

impl Sniff {
    /// Reads the CONNACK of a client that connected with `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self { protocol, buf: Vec::new(), done: false }
    }

    /// Takes the next bytes the broker sent. Returns the CONNACK once, when it is whole; after
    /// that, or on a first packet that is not a valid CONNACK, does nothing.
    ///
    /// The CONNACK nearly always comes whole in one read, so that read is decoded in place, and
    /// only a part is copied, to wait for the rest (a `Vec` allocated, filled and freed for each
    /// connection: 327 of the proxy's 27,606 user-space instructions a connection, callgrind).
    pub fn feed(&mut self, bytes: &[u8]) -> Option<BrokerConnack> {
        if self.done {
            return None;
        }
        // The decoder refuses a CONNACK over the cap from its fixed header, so no more than
        // that is ever kept.
        let seen = if self.buf.is_empty() {
            bytes
        } else {
            self.buf.extend_from_slice(bytes);
            &self.buf
        };
        // `None` while the packet is still coming; `Some` once it is read, or will not be.
        let read = match ConnackPacket::decode_within(self.protocol, seen, MAX_CONNACK) {
            Ok(Status::Incomplete(_)) => None,
            Ok(Status::Complete { packet, .. }) => Some(Some(BrokerConnack {
                code: packet.reason_code,
                server_keep_alive: packet.properties.server_keep_alive,
            })),
            Err(_) => Some(None),
        };
        let Some(ack) = read else {
            if self.buf.is_empty() {
                self.buf.extend_from_slice(bytes);
            }
            return None;
        };
        self.done = true;
        self.buf = Vec::new();
        ack
    }
}
