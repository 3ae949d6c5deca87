// The PROXY protocol header (v1 text or v2 binary) that a load balancer in front of the proxy
// sends before the client's bytes: how long it is, from its first bytes, so that not a byte
// past it is read; and what it carries, parsed by the `ppp` crate, its checksum checked with
// the `crc` crate's.
//
// Sans-IO, so that the fuzz target `proxy_header` drives exactly what the listener runs.
//
// Plain comments, not `//!`: the test-support crate includes this file with `include!` for
// the fuzz checks, where an inner doc comment cannot stand.

use std::net::SocketAddr;

/// v2's first twelve bytes.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v1's first six.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// v1's longest header, CRLF included (the specification's section 2.1).
const V1_MAX: usize = 107;
/// v2's fixed part: signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// Largest v2 header taken. Balancers send addresses and a few small TLVs; the format allows
/// 64 KiB, which nobody needs buffered per connection.
const V2_MAX: usize = V2_FIXED + 1024;
/// Largest header of either version taken.
pub const MAX: usize = V2_MAX;

/// Whether a stream whose first byte is this may start with a PROXY header.
pub fn may_start(byte: u8) -> bool {
    byte == V1_PREFIX[0] || byte == V2_SIGNATURE[0]
}

/// How much of the stream to read next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// The header is this long in all; read up to it.
    Whole(usize),
    /// Not yet known: read this many more bytes, then ask again.
    More(usize),
}

/// From the bytes read so far, how long the header is, or why these bytes start none.
pub fn next(start: &[u8]) -> Result<Next, &'static str> {
    if start.first() == Some(&V2_SIGNATURE[0]) {
        let known = start.len().min(V2_SIGNATURE.len());
        if start.get(..known) != V2_SIGNATURE.get(..known) {
            return Err("not a PROXY v2 signature");
        }
        return match start.get(14..16) {
            Some(&[high, low]) => {
                let len = V2_FIXED + usize::from(u16::from_be_bytes([high, low]));
                if len > V2_MAX { Err("PROXY v2 header too long") } else { Ok(Next::Whole(len)) }
            }
            _ => Ok(Next::More(V2_FIXED.saturating_sub(start.len()))),
        };
    }
    let known = start.len().min(V1_PREFIX.len());
    if start.get(..known) != V1_PREFIX.get(..known) {
        return Err("not a PROXY header");
    }
    // Within the longest line only: a look ahead may see more than a header's bytes. The
    // first LF ends the line, which CRLF must end: a bare one is refused at once, not waited
    // past for a CRLF that cannot come in a header.
    let line = start.get(..V1_MAX).unwrap_or(start);
    if let Some(lf) = line.iter().position(|&b| b == b'\n') {
        let crlf = lf.checked_sub(1).and_then(|cr| line.get(cr)) == Some(&b'\r');
        return if crlf { Ok(Next::Whole(lf + 1)) } else { Err("PROXY v1 header not ended by CRLF") };
    }
    // The text header's end can only be found a byte at a time without reading past it.
    if start.len() >= V1_MAX { Err("PROXY v1 header without an end") } else { Ok(Next::More(1)) }
}

/// What a whole header says: the client's address and the address it connected to, or `None`
/// when the balancer speaks for itself (v2 LOCAL, v1 UNKNOWN, or an address family other than
/// IP, or a v2 transport other than a stream, whose addresses the specification has a
/// receiver ignore) and the connection's own addresses stand. The version is told by the first byte, as
/// `next` tells it: `ppp`'s `HeaderResult::parse` tries v1 after any v2 that fails, and so
/// names a bad v2 header as a bad v1 one.
pub fn parse(header: &[u8]) -> Result<Option<(SocketAddr, SocketAddr)>, String> {
    if header.first() == Some(&V2_SIGNATURE[0]) { parse_v2(header) } else { parse_v1(header) }
}

fn parse_v1(header: &[u8]) -> Result<Option<(SocketAddr, SocketAddr)>, String> {
    let h = ppp::v1::Header::try_from(header).map_err(|e| format!("bad PROXY v1 header: {e}"))?;
    // `ppp` also takes a bare LF; the spec, and `next`, end the line with CRLF only.
    if !header.ends_with(b"\r\n") {
        return Err("PROXY v1 header not ended by CRLF".into());
    }
    whole(h.header.len(), header)?;
    Ok(match h.addresses {
        ppp::v1::Addresses::Tcp4(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        ppp::v1::Addresses::Tcp6(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        ppp::v1::Addresses::Unknown => None,
    })
}

fn parse_v2(header: &[u8]) -> Result<Option<(SocketAddr, SocketAddr)>, String> {
    let h = ppp::v2::Header::try_from(header).map_err(|e| format!("bad PROXY v2 header: {e}"))?;
    whole(h.header.len(), header)?;
    tlvs(header, &h)?;
    // A TCP client's addresses only: the specification's own receiver takes no others.
    if h.protocol != ppp::v2::Protocol::Stream {
        return Ok(None);
    }
    Ok(match (h.command, h.addresses) {
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        _ => None,
    })
}

/// CRC-32C (Castagnoli), as `PP2_TYPE_CRC32C` carries it.
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The TLVs, in one walk. They are not used, but must fill the header exactly, as HAProxy has
/// them: `ppp` frames them only when asked. And a `PP2_TYPE_CRC32C` TLV must match the header:
/// the specification has a receiver that can check it do so, over the whole header with the
/// TLV's value taken as zero, as HAProxy does. A header without one is taken as it is.
fn tlvs(header: &[u8], h: &ppp::v2::Header) -> Result<(), String> {
    let mut at = header.len().saturating_sub(h.tlv_bytes().len());
    for tlv in h.tlvs() {
        let tlv = tlv.map_err(|e| format!("bad PROXY v2 header: {e}"))?;
        let value_at = at + 3;
        at = value_at + tlv.value.len();
        if tlv.kind != ppp::v2::Type::CRC32C as u8 {
            continue;
        }
        let sent = <[u8; 4]>::try_from(&*tlv.value).map_err(|_| "PROXY v2 CRC32C TLV not 4 bytes long")?;
        let mut digest = CRC32C.digest();
        digest.update(header.get(..value_at).unwrap_or_default());
        digest.update(&[0; 4]);
        digest.update(header.get(at..).unwrap_or_default());
        if digest.finalize() != u32::from_be_bytes(sent) {
            return Err("PROXY v2 header does not match its CRC32C".into());
        }
    }
    Ok(())
}

/// Whether the header `ppp` read is all of `header`.
fn whole(parsed: usize, header: &[u8]) -> Result<(), String> {
    if parsed == header.len() { Ok(()) } else { Err("PROXY header length disagrees with its content".into()) }
}
