//! The standard's rules on CONNECT and CONNACK, one function per rule, each named after it with
//! its rule id in its doc comment. The decoders refuse a packet that breaks one; the encoders
//! refuse to write one; the codecs hold a handshake's two packets to those between them.

use crate::error::{Error, Field, ReasonCode};
use crate::spec::{
    BRIDGE_BIT, CONNACK_BYTE, CONNECT_BYTE, ConnectFlags, PayloadFormat, Property, Protocol, QoS,
};
use crate::wire::scan;

/// [MQTT-1.5.4-2] (5.0; [MQTT-1.5.3-2] in 3.1.1) A UTF-8 string must not hold U+0000; nor
/// must a topic name [MQTT-4.7.3-2].
#[inline(always)] // once per string on the decode path; the kernel inside is the real body
pub(crate) fn no_null_character(text: &str, field: Field) -> Result<(), Error> {
    if scan::has_zero_byte(text.as_bytes()) {
        return Err(Error::NullCharacter { field });
    }
    Ok(())
}

/// [MQTT-1.5.5-1] (5.0) A Variable Byte Integer is written in the fewest bytes: the one check
/// of it, for the Remaining Length of either packet and for every integer inside one. 3.1.1
/// does not say so, and mosquitto accepts a longer one there.
#[inline]
pub(crate) const fn variable_byte_integer_is_minimal(minimal: bool, field: Field) -> Result<(), Error> {
    if minimal { Ok(()) } else { Err(Error::VbiNotMinimal { field }) }
}

/// (5.0 section 1.5.4, 3.1.1 section 1.5.3) A string SHOULD NOT hold a control character,
/// U+0001..U+001F or U+007F..U+009F, and a receiver MAY close the connection when one
/// does. A policy the decoder opts in to; see
/// [`Decoder::refuse_control_characters`](crate::Decoder::refuse_control_characters).
pub(crate) fn no_control_character(text: &str, field: Field) -> Result<(), Error> {
    if scan::has_control_character(text) {
        return Err(Error::ControlCharacter { field });
    }
    Ok(())
}

/// [MQTT-3.1.2-2] (3.1.1 and 5.0) A server refuses a protocol level it does not support in its
/// own version: a 3.1.1 server a 5.0 CONNECT with return code 0x01 in 3.1.1's form, which it
/// must; a 5.0 server a 3.x CONNECT with 0x84 in 5.0's, which it may. Whether a CONNACK in
/// 5.0's form (`connack_v5`) or not, with `code`, is that refusal of a CONNECT of `connect`:
/// the one CONNACK in another version than the CONNECT it answers. (3.1's and 3.1.1's forms are
/// the same bytes.)
pub(crate) fn unsupported_version_in_servers_version(
    connect: Protocol,
    connack_v5: bool,
    code: ReasonCode,
) -> bool {
    connect.is_v5() != connack_v5 && code == ReasonCode::UnsupportedProtocolVersion
}

/// [MQTT-4.7.3-1] and [MQTT-4.7.0-1] (3.1.1 [MQTT-4.7.1-1]; PUBLISH's [MQTT-3.3.2-2]) A topic
/// name, as the will topic and the Response Topic are, holds at least one character and no
/// wildcard.
#[inline(always)] // once per will on the decode path, two short tests
pub(crate) fn topic_name(topic: &str, field: Field) -> Result<(), Error> {
    if topic.is_empty() {
        return Err(Error::EmptyTopic { field });
    }
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(Error::WildcardInTopic { field });
    }
    Ok(())
}

/// [MQTT-3.1.3-7] and [MQTT-3.1.3-8] (3.1.1) An empty client id needs clean session, which a
/// client sets and a server checks; [MQTT 3.1, 3.1] a 3.1 client id has 1 to 23 characters,
/// the upper limit when `limit_v3_1` asks for it. 5.0 leaves an empty id to the server
/// [MQTT-3.1.3-6].
#[inline(always)] // once per decode, and mostly the one `match` on the version
pub(crate) fn client_id(
    protocol: Protocol,
    id: &str,
    clean_start: bool,
    limit_v3_1: bool,
) -> Result<(), Error> {
    match protocol {
        Protocol::V3_1 if id.is_empty() => Err(Error::EmptyClientId),
        Protocol::V3_1 if limit_v3_1 && id.chars().nth(23).is_some() => Err(Error::ClientIdTooLong),
        Protocol::V3_1_1 if id.is_empty() && !clean_start => Err(Error::EmptyClientId),
        _ => Ok(()),
    }
}

