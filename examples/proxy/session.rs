//! One client connection, top to bottom: (WebSocket upgrade) → read CONNECT → decode → route →
//! (sticky id) → connect upstream → forward → (sticky CONNACK) → relay; then one log line that
//! says how it went. Over WebSocket, every step after the upgrade is the one TCP clients get.
//!
//! Every MQTT decision (is the packet whole, is it valid, what to answer, which upstream) is the
//! crate's; this file only moves bytes and keeps time.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqtt_connect::routing::rank;
use mqtt_connect::{Connack, Connect, Protocol, ReasonCode, Status, protocol_of};
use ppp::v2;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::{Config, Limits, Miss, Route, Upstream};
use crate::health::Health;
use crate::relay::{self, First, Traffic};
use crate::{sticky, ws};

/// After a refusal, how long the client's further bytes are read and dropped, so that closing
/// with unread input does not reset the connection and lose the CONNACK on its way.
const LINGER: Duration = Duration::from_secs(1);

/// Proxies one client connection, accepted on the listen address `listen`, to the end, then
/// logs it.
pub async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    config: &Config,
    health: &Health,
) {
    let started = Instant::now();
    let mut log = Log::default();
    let end = match (client.local_addr(), config.websocket(listen)) {
        (Err(e), _) => Err(End::Failed(e)),
        (Ok(local), None) => proxy(client, (peer, local), config, health, &mut log).await,
        (Ok(local), Some(listener)) => {
            log.transport = "ws";
            match ws::upgrade(client, &listener.path, config.limits.connect_deadline()).await {
                Ok(client) => proxy(client, (peer, local), config, health, &mut log).await,
                Err(refused) => Err(End::WebSocket(refused)),
            }
        }
    };
    log.write(peer, started.elapsed(), &end.unwrap_or_else(|end| end));
}

/// Over the connection cap: reads the CONNECT to learn the client's version, answers "server
/// busy" in it, and closes.
pub async fn refuse_busy(client: TcpStream, peer: SocketAddr, listen: SocketAddr, config: &Config) {
    let started = Instant::now();
    let limits = &config.limits;
    let end = match config.websocket(listen) {
        None => busy(client, limits).await,
        Some(listener) => match ws::upgrade(client, &listener.path, limits.connect_deadline()).await {
            Ok(client) => busy(client, limits).await,
            Err(refused) => End::WebSocket(refused),
        },
    };
    Log::default().write(peer, started.elapsed(), &end);
}

async fn busy(mut client: impl AsyncRead + AsyncWrite + Unpin, limits: &Limits) -> End {
    match read_connect(&mut client, limits).await {
        Ok(buf) => {
            let busy = protocol_of(&buf).and_then(|p| p.connack(ReasonCode::ServerBusy));
            refuse(&mut client, busy, Why::Busy).await
        }
        Err(end) => end,
    }
}

/// The steps in order. Each that stops the connection returns how it ended, as `Err`.
/// `addresses` are the client's and the proxy's ends of the connection.
async fn proxy(
    mut client: impl AsyncRead + AsyncWrite + Unpin,
    addresses: (SocketAddr, SocketAddr),
    config: &Config,
    health: &Health,
    log: &mut Log,
) -> Result<End, End> {
    let (peer, _) = addresses;
    let limits = &config.limits;
    let buf = read_connect(&mut client, limits).await?;
    let (connect, len) =
        decode(&mut client, &buf, limits).await.inspect_err(|_| log.version = protocol_of(&buf))?;
    log.client_id = Some(connect.client_id.to_owned());
    log.version = Some(connect.protocol);

    let route = route(&mut client, config, peer, &connect).await?;
    log.route = Some(route.name.clone());
    // A 5.0 client without a client id gets the proxy's, and is placed as if it had sent it.
    let assigned = sticky::assign(route, &connect, &buf, len);
    let connect = assigned.as_ref().map_or(connect, |assigned| assigned.placed(&connect));
    if let Some(assigned) = &assigned {
        log.client_id = Some(assigned.id.clone());
    }

    // The client's address stands in for an empty key, as in APISIX; spelt out only then.
    let peer_ip;
    let key = match route.key.of(&connect) {
        Some(key) => key,
        None => {
            peer_ip = peer.ip().to_string();
            peer_ip.as_bytes()
        }
    };
    let Some((mut upstream, node)) = connect_upstream(route, key, limits, health).await else {
        let unavailable = connect.protocol.connack(ReasonCode::ServerUnavailable);
        return Err(refuse(&mut client, unavailable, Why::Unavailable).await);
    };
    log.upstream = Some(node.addr.clone());

    let (buf, assigned) = match assigned {
        Some(assigned) => (assigned.packet, Some(assigned.id)),
        None => (buf, None),
    };
    log.traffic.up = buf.len() as u64;
    forward(&mut upstream, route, addresses, buf).await.map_err(End::Failed)?;
    // It learns the id from the broker's CONNACK.
    if let Some(id) = assigned {
        let deadline = limits.connect_deadline();
        log.traffic.down =
            sticky::pass_connack(&mut upstream, &mut client, &id, deadline).await.map_err(End::Failed)?;
    }
    let first = relay::relay(client, upstream, &mut log.traffic).await.map_err(End::Failed)?;
    Ok(match first {
        First::Client => End::ClientClosed,
        First::Upstream => End::UpstreamClosed,
    })
}

