//! The encoder: writes a [`Connect`] into a caller's buffer, refusing what would not decode
//! back to the same value.

use crate::connect::{Connect, Will};
use crate::decode::{BRIDGE_BIT, CONNECT_BYTE, check_client_id};
use crate::error::{Error, Field};
use crate::properties;
use crate::{strings, varint};

/// Why a [`Connect`] could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The buffer is shorter than the packet.
    #[error("buffer of {len} bytes is too small for a packet of {needed}")]
    BufferTooSmall {
        /// The packet's size.
        needed: usize,
        /// The buffer's size.
        len: usize,
    },
    /// A string or binary field over 65,535 bytes, or a packet over 268,435,460 bytes.
    #[error("{field}: too long to encode")]
    TooLong {
        /// The field.
        field: Field,
    },
    /// A field this version cannot carry: properties in a 3.x packet.
    #[error("{field}: not in this protocol version")]
    NotInVersion {
        /// The field.
        field: Field,
    },
    /// A value that breaks a rule the decoder enforces.
    #[error(transparent)]
    Invalid(#[from] Error),
}

/// Sizes worked out before writing, once every rule holds.
struct Layout {
    remaining: usize,
    properties: usize,
    will_properties: usize,
}

impl Connect<'_> {
    /// Bytes the encoded packet takes, fixed header included; the same checks as
    /// [`Connect::encode`], so an `Ok` here means `encode` succeeds on a buffer this long.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let remaining = self.layout()?.remaining;
        Ok(1 + varint::len(remaining as u32) + remaining)
    }

    /// Writes the packet to the front of `buf` and returns its length. Properties are
    /// written in the order of the struct's fields, User Properties last.
    ///
    /// ```
    /// use mqtt_connect::{Connect, Protocol};
    ///
    /// let connect = Connect::new(Protocol::V3_1_1, "c1");
    /// let mut buf = [0u8; 64];
    /// let len = connect.encode(&mut buf)?;
    /// assert_eq!(&buf[..len], b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1");
    /// # Ok::<(), mqtt_connect::EncodeError>(())
    /// ```
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let layout = self.layout()?;
        let needed = 1 + varint::len(layout.remaining as u32) + layout.remaining;
        let Some(out) = buf.get_mut(..needed) else {
            return Err(EncodeError::BufferTooSmall { needed, len: buf.len() });
        };
        let mut w = Writer { buf: out, pos: 0 };
        w.u8(CONNECT_BYTE);
        varint::write(&mut w, layout.remaining as u32);
        w.binary(self.protocol.name().as_bytes());
        w.u8(self.protocol.level() | if self.bridge { BRIDGE_BIT } else { 0 });
        w.u8(self.flags());
        w.u16(self.keep_alive);
        let v5 = self.protocol.is_v5();
        if v5 {
            let p = &self.properties;
            properties::write_block(&mut w, layout.properties, p.entries(), &p.user_properties);
        }
        w.binary(self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                let p = &will.properties;
                properties::write_block(&mut w, layout.will_properties, p.entries(), &p.user_properties);
            }
            w.binary(will.topic.as_bytes());
            w.binary(will.payload);
        }
        if let Some(username) = self.username {
            w.binary(username.as_bytes());
        }
        if let Some(password) = self.password {
            w.binary(password);
        }
        debug_assert_eq!(w.pos, needed);
        Ok(needed)
    }

    fn flags(&self) -> u8 {
        let will = self.will.map_or(0, |w| (u8::from(w.retain) << 5) | ((w.qos as u8) << 3) | (1 << 2));
        (u8::from(self.username.is_some()) << 7)
            | (u8::from(self.password.is_some()) << 6)
            | will
            | (u8::from(self.clean_start) << 1)
    }

    /// Checks every rule and sums the sizes.
    fn layout(&self) -> Result<Layout, EncodeError> {
        let v5 = self.protocol.is_v5();
        if !v5 {
            if !self.properties.is_empty() {
                return Err(EncodeError::NotInVersion { field: Field::Properties });
            }
            if self.will.is_some_and(|w| !w.properties.is_empty()) {
                return Err(EncodeError::NotInVersion { field: Field::WillProperties });
            }
            if self.password.is_some() && self.username.is_none() {
                return Err(Error::PasswordWithoutUsername.into());
            }
        }
        check_client_id(self.protocol, self.client_id, self.clean_start, false)?;

        let mut remaining = 2 + self.protocol.name().len() + 1 + 1 + 2;
        let mut properties = 0;
        if v5 {
            let p = &self.properties;
            p.check()?;
            properties = properties::block_len(p.entries(), &p.user_properties)?;
            remaining += prefixed(properties, Field::Properties)?;
        }
        remaining += check_str(self.client_id, Field::ClientId)?;
        let mut will_properties = 0;
        if let Some(will) = &self.will {
            if v5 {
                let p = &will.properties;
                will_properties = properties::block_len(p.entries(), &p.user_properties)?;
                remaining += prefixed(will_properties, Field::WillProperties)?;
            }
            remaining += will_topic(will)?;
            remaining += check_bin(will.payload, Field::WillPayload)?;
        }
        if let Some(username) = self.username {
            remaining += check_str(username, Field::Username)?;
        }
        if let Some(password) = self.password {
            remaining += check_bin(password, Field::Password)?;
        }
        if remaining > varint::MAX as usize {
            return Err(EncodeError::TooLong { field: Field::RemainingLength });
        }
        Ok(Layout { remaining, properties, will_properties })
    }
}

fn will_topic(will: &Will<'_>) -> Result<usize, EncodeError> {
    strings::check_topic(will.topic, Field::WillTopic)?;
    check_str(will.topic, Field::WillTopic)
}

/// A property block's size with its length prefix.
fn prefixed(len: usize, field: Field) -> Result<usize, EncodeError> {
    match u32::try_from(len) {
        Ok(n) if n <= varint::MAX => Ok(varint::len(n) + len),
        _ => Err(EncodeError::TooLong { field }),
    }
}

/// A UTF-8 string's size on the wire, once it passes the decoder's rules.
pub(crate) fn check_str(text: &str, field: Field) -> Result<usize, EncodeError> {
    strings::check_no_null(text, field)?;
    check_bin(text.as_bytes(), field)
}

/// A binary field's size on the wire.
pub(crate) fn check_bin(bytes: &[u8], field: Field) -> Result<usize, EncodeError> {
    if bytes.len() > usize::from(u16::MAX) {
        return Err(EncodeError::TooLong { field });
    }
    Ok(2 + bytes.len())
}

/// Writes into a buffer that [`Connect::layout`] has sized, so every write fits.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        if let Some(out) = self.buf.get_mut(self.pos..end) {
            out.copy_from_slice(bytes);
        }
        self.pos = end;
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// A u16 length, then the bytes; the caller checked the length fits.
    pub(crate) fn binary(&mut self, bytes: &[u8]) {
        self.u16(bytes.len() as u16);
        self.bytes(bytes);
    }
}