/// [MQTT-3.1.0-1] The first packet a client sends is a CONNECT: the high four bits of its first
/// byte are 1. Known from the first byte, so before the rest arrives.
#[inline(always)] // on every first byte the CONNECT decoder sees; one test
pub(crate) const fn connect_comes_first(first: u8) -> Result<(), Error> {
    if first >> 4 != CONNECT_BYTE >> 4 {
        return Err(Error::NotConnect { byte: first });
    }
    Ok(())
}

/// (3.1.1 [MQTT-3.2.0-1]) The first packet a server sends is a CONNACK: the high four bits of
/// its first byte are 2. (5.0 lets AUTH come first, which the `ConnackCodec` hands back.)
pub(crate) const fn connack_comes_first(first: u8) -> Result<(), Error> {
    if first >> 4 != CONNACK_BYTE >> 4 {
        return Err(Error::NotConnack { byte: first });
    }
    Ok(())
}

/// [MQTT-2.1.3-1] (3.1.1 [MQTT-2.2.2-1], [MQTT-2.2.2-2]) The flags of a CONNECT's or a
/// CONNACK's fixed header, the low four bits of its first byte, are reserved as 0.
#[inline(always)] // on every first byte the decoders see; one test
pub(crate) const fn fixed_header_flags_are_zero(first: u8) -> Result<(), Error> {
    if first & 0x0F != 0 {
        return Err(Error::FixedHeaderFlags { flags: first & 0x0F });
    }
    Ok(())
}

/// A packet, its fixed header and Remaining Length together, is within the receiver's cap: a
/// server's own for a CONNECT, and for a CONNACK the client's (5.0 [MQTT-3.1.2-24]). Gives the
/// Remaining Length as a `usize`; one that does not fit is over any cap.
#[inline(always)] // on every fixed header the decoders read: an add and a compare
pub(crate) fn within_cap(header_len: usize, remaining: u32, limit: u32) -> Result<usize, Error> {
    let size = header_len as u64 + u64::from(remaining);
    match usize::try_from(remaining) {
        Ok(remaining) if size <= u64::from(limit) => Ok(remaining),
        _ => Err(Error::PacketTooLarge { size: u32::try_from(size).unwrap_or(u32::MAX), limit }),
    }
}

/// [MQTT-3.1.2-1] The protocol name is "MQTT", or 3.1's "MQIsdp" [MQTT 3.1, 3.1]; whether it
/// is 3.1's.
#[inline] // once per decode: a compare of at most six bytes
pub(crate) fn protocol_name(name: &[u8]) -> Result<bool, Error> {
    match name {
        b"MQTT" => Ok(false),
        b"MQIsdp" => Ok(true),
        _ => Err(Error::UnknownProtocolName),
    }
}

/// [MQTT-3.1.2-2] The level byte names a version that the protocol name pairs with, 3 for
/// "MQIsdp" and 4 or 5 for "MQTT", with the bridge bit where
/// [`bridge_bit_on_3x_only`] and `allow_bridge` take it. The version, and whether the bridge
/// bit is set.
#[inline] // once per decode, on the path to every field
pub(crate) fn protocol_level(mqisdp: bool, level: u8, allow_bridge: bool) -> Result<(Protocol, bool), Error> {
    let protocol = match (mqisdp, level & !BRIDGE_BIT) {
        (true, 3) => Protocol::V3_1,
        (false, 4) => Protocol::V3_1_1,
        (false, 5) => Protocol::V5,
        _ => return Err(Error::UnsupportedProtocolLevel { level }),
    };
    let bridge = level & BRIDGE_BIT != 0;
    if bridge && !allow_bridge {
        return Err(Error::UnsupportedProtocolLevel { level });
    }
    bridge_bit_on_3x_only(protocol, bridge)?;
    Ok((protocol, bridge))
}