/// Buffers until the decoder says the CONNECT is whole or refuses it, within one deadline for
/// the whole packet. The cap and a wrong first byte are the decoder's to find, from the first
/// bytes, so nothing past the cap is ever buffered.
async fn read_connect(client: &mut (impl AsyncRead + Unpin), limits: &Limits) -> Result<BytesMut, End> {
    let decoder = limits.decoder();
    let mut buf = BytesMut::with_capacity(256);
    let reading = async {
        while let Ok(Status::Incomplete(_)) = decoder.decode(&buf) {
            if client.read_buf(&mut buf).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
        }
        Ok(())
    };
    match timeout(limits.connect_deadline(), reading).await {
        Ok(Ok(())) => Ok(buf),
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(End::ClosedBeforeConnect),
        Ok(Err(e)) => Err(End::Failed(e)),
        Err(_) => Err(End::Deadline),
    }
}

/// The packet and its length, or the broker's answer to it and a close: nothing refused is
/// forwarded.
async fn decode<'b>(
    client: &mut (impl AsyncRead + AsyncWrite + Unpin),
    buf: &'b [u8],
    limits: &Limits,
) -> Result<(Connect<'b>, usize), End> {
    match limits.decoder().decode(buf) {
        Ok(Status::Complete { packet, len }) => Ok((packet, len)),
        Err(e) => Err(refuse(client, e.connack(buf), Why::Invalid(e)).await),
        // read_connect returns only once the packet is whole or refused.
        Ok(Status::Incomplete(_)) => Err(End::ClosedBeforeConnect),
    }
}

/// The first route that takes this client. A route that differs only in protocol level means
/// the version is what is unsupported, and the client is told so.
async fn route<'c>(
    client: &mut (impl AsyncRead + AsyncWrite + Unpin),
    config: &'c Config,
    peer: SocketAddr,
    connect: &Connect<'_>,
) -> Result<&'c Route, End> {
    match config.route(peer.ip(), connect.protocol) {
        Ok(route) => Ok(route),
        Err(Miss::Level) => {
            let unsupported = connect.protocol.connack(ReasonCode::UnsupportedProtocolVersion);
            Err(refuse(client, unsupported, Why::VersionNotRouted).await)
        }
        Err(Miss::Nothing) => Err(refuse(client, None, Why::NoRoute).await),
    }
}

