//! The encoder: writes a [`Connect`] into a caller's buffer, refusing what would not decode
//! back to the same value, and what a client must not send (a will announced as UTF-8 that
//! is not).

use crate::error::{Error, Field};
use crate::packet::{Connect, UserProperties, Will};
use crate::rules;
use crate::spec::{BRIDGE_BIT, CONNECT_BYTE, ConnectFlags, Property};
use crate::values::{self, Value};
use crate::wire::{Writer, vbi};

/// Why a [`Connect`] or a [`ConnackPacket`](crate::ConnackPacket) could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
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
    /// A field this version cannot carry: properties in a 3.x packet, a 5.0 reason code with
    /// no 3.x return code, or Session Present in a 3.1 CONNACK.
    #[error("{field}: not in this protocol version")]
    NotInVersion {
        /// The field.
        field: Field,
    },
    /// A value that breaks a rule the decoder enforces.
    #[error(transparent)]
    Invalid(#[from] Error),
    /// The encoder sized the packet at `sized` bytes but wrote `written`: a bug in this
    /// crate, reported rather than handing back a corrupt packet.
    #[error("encoder bug: sized the packet at {sized} bytes but wrote {written}")]
    SizeMismatch {
        /// The size worked out before writing.
        sized: usize,
        /// The bytes the writes asked for.
        written: usize,
    },
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
        Ok(1 + vbi::len(remaining as u32) + remaining)
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
        let needed = 1 + vbi::len(layout.remaining as u32) + layout.remaining;
        let Some(out) = buf.get_mut(..needed) else {
            return Err(EncodeError::BufferTooSmall { needed, len: buf.len() });
        };
        let mut w = Writer::new(out);
        w.u8(CONNECT_BYTE);
        vbi::write(&mut w, layout.remaining as u32);
        w.binary(self.protocol.name().as_bytes());
        w.u8(self.protocol.level() | if self.bridge { BRIDGE_BIT } else { 0 });
        w.u8(self.flags());
        w.u16(self.keep_alive);
        let v5 = self.protocol.is_v5();
        if v5 {
            let p = &self.properties;
            write_block(&mut w, layout.properties, p.entries(), &p.user_properties);
        }
        w.binary(self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                let p = &will.properties;
                write_block(&mut w, layout.will_properties, p.entries(), &p.user_properties);
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
        w.finish().map_err(|o| EncodeError::SizeMismatch { sized: o.room, written: o.written })
    }

    fn flags(&self) -> u8 {
        let will = self.will.map(|w| (w.qos, w.retain));
        ConnectFlags::new(self.username.is_some(), self.password.is_some(), will, self.clean_start).0
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
        }
        rules::bridge_bit_on_3x_only(self.protocol, self.bridge)?;
        rules::password_needs_user_name(self.protocol, self.username.is_some(), self.password.is_some())?;
        rules::client_id(self.protocol, self.client_id, self.clean_start, false)?;

        let mut remaining = 2 + self.protocol.name().len() + 1 + 1 + 2;
        let mut properties = 0;
        if v5 {
            let p = &self.properties;
            p.check()?;
            properties = block_len(p.entries(), &p.user_properties)?;
            remaining += prefixed(properties, Field::Properties)?;
        }
        remaining += check_str(self.client_id, Field::ClientId)?;
        let mut will_properties = 0;
        if let Some(will) = &self.will {
            if v5 {
                let p = &will.properties;
                will_properties = block_len(p.entries(), &p.user_properties)?;
                remaining += prefixed(will_properties, Field::WillProperties)?;
            }
            remaining += will_topic(will)?;
            rules::will_payload_matches_format(will.properties.payload_format, will.payload)?;
            remaining += check_bin(will.payload, Field::WillPayload)?;
        }
        if let Some(username) = self.username {
            remaining += check_str(username, Field::Username)?;
        }
        if let Some(password) = self.password {
            remaining += check_bin(password, Field::Password)?;
        }
        if remaining > vbi::MAX as usize {
            return Err(EncodeError::TooLong { field: Field::RemainingLength });
        }
        Ok(Layout { remaining, properties, will_properties })
    }
}

fn will_topic(will: &Will<'_>) -> Result<usize, EncodeError> {
    rules::topic_name(will.topic, Field::WillTopic)?;
    check_str(will.topic, Field::WillTopic)
}

/// A property block's size with its length prefix.
fn prefixed(len: usize, field: Field) -> Result<usize, EncodeError> {
    match u32::try_from(len) {
        Ok(n) if n <= vbi::MAX => Ok(vbi::len(n) + len),
        _ => Err(EncodeError::TooLong { field }),
    }
}

/// A UTF-8 string's size on the wire, once it passes the decoder's rules.
fn check_str(text: &str, field: Field) -> Result<usize, EncodeError> {
    rules::no_null_character(text, field)?;
    check_bin(text.as_bytes(), field)
}

/// A binary field's size on the wire.
fn check_bin(bytes: &[u8], field: Field) -> Result<usize, EncodeError> {
    if bytes.len() > usize::from(u16::MAX) {
        return Err(EncodeError::TooLong { field });
    }
    Ok(2 + bytes.len())
}

/// Bytes a block of `entries` and `users` takes after its length prefix, once every value
/// passed the rules the decoder applies.
pub(crate) fn block_len<'a>(
    entries: impl Iterator<Item = (Property, Value<'a>)>,
    users: &UserProperties<'a>,
) -> Result<usize, EncodeError> {
    let mut len = 0usize;
    for (property, value) in entries.chain(pairs(users)) {
        let field = Field::Property(property);
        value.check(property)?;
        let value_len = match value {
            Value::Byte(_) => 1,
            Value::U16(_) => 2,
            Value::U32(_) => 4,
            Value::Str(s) => check_str(s, field)?,
            Value::Bin(b) => check_bin(b, field)?,
            Value::Pair(name, value) => check_str(values::well_formed(name, field)?, field)?
                .saturating_add(check_str(values::well_formed(value, field)?, field)?),
        };
        len = len.saturating_add(1 + value_len);
    }
    Ok(len)
}

/// Writes a block checked by [`block_len`], length prefix included.
pub(crate) fn write_block<'a>(
    w: &mut Writer<'_>,
    len: usize,
    entries: impl Iterator<Item = (Property, Value<'a>)>,
    users: &UserProperties<'a>,
) {
    vbi::write(w, len as u32);
    for (property, value) in entries.chain(pairs(users)) {
        w.u8(property.id());
        match value {
            Value::Byte(v) => w.u8(v),
            Value::U16(v) => w.u16(v),
            Value::U32(v) => w.u32(v),
            Value::Str(s) => w.binary(s.as_bytes()),
            Value::Bin(b) => w.binary(b),
            Value::Pair(name, value) => {
                w.binary(name);
                w.binary(value);
            }
        }
    }
}

/// User Properties as the block's values, after the other properties.
fn pairs<'a>(users: &UserProperties<'a>) -> impl Iterator<Item = (Property, Value<'a>)> {
    users.iter().map(|(name, value)| (Property::UserProperty, Value::Pair(name.as_bytes(), value.as_bytes())))
}
