//! Sticky sessions for 5.0 clients that send no client id.
//!
//! Such a client would be placed by its address, and the broker would assign it an id; its
//! reconnect with that id would then hash to some other broker, which has no session for it.
//! Instead the proxy assigns the id itself, random and unguessable, writes it into the CONNECT
//! with the crate's encoder and places the client by it; then it adds the id to the broker's
//! CONNACK as Assigned Client Identifier (5.0 [MQTT-3.1.3-7]), so that the client reconnects with
//! it and lands on the same broker. 3.1.1 needs none of this: an empty id there requires a
//! clean session (3.1.1 [MQTT-3.1.3-7]).

mod connack;

use std::fmt::Write;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_connect::{ConnackPacket, Connect, EncodeError, Protocol, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use crate::broker_connack::MAX_CONNACK;
use crate::config::{DEFAULT_CLIENT_ID_PREFIX, Route};

pub use connack::add_assigned_id;

/// Random bytes in an assigned id: 128 bits, beyond guessing.
const RANDOM_BYTES: usize = 16;

/// A client id the proxy assigned, and the CONNECT that carries it.
pub struct Assigned {
    pub id: String,
    /// The CONNECT re-encoded with the id.
    pub packet: Bytes,
}

/// The id for a 5.0 CONNECT with an empty client id, where the route assigns them; `None`
/// leaves the CONNECT as it came. A client that authenticates (an Authentication Method) gets
/// none: the broker's first packet may then be AUTH, and [`pass_connack`] reads only the first
/// for a CONNACK to add the id to, so the client would never learn it [MQTT-3.2.2-16].
pub fn assign(route: &Route, connect: &Connect<'_>) -> Option<Assigned> {
    if !route.assign_client_id || connect.protocol != Protocol::V5 || !connect.client_id.is_empty() {
        return None;
    }
    if connect.properties.authentication_method.is_some() {
        return None;
    }
    let id = new_id(route.client_id_prefix.as_deref().unwrap_or(DEFAULT_CLIENT_ID_PREFIX))
        .inspect_err(|e| tracing::warn!(error = %e, "no random client id; the broker assigns one"))
        .ok()?;
    let packet = with_client_id(connect, &id)
        .inspect_err(|e| tracing::warn!(error = %e, "no client id assigned; the broker assigns one"))
        .ok()?;
    Some(Assigned { id, packet })
}

/// `prefix` and 128 random bits in lowercase hex.
pub fn new_id(prefix: &str) -> Result<String, getrandom::Error> {
    let mut random = [0; RANDOM_BYTES];
    getrandom::fill(&mut random)?;
    let mut id = String::with_capacity(prefix.len() + 2 * RANDOM_BYTES);
    id.push_str(prefix);
    for byte in random {
        // Writing to a String cannot fail.
        write!(id, "{byte:02x}").ok();
    }
    Ok(id)
}

/// `connect` with `id` for its client id, encoded by the crate's encoder, which checks every
/// rule its decoder does: canonical, so it decodes to exactly that packet (the library's
/// `roundtrip` fuzz target checks this), and is not decoded again here.
pub fn with_client_id(connect: &Connect<'_>, id: &str) -> Result<Bytes, EncodeError> {
    let mut named = *connect;
    named.client_id = id;
    let mut out = BytesMut::new();
    named.encode_to(&mut out)?;
    Ok(out.freeze())
}

/// Why the broker's CONNACK did not reach the client.
#[derive(Debug)]
pub enum Unpassed {
    /// No CONNACK from the broker within the deadline, and nothing sent: the client can still
    /// be told.
    Silent,
    /// The broker or the client failed, or the client did not take the CONNACK in time.
    Io(io::Error),
}

/// Passes the broker's first packet to the client, with `id` added as Assigned Client
/// Identifier where [`add_assigned_id`] adds it, and whatever came after it untouched; returns
/// the bytes sent, for the relay to read the CONNACK from. Bytes that are no CONNACK, or one
/// over [`MAX_CONNACK`] (which the relay does not read either), go on as they came, as do those
/// before the broker closes. A broker whose CONNACK has not come within `deadline` is given up
/// on ([`Unpassed::Silent`]): passed on later, it would reach the client without the id, which
/// the client then never learns, and its session is lost to it [MQTT-3.2.2-16]. So is a client
/// that has not taken the CONNACK within the same deadline (`TimedOut`).
pub async fn pass_connack(
    upstream: &mut (impl AsyncRead + Unpin),
    client: &mut (impl AsyncWrite + Unpin),
    id: &str,
    deadline: Duration,
) -> Result<Vec<u8>, Unpassed> {
    let mut buf = BytesMut::with_capacity(128);
    let reading = async {
        loop {
            match ConnackPacket::decode_within(Protocol::V5, &buf, MAX_CONNACK) {
                Ok(Status::Complete { len, .. }) => return Ok::<_, io::Error>(Some(len)),
                Ok(Status::Incomplete(_)) => {}
                Err(_) => return Ok(None),
            }
            if upstream.read_buf(&mut buf).await? == 0 {
                return Ok(None);
            }
        }
    };
    let deadline = Instant::now() + deadline;
    let Ok(whole) = timeout_at(deadline, reading).await else { return Err(Unpassed::Silent) };
    let whole = whole.map_err(Unpassed::Io)?;
    let rewritten = whole.and_then(|len| {
        let (frame, rest) = buf.split_at_checked(len)?;
        let mut out = add_assigned_id(frame, id)?;
        out.extend_from_slice(rest);
        Some(out)
    });
    let out = rewritten.unwrap_or_else(|| buf.into());
    let writing = async {
        client.write_all(&out).await?;
        // TLS and WebSocket streams may hold written bytes until flushed.
        client.flush().await
    };
    match timeout_at(deadline, writing).await {
        Ok(written) => written.map(|()| out).map_err(Unpassed::Io),
        Err(_) => Err(Unpassed::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not take its CONNACK in time",
        ))),
    }
}