/// Tries the route's upstreams in the crate's rendezvous order for this key; those marked
/// down go last, as their marks may be stale. A failure marks the upstream down.
async fn connect_upstream<'r>(
    route: &'r Route,
    key: &[u8],
    limits: &Limits,
    health: &Health,
) -> Option<(TcpStream, &'r Upstream)> {
    let (up, down): (Vec<&Upstream>, Vec<&Upstream>) =
        rank(key, &route.upstreams).filter_map(|i| route.upstreams.get(i)).partition(|u| !health.is_down(u));
    for upstream in up.into_iter().chain(down) {
        let failure = match timeout(limits.upstream_timeout(), TcpStream::connect(&upstream.addr)).await {
            Ok(Ok(stream)) => {
                health.mark_up(upstream);
                // MQTT packets are small and latency-bound; don't let Nagle hold them back.
                stream.set_nodelay(true).ok();
                return Some((stream, upstream));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        tracing::warn!(upstream = %upstream, error = %failure, "upstream connect failed; marked down");
        health.mark_down(upstream, limits.down_for());
    }
    None
}

/// Writes the CONNECT exactly as received, with whatever the client pipelined after it, behind
/// a PROXY protocol v2 header if the route asks for one; then frees the buffer before the relay
/// starts.
async fn forward(
    upstream: &mut TcpStream,
    route: &Route,
    addresses: (SocketAddr, SocketAddr),
    buf: BytesMut,
) -> io::Result<()> {
    if !route.proxy_protocol {
        return upstream.write_all(&buf).await;
    }
    let command = v2::Version::Two | v2::Command::Proxy;
    let mut bytes = v2::Builder::with_addresses(command, v2::Protocol::Stream, addresses).build()?;
    bytes.extend_from_slice(&buf);
    upstream.write_all(&bytes).await
}

/// Answers `ack`, if there is one, and closes. Input still arriving is read and dropped for a
/// moment, so that the close does not become a reset that loses the answer.
async fn refuse(client: &mut (impl AsyncRead + AsyncWrite + Unpin), ack: Option<Connack>, why: Why) -> End {
    // Byte 3 of a CONNACK is its code, in every version.
    let answered = ack.as_ref().and_then(|ack| ack.as_bytes().get(3).copied());
    if let Some(ack) = ack {
        // Best effort: a client that already left cannot be told.
        client.write_all(ack.as_bytes()).await.ok();
    }
    client.shutdown().await.ok();
    let mut sink = vec![0; 4096];
    timeout(LINGER, async { while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {} }).await.ok();
    End::Refused { why, answered }
}

/// How a connection ended, for its log line.
enum End {
    ClientClosed,
    UpstreamClosed,
    ClosedBeforeConnect,
    Deadline,
    /// `answered` is the CONNACK return or reason code sent, if one was.
    Refused {
        why: Why,
        answered: Option<u8>,
    },
    Failed(io::Error),
    /// The WebSocket upgrade, refused or failed.
    WebSocket(ws::Refused),
}

/// Why a connection was refused before it reached an upstream.
enum Why {
    Invalid(mqtt_connect::Error),
    NoRoute,
    VersionNotRouted,
    Unavailable,
    Busy,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientClosed => f.write_str("client closed"),
            Self::UpstreamClosed => f.write_str("upstream closed"),
            Self::ClosedBeforeConnect => f.write_str("client closed before a whole CONNECT"),
            Self::Deadline => f.write_str("timeout: no whole CONNECT by the deadline"),
            Self::Refused { why, answered: Some(code) } => write!(f, "refused ({why}): CONNACK {code:#04x}"),
            Self::Refused { why, answered: None } => write!(f, "refused ({why}): closed"),
            Self::Failed(e) => write!(f, "error: {e}"),
            Self::WebSocket(ws::Refused(why)) => f.write_str(why),
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "{e}"),
            Self::NoRoute => f.write_str("no route"),
            Self::VersionNotRouted => f.write_str("no route for this protocol version"),
            Self::Unavailable => f.write_str("no upstream reachable"),
            Self::Busy => f.write_str("connection cap reached"),
        }
    }
}

/// What is known of a connection so far.
#[derive(Default)]
struct Log {
    /// `ws` for MQTT over WebSocket; plain TCP otherwise.
    transport: &'static str,
    client_id: Option<String>,
    version: Option<Protocol>,
    route: Option<String>,
    upstream: Option<String>,
    traffic: Traffic,
}

impl Log {
    fn write(&self, peer: SocketAddr, took: Duration, end: &End) {
        let unknown = |field: &Option<String>| field.clone().unwrap_or_else(|| "-".into());
        tracing::info!(
            %peer,
            transport = %if self.transport.is_empty() { "tcp" } else { self.transport },
            client_id = %unknown(&self.client_id),
            version = %self.version.map_or("-", version_name),
            route = %unknown(&self.route),
            upstream = %unknown(&self.upstream),
            bytes_up = self.traffic.up,
            bytes_down = self.traffic.down,
            ms = took.as_millis() as u64,
            %end,
        );
    }
}

fn version_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::V3_1 => "3.1",
        Protocol::V3_1_1 => "3.1.1",
        Protocol::V5 => "5.0",
        _ => "?",
    }
}
