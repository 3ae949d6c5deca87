//! What the proxy reads from the broker's CONNACK as it relays it byte for byte: the reason (or
//! return) code, and a 5.0 Server Keep Alive.
//!
//! STOPGAP: the crate has no CONNACK decoder yet on this branch; one is being written for
//! issue 11. This reads only the two fields the proxy needs, and must give way to the crate's
//! decoder when it lands.

/// A whole CONNACK, or the first packet is not one the proxy can read.
pub const SNIFF_MAX: usize = 4096;

/// What the proxy needs from the broker's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerConnack {
    /// The 5.0 reason code or 3.x return code.
    pub code: u8,
    /// Property 0x13, when a 5.0 broker sets it.
    pub server_keep_alive: Option<u16>,
}

/// Collects the broker's first bytes until its first packet is whole, then reads it once.
#[derive(Debug, Default)]
pub struct Sniff {
    buf: Vec<u8>,
    done: bool,
}

impl Sniff {
    /// Takes the next bytes the broker sent. Returns the CONNACK once, when it is whole; after
    /// that, or on a first packet that is not a CONNACK, does nothing.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<BrokerConnack> {
        if self.done {
            return None;
        }
        let take = bytes.len().min(SNIFF_MAX.saturating_sub(self.buf.len()));
        self.buf.extend_from_slice(bytes.get(..take).unwrap_or_default());
        match parse(&self.buf) {
            Parsed::Incomplete if self.buf.len() < SNIFF_MAX => None,
            Parsed::Incomplete | Parsed::NotConnack => self.finish(None),
            Parsed::Connack(ack) => self.finish(Some(ack)),
        }
    }

    fn finish(&mut self, ack: Option<BrokerConnack>) -> Option<BrokerConnack> {
        self.done = true;
        self.buf = Vec::new();
        ack
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Incomplete,
    NotConnack,
    Connack(BrokerConnack),
}

fn parse(buf: &[u8]) -> Parsed {
    match buf.first() {
        None => return Parsed::Incomplete,
        Some(0x20) => {}
        Some(_) => return Parsed::NotConnack,
    }
    let Some(rest) = buf.get(1..) else { return Parsed::Incomplete };
    let (remaining, rest) = match varint(rest) {
        Varint::Value(n, rest) => (n, rest),
        Varint::Incomplete => return Parsed::Incomplete,
        Varint::Bad => return Parsed::NotConnack,
    };
    let Some(body) = usize::try_from(remaining).ok().and_then(|n| rest.get(..n)) else {
        return Parsed::Incomplete;
    };
    let Some(&code) = body.get(1) else { return Parsed::NotConnack };
    let server_keep_alive = body.get(2..).and_then(server_keep_alive);
    Parsed::Connack(BrokerConnack { code, server_keep_alive })
}

/// Property 0x13 from a 5.0 CONNACK's properties (length first), skipping the others by type.
fn server_keep_alive(props: &[u8]) -> Option<u16> {
    let Varint::Value(len, rest) = varint(props) else { return None };
    let mut props = rest.get(..usize::try_from(len).ok()?)?;
    while let Some((&id, rest)) = props.split_first() {
        let skip = match id {
            0x13 => return Some(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => 1,
            0x21..=0x23 => 2,
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            0x0B => match varint(rest) {
                Varint::Value(_, after) => rest.len() - after.len(),
                _ => return None,
            },
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => prefixed(rest)?,
            0x26 => {
                let key = prefixed(rest)?;
                key + prefixed(rest.get(key..)?)?
            }
            _ => return None,
        };
        props = rest.get(skip..)?;
    }
    None
}

/// The length of a two-byte-length-prefixed string or binary, prefix included.
fn prefixed(bytes: &[u8]) -> Option<usize> {
    Some(2 + usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?])))
}

enum Varint<'a> {
    Value(u32, &'a [u8]),
    Incomplete,
    Bad,
}

fn varint(bytes: &[u8]) -> Varint<'_> {
    let mut value = 0u32;
    for (i, &byte) in bytes.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Varint::Value(value, bytes.get(i + 1..).unwrap_or_default());
        }
    }
    if bytes.len() >= 4 { Varint::Bad } else { Varint::Incomplete }
}