/// [MQTT-3.1.2-2] The bridge bit on the level byte is mosquitto's convention for 3.1 and
/// 3.1.1 bridges; on 5.0, level 0x85 is not 5, so it is an unsupported version.
pub(crate) const fn bridge_bit_on_3x_only(protocol: Protocol, bridge: bool) -> Result<(), Error> {
    if bridge && protocol.is_v5() {
        return Err(Error::UnsupportedProtocolLevel { level: BRIDGE_BIT | protocol.level() });
    }
    Ok(())
}

/// [MQTT-3.1.2-22] (3.x) A password needs a user name; 5.0 allows one alone.
pub(crate) const fn password_needs_user_name(
    protocol: Protocol,
    username: bool,
    password: bool,
) -> Result<(), Error> {
    if password && !username && !protocol.is_v5() {
        return Err(Error::PasswordWithoutUsername);
    }
    Ok(())
}

/// [MQTT-3.1.2-3] The reserved Connect Flag is 0.
pub(crate) const fn reserved_flag_is_zero(flags: ConnectFlags) -> Result<(), Error> {
    if flags.reserved() {
        return Err(Error::ReservedFlag);
    }
    Ok(())
}

/// [MQTT-3.1.2-14] (5.0 [MQTT-3.1.2-12]) The will QoS is 0, 1 or 2.
pub(crate) const fn will_qos(flags: ConnectFlags) -> Result<QoS, Error> {
    match flags.will_qos_bits() {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        _ => Err(Error::InvalidWillQos),
    }
}

/// [MQTT-3.1.2-13] and [MQTT-3.1.2-15] (5.0 [MQTT-3.1.2-11], [MQTT-3.1.2-13]) Without the
/// will flag, will QoS and will retain are 0.
pub(crate) const fn will_flags_need_will(flags: ConnectFlags, qos: QoS) -> Result<(), Error> {
    if !flags.will() && (!matches!(qos, QoS::AtMostOnce) || flags.will_retain()) {
        return Err(Error::WillFlagsWithoutWill);
    }
    Ok(())
}

/// (5.0 3.1.2.11.2 to 3.1.2.11.10, 3.1.3.2.2 to 3.1.3.2.7, 3.2.2.3.2 to 3.2.2.3.18) "It is a
/// Protocol Error to include" any property but User Property "more than once". `seen` has a
/// bit set for each id read so far in the block.
#[inline(always)] // once per property on the decode path; a shift, a test and an or
pub(crate) const fn property_at_most_once(seen: &mut u64, property: Property) -> Result<(), Error> {
    // Every allowed id is below 64, so one bit each.
    let bit = 1u64 << (property.id() & 63);
    if *seen & bit != 0 {
        return Err(Error::DuplicateProperty { property });
    }
    *seen |= bit;
    Ok(())
}

/// (5.0 3.1.2.11.3, 3.2.2.3.3) Receive Maximum is not 0.
pub(crate) const fn receive_maximum_not_zero(value: u16) -> Result<(), Error> {
    if value == 0 {
        return Err(Error::InvalidPropertyValue { property: Property::ReceiveMaximum });
    }
    Ok(())
}

/// (5.0 3.1.2.11.4, 3.2.2.3.6) Maximum Packet Size is not 0.
pub(crate) const fn maximum_packet_size_not_zero(value: u32) -> Result<(), Error> {
    if value == 0 {
        return Err(Error::InvalidPropertyValue { property: Property::MaximumPacketSize });
    }
    Ok(())
}

/// (5.0 3.1.2.11.6, 3.1.2.11.7, 3.1.3.2.3; CONNACK 3.2.2.3.4, 3.2.2.3.5, 3.2.2.3.11,
/// 3.2.2.3.12, 3.2.2.3.13) Request Response Information, Request Problem Information, the
/// Payload Format Indicator, and CONNACK's Maximum QoS, Retain Available, Wildcard
/// Subscription Available, Subscription Identifiers Available and Shared Subscription
/// Available are 0 or 1.
pub(crate) const fn byte_flag_is_0_or_1(property: Property, value: u8) -> Result<(), Error> {
    if value > 1 {
        return Err(Error::InvalidPropertyValue { property });
    }
    Ok(())
}

