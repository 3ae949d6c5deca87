//! Builders for raw CONNECT bytes, valid or not, so that each test shows the bytes it means;
//! encoding into a `Vec`; and the two assertions on decoding bytes.

use mqtt_connect::{Connect, Error, Status};

/// A u16 length, then the bytes: how strings and binary data are written.
pub fn s(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A Variable Byte Integer in its shortest form.
pub fn vbi(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A 5.0 property block: length, then the properties.
pub fn props(bytes: &[u8]) -> Vec<u8> {
    let mut out = vbi(bytes.len());
    out.extend_from_slice(bytes);
    out
}

/// The fixed header in front of `body`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x10];
    out.extend(vbi(body.len()));
    out.extend_from_slice(body);
    out
}

/// A whole packet: protocol name and level, flags, keep-alive 60, the property block (5.0
/// only: pass `None` for 3.x), then the payload bytes as given.
pub fn packet(name: &[u8], level: u8, flags: u8, properties: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let mut body = s(name);
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&60u16.to_be_bytes());
    if let Some(p) = properties {
        body.extend(props(p));
    }
    body.extend_from_slice(payload);
    frame(&body)
}

/// A 3.1.1 packet with clean session and the given payload.
pub fn v311(flags: u8, payload: &[u8]) -> Vec<u8> {
    packet(b"MQTT", 4, flags, None, payload)
}

/// A 5.0 packet.
pub fn v5(flags: u8, properties: &[u8], payload: &[u8]) -> Vec<u8> {
    packet(b"MQTT", 5, flags, Some(properties), payload)
}

/// Concatenates byte strings.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A packet that must encode, as bytes: `encoded_len` and `encode` must agree on its length.
pub fn encode(connect: &Connect<'_>) -> Vec<u8> {
    let len = connect.encoded_len().unwrap_or_else(|e| panic!("{connect:?} does not encode: {e}"));
    let mut buf = vec![0; len];
    assert_eq!(connect.encode(&mut buf), Ok(len), "encode and encoded_len disagree");
    buf
}

/// Decodes bytes that must be one whole valid packet.
pub fn ok(bytes: &[u8]) -> Connect<'_> {
    match mqtt_connect::decode(bytes) {
        Ok(Status::Complete { packet, len }) => {
            assert_eq!(len, bytes.len(), "the packet is the whole buffer");
            packet
        }
        other => panic!("expected a complete packet from {bytes:02x?}, got {other:?}"),
    }
}

/// Decodes bytes that must be refused, and checks the reason code.
pub fn err(bytes: &[u8], code: u8) -> Error {
    match mqtt_connect::decode(bytes) {
        Err(e) => {
            assert_eq!(u8::from(e.reason_code()), code, "reason code of {e:?}");
            e
        }
        other => panic!("expected an error from {bytes:02x?}, got {other:?}"),
    }
}