/// (5.0 3.1.2.11.10) Authentication Data needs an Authentication Method.
pub(crate) const fn authentication_data_needs_method(method: bool, data: bool) -> Result<(), Error> {
    if data && !method {
        return Err(Error::AuthenticationDataWithoutMethod);
    }
    Ok(())
}

/// (5.0 3.1.3.2.3) A will payload whose Payload Format Indicator is 1 is well-formed UTF-8.
/// A client MUST send it so, and the encoder holds to it; a server MAY check it, which the
/// decoder does when asked to.
#[inline(always)] // once per will, and only with the option on; `from_utf8` is the body
pub(crate) fn will_payload_matches_format(
    format: Option<PayloadFormat>,
    payload: &[u8],
) -> Result<(), Error> {
    if format == Some(PayloadFormat::Utf8) && core::str::from_utf8(payload).is_err() {
        return Err(Error::InvalidPayloadFormat);
    }
    Ok(())
}

/// [MQTT-3.2.2-1] (5.0; 3.1.1 section 3.2.2.1 says so with no rule id, its [MQTT-3.2.2-1]
/// being Session Present 0 on a clean session) The reserved bits 7..1 of the Connect
/// Acknowledge Flags are 0; 3.1 has no Session Present, so its whole byte is reserved.
pub(crate) const fn ack_flags_reserved_bits_are_zero(protocol: Protocol, flags: u8) -> Result<(), Error> {
    let reserved = if matches!(protocol, Protocol::V3_1) { 0xFF } else { 0xFE };
    if flags & reserved != 0 {
        return Err(Error::ReservedAckFlags { flags });
    }
    Ok(())
}

/// [MQTT-3.2.2-6] (5.0; [MQTT-3.2.2-4] in 3.1.1) A CONNACK with a non-zero code has Session
/// Present 0.
pub(crate) const fn session_present_needs_success(session_present: bool, code: u8) -> Result<(), Error> {
    if session_present && code != 0 {
        return Err(Error::SessionPresentWithError { code });
    }
    Ok(())
}

/// [MQTT-3.2.2-2] (3.1.1 [MQTT-3.2.2-1]) A server that accepts a Clean Start sets Session
/// Present to 0; a client that sent one has no session to resume, and closes on a 1 (5.0
/// [MQTT-3.2.2-4]). Only the codecs know the CONNECT a CONNACK answers: the `ConnackCodec`
/// refuses to read such a CONNACK, the `ConnectCodec` to write one.
#[cfg(feature = "tokio-util")]
pub(crate) const fn no_session_after_clean_start(
    clean_start: bool,
    session_present: bool,
) -> Result<(), Error> {
    if clean_start && session_present {
        return Err(Error::SessionPresentAfterCleanStart);
    }
    Ok(())
}

/// [MQTT-4.12.0-6] A server begins enhanced authentication only when the CONNECT named an
/// Authentication Method: without one it sends no AUTH packet, and no Authentication Method in
/// its CONNACK. Only the `ConnackCodec` knows the CONNECT a CONNACK answers.
#[cfg(feature = "tokio-util")]
pub(crate) const fn no_authentication_unasked(asked: bool, begun: bool) -> Result<(), Error> {
    if begun && !asked {
        return Err(Error::UnaskedAuthentication);
    }
    Ok(())
}

/// [MQTT-4.12.0-5] A successful CONNACK to a CONNECT that named an Authentication Method
/// carries one, the same. The codecs keep no copy of the CONNECT's, so they check that there is
/// one; that it is the same is the caller's to check.
#[cfg(feature = "tokio-util")]
pub(crate) const fn success_carries_authentication_method(
    named: bool,
    success: bool,
    carried: bool,
) -> Result<(), Error> {
    if named && success && !carried {
        return Err(Error::AuthenticationMethodMissing);
    }
    Ok(())
}
