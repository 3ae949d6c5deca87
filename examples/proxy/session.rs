//! One client connection, top to bottom: arrive (PROXY header, TLS, WebSocket upgrade) → read
//! CONNECT → decode → route → identity → sticky id → connect upstream → forward → (sticky
//! CONNACK) → relay; then one log line that says how it went. Every step after the arrival is
//! the same over TCP, TLS and WebSocket.
//!
//! Every MQTT decision (is the packet whole, is it valid, what to answer, which upstream) is the
//! crate's; this file only moves bytes and keeps time.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_connect::routing::rank;
use mqtt_connect::{
    Connack, Connect, EncodeError, Error, OwnedConnect, Protocol, ReasonCode, Status, protocol_of,
};
use ppp::v2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::client::Client;
use crate::config::{Config, Identity, Limits, Listener, Miss, Route, Upstream, Without};
use crate::dial::dial;
use crate::edge::{self, Arrival, Refused};
use crate::health::{Health, Verdict};
use crate::idle::{Activity, Cut, Quiet};
use crate::limits::{Charge, Guards, is_local};
use crate::logfmt;
use crate::metrics::{EndLabels, Metrics};
use crate::proxy_header;
use crate::relay::{self, First, Traffic};
use crate::sticky;
use crate::ws;

/// After a refusal, how long the client's further bytes are read and dropped, so that closing
/// with unread input does not reset the connection and lose the CONNACK on its way.
const LINGER: Duration = Duration::from_secs(1);

/// How a client was accepted.
pub struct Accepted {
    /// The socket's peer.
    pub peer: SocketAddr,
    /// The configured address of the listener that took it.
    pub listen: SocketAddr,
    /// The listener trusts the peer for a PROXY header, so the connection-rate limit was left
    /// at accept for the client's own address, once the header has named it.
    pub rate_after_edge: bool,
}

/// Proxies one client connection to the end, then logs it.
///
/// An idle connection is mostly this future, so it is kept small (the spawned task's cell went
/// from 2,432 to 768 bytes, `-Zprint-type-sizes`; cells come in 128-byte steps, and the
/// future has 24 bytes to spare in this one): the steps up to the relay are boxed, and so
/// freed before it, and what the relay keeps is built in place. That is why this is a plain
/// function returning an `async` block: an `async fn` keeps its arguments for its whole life,
/// and a value moved out of a local only in part (as out of a `Result` in a `match`) keeps the
/// local's room across every later `.await`. The log and the arrival, which the steps fill and
/// read, are kept here, in room the relay takes only later, rather than in the boxes.
///
/// The drain deadline cuts a connection wherever it is: on its way to the relay (one race over
/// all the steps, not one for each), or relaying.
pub fn serve<'a>(
    client: TcpStream,
    accepted: Accepted,
    config: &'a Config,
    health: &'a Health,
    guards: &'a Guards,
) -> impl Future<Output = ()> + 'a {
    let started = Instant::now();
    let Accepted { mut peer, listen, rate_after_edge } = accepted;
    let listener = config.listener(listen);
    let arriving = Box::pin(edge::arrive(client, peer, listener, &config.limits));
    async move {
        let mut log = Log::new(listener);
        let steps = async {
            let (arrived, arrival) = arriving.await;
            (peer, log.edge) = (arrival.peer, arrival.describe());
            let mut client = arrived.map_err(End::Edge)?;
            // Only now: a refused client's transport stays the listener's, as its own never came.
            log.transport = arrival.transport();
            let steps = proxy(&mut client, &arrival, rate_after_edge, config, health, guards, &mut log);
            let (upstream, protocol, sent_down, keep_alive) = Box::pin(steps).await?;
            Ok((client, upstream, protocol, sent_down, keep_alive))
        };
        // In a block of its own, so that the relay does not keep the room of `opened`.
        let (client, upstream, protocol, sent_down, keep_alive) = {
            let opened = guards.drained().or_cut(pin!(steps)).await;
            match opened {
                Some(Ok(opened)) => opened,
                Some(Err(end)) => return log.close(peer, started, &end, &guards.metrics),
                None => return log.close(peer, started, &End::Cut(Cut::Drained), &guards.metrics),
            }
        };
        let activity = Activity::new(Quiet::new(&config.limits), keep_alive);
        let relaying =
            relay::relay(client, upstream, protocol, sent_down, &mut log.traffic, activity, guards.drained());
        let end = match relaying.await {
            Ok(First::Client) => End::ClientClosed,
            Ok(First::Upstream) => End::UpstreamClosed,
            Ok(First::Cut(cut)) => End::Cut(cut),
            Err(e) => io_end(e),
        };
        log.close(peer, started, &end, &guards.metrics);
    }
}

/// The steps after the arrival, in order: the rate limit left for after it, then [`open`].
/// One that stops the connection returns how it ended, as `Err`, after a refusal's
/// [`linger`], which the drain deadline cuts short. Its future is boxed by
/// [`serve`] and lives only until the relay; still, thousands of clients connecting at once
/// hold thousands of them, and the heap keeps the room they leave. So the log and the arrival
/// are borrowed from [`serve`]'s future, where the relay's room is free until then: with the
/// arrival boxed apart, what was one box of 1,792 bytes was one of 1,360 (`-Zprint-type-sizes`);
/// 1,712 now, with the upstream dial, which writes the CONNECT from inside it.
async fn proxy<'c>(
    client: &mut Client,
    arrival: &Arrival,
    rate_after_edge: bool,
    config: &'c Config,
    health: &Health,
    guards: &Guards,
    log: &mut Log<'c>,
) -> Result<(TcpStream, Protocol, Vec<u8>, u16), End> {
    let opened = if rate_after_edge && !guards.admits(arrival.peer.ip()) {
        Err(refuse_version(client, &config.limits, Early::Rate, &mut log.version).await)
    } else {
        open(client, arrival, config, health, guards, log).await
    };
    if let Err(end) = &opened {
        // A refusal is over once answered: the drain deadline cuts its linger, not it.
        guards.drained().or_cut(pin!(linger(client, end))).await;
    }
    opened
}

/// Up to the relay: the client's CONNECT read, checked and routed, the upstream connected and
/// the CONNECT forwarded. The upstream, the client's version, the broker's bytes already passed
/// down, and the client's Keep Alive.
async fn open<'c>(
    client: &mut Client,
    arrival: &Arrival,
    config: &'c Config,
    health: &Health,
    guards: &Guards,
    log: &mut Log<'c>,
) -> Result<(TcpStream, Protocol, Vec<u8>, u16), End> {
    let limits = &config.limits;
    let metrics = &guards.metrics;
    let (connect, pipelined, charge) = read_connect(client, arrival, limits, guards, log).await?;
    client.connect_read();
    // The CONNECT as the proxy places and forwards it: as received, unless the identity or
    // sticky step below re-encodes it. `connect()` reads the stored fields; nothing decodes
    // the packet again.
    let mut placed = connect.connect();
    let mut packet = connect.frame().clone();
    let protocol = placed.protocol;
    log.client_id(placed.client_id);
    log.version = Some(protocol);
    let own_id = placed.client_id;

    let route = route(client, config, arrival, protocol).await?;
    log.route = Some(route);
    let identity = identify(client, route, arrival, &placed).await?;
    if let Some((name, rewritten)) = &identity {
        placed.username = Some(name);
        packet = rewritten.clone();
    }
    // A 5.0 client without a client id gets the proxy's, and is placed as if it had sent it.
    let assigned = sticky::assign(route, &placed);
    if let Some(assigned) = &assigned {
        placed.client_id = &assigned.id;
        packet = assigned.packet.clone();
        log.client_id(&assigned.id);
    }

    // The client's address stands in for an empty key, as in APISIX; spelt out only then.
    let peer_ip;
    let key = match route.key.of(&placed) {
        Some(key) => key,
        None => {
            peer_ip = address_key(arrival).to_string();
            peer_ip.as_bytes()
        }
    };
    let header = proxy_header(route, arrival, client).map_err(End::Failed)?;
    let first = [header.as_slice(), &packet, &pipelined];
    let (mut upstream, node, took) = match connect_upstream(route, key, first, limits, health, metrics).await
    {
        Ok(connected) => connected,
        Err(Unreached::All) => {
            let unavailable = protocol.connack(ReasonCode::ServerUnavailable);
            return Err(refuse(client, unavailable, Why::Unavailable).await);
        }
        Err(Unreached::Local(e)) => {
            let busy = protocol.connack(ReasonCode::ServerBusy);
            return Err(refuse(client, busy, Why::Local(e)).await);
        }
    };
    log.upstream = Some(node);
    // A takeover is of a connected id: a refused attempt takes over nothing.
    metrics.client_id(own_id, address_key(arrival));
    let counted = metrics.relaying(&route.name, &node.addr);
    counted.connected(took);
    log.traffic.counted = Some(counted);

    let keep_alive = placed.keep_alive;
    log.traffic.add((packet.len() + pipelined.len()) as u64, 0);
    // The CONNECT's bytes and their share of the budget are given back before the relay.
    drop((connect, packet, pipelined, charge, identity));
    // It learns the id from the broker's CONNACK, which the relay then reads as if it had
    // passed it.
    let sent_down = match &assigned {
        Some(assigned) => {
            match sticky::pass_connack(&mut upstream, client, &assigned.id, limits.connect_deadline()).await {
                Ok(sent_down) => sent_down,
                // As a broker that is not there: the client is told, and comes back.
                Err(sticky::Unpassed::Silent) => {
                    let ack = protocol.connack(ReasonCode::ServerUnavailable);
                    return Err(refuse(client, ack, Why::Silent).await);
                }
                Err(sticky::Unpassed::Io(e)) => return Err(io_end(e)),
            }
        }
        None => Vec::new(),
    };
    drop(assigned);
    log.traffic.add(0, sent_down.len() as u64);
    Ok((upstream, protocol, sent_down, keep_alive))
}

/// The client's address as a key, to place it and to tell a takeover: an IPv4 client of a
/// dual-stack listener, which sees it as `::ffff:a.b.c.d`, is keyed by its IPv4 address, as
/// through an IPv4 listener. The log shows the address as the socket gave it.
fn address_key(arrival: &Arrival) -> IpAddr {
    arrival.peer.ip().to_canonical()
}

/// What a read of the CONNECT came to.
enum Read {
    /// Decoded, once, and split off the buffer.
    Whole(OwnedConnect),
    /// The decoder refused it, from as many bytes as it took to tell.
    Invalid(mqtt_connect::Error),
    /// The budget for buffered CONNECT bytes is spent.
    OverBudget,
}

/// Buffers until the CONNECT is whole or refused, within one deadline for the whole packet,
/// and decodes it once: each read is only framed (`split_from` runs [`Decoder::frame`], which
/// checks what the bytes so far can show and decodes nothing), and the packet is decoded when
/// its frame is whole. The cap and a wrong first byte are found from the first bytes, so nothing
/// past the cap is ever buffered. The buffer grows with what arrives, charged to the budget;
/// when that is spent, the client is told the server is busy. Returns the CONNECT, what the
/// client pipelined after it, and the charge; a refused packet is answered in its version,
/// which goes in the log. The time it took goes in the metrics, whole or refused.
///
/// [`Decoder::frame`]: mqtt_connect::Decoder::frame
async fn read_connect(
    client: &mut Client,
    arrival: &Arrival,
    limits: &Limits,
    guards: &Guards,
    log: &mut Log<'_>,
) -> Result<(OwnedConnect, BytesMut, Charge), End> {
    let started = Instant::now();
    let budget = &guards.budget;
    let decoder = limits.decoder();
    let cap = limits.connect_buffer();
    let Some((mut buf, mut charge)) = budget.buffer() else {
        let busy = read_version(client, limits, &[]).await?.and_then(|p| p.connack(ReasonCode::ServerBusy));
        return Err(refuse(client, busy, Why::BufferBudget).await);
    };
    let reading = async {
        loop {
            match OwnedConnect::split_from(&decoder, &mut buf) {
                Ok(Status::Complete { packet, .. }) => return Ok(Read::Whole(packet)),
                Ok(Status::Incomplete(_)) => {}
                Err(e) => return Ok(Read::Invalid(e)),
            }
            if budget.grow(&mut buf, &mut charge, cap).is_none() {
                return Ok(Read::OverBudget);
            }
            if client.read_buf(&mut buf).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
        }
    };
    // Pinned here, so that the timeout holds a pointer to the read, not a copy of it: where the
    // compiler stops inlining `timeout`, the copies cost about 400 instructions a connection
    // (this and the dial's, `benches/proxy.sh instructions`: 27,062-27,117 against 26,678-26,722).
    let read = timeout(limits.connect_deadline(), pin!(reading)).await;
    // A whole CONNECT's time only: what is refused may be no CONNECT at all (a port scan, TLS
    // on a plain listener), and would pull the distribution towards 0.
    if let Ok(Ok(Read::Whole(_))) = &read {
        guards.metrics.connect_read(started.elapsed());
    }
    match read {
        Ok(Ok(Read::Whole(connect))) => Ok((connect, buf, charge)),
        // Nothing refused is forwarded.
        Ok(Ok(Read::Invalid(_))) if buf.first() == Some(&edge::TLS_HANDSHAKE) => {
            Err(refuse(client, None, Why::TlsOnPlain).await)
        }
        Ok(Ok(Read::Invalid(_)))
            if arrival.header_untrusted
                && buf.first().is_some_and(|&first| proxy_header::may_start(first)) =>
        {
            Err(End::Edge(Refused::Untrusted))
        }
        Ok(Ok(Read::Invalid(e))) => {
            log.version = protocol_of(&buf);
            let mut ack = e.connack(&buf);
            // Refused from its fixed header alone, a CONNECT over the cap may have come without
            // its version yet: it is read on for that, as an early refusal is, so that a 5.0
            // client is told 0x95 however its bytes were split.
            if log.version.is_none() && matches!(e, Error::PacketTooLarge { .. }) {
                log.version = read_version(client, limits, &buf).await.ok().flatten();
                ack = log.version.and_then(|protocol| protocol.connack(e.reason_code()));
            }
            drop((buf, charge));
            Err(refuse(client, ack, Why::Invalid(e)).await)
        }
        Ok(Ok(Read::OverBudget)) => {
            let busy = protocol_of(&buf).and_then(|p| p.connack(ReasonCode::ServerBusy));
            drop((buf, charge));
            Err(refuse(client, busy, Why::BufferBudget).await)
        }
        Ok(Err(e)) => Err(before_connect(e)),
        Err(_) => Err(End::Deadline),
    }
}

/// The first route that takes this client. A route that differs only in protocol level means
/// the version is what is unsupported, and the client is told so.
async fn route<'c>(
    client: &mut Client,
    config: &'c Config,
    arrival: &Arrival,
    protocol: Protocol,
) -> Result<&'c Route, End> {
    match config.route(arrival.peer.ip(), arrival.sni(), protocol) {
        Ok(route) => Ok(route),
        Err(Miss::Level) => {
            let unsupported = protocol.connack(ReasonCode::UnsupportedProtocolVersion);
            Err(refuse(client, unsupported, Why::VersionNotRouted).await)
        }
        Err(Miss::Nothing) => Err(refuse(client, None, Why::NoRoute).await),
    }
}

/// The route's identity step: with `identity = "username"`, the client certificate's name, and
/// the CONNECT re-encoded with it for its User Name, whatever name the client sent, and its
/// password as sent. `None` leaves the CONNECT as it is.
async fn identify(
    client: &mut Client,
    route: &Route,
    arrival: &Arrival,
    connect: &Connect<'_>,
) -> Result<Option<(String, Bytes)>, End> {
    let Some(Identity::Username) = route.identity else { return Ok(None) };
    let not_authorized = connect.protocol.connack(ReasonCode::NotAuthorized);
    let name = match arrival
        .tls
        .as_ref()
        .map_or(Ok(None), |tls| tls.identity(route.identity_source.unwrap_or_default()))
    {
        Ok(Some(name)) => name,
        Ok(None) => {
            return match route.without_certificate.unwrap_or_default() {
                Without::Pass => Ok(None),
                Without::Refuse => Err(refuse(client, not_authorized, Why::NoCertificate).await),
            };
        }
        Err(unfit) => return Err(refuse(client, not_authorized, Why::Unfit(unfit)).await),
    };
    match with_username(connect, &name) {
        Ok(rewritten) => Ok(Some((name, rewritten))),
        // The one rule a decoded CONNECT can break that the encoder holds to: a will announced
        // as UTF-8 that is not (a client MUST NOT send it). Its own code, as a broker that
        // checks answers.
        Err(e @ EncodeError::Invalid(Error::InvalidPayloadFormat)) => {
            let invalid = connect.protocol.connack(ReasonCode::PayloadFormatInvalid);
            Err(refuse(client, invalid, Why::Identity(e)).await)
        }
        // The certificate's name is no User Name: over 65,535 bytes.
        Err(e) => Err(refuse(client, not_authorized, Why::Identity(e)).await),
    }
}

/// `connect` with `name` for its User Name, encoded by the crate's encoder: canonical, so
/// that decoding it gives back exactly this packet. The twin of [`sticky::with_client_id`].
pub fn with_username(connect: &Connect<'_>, name: &str) -> Result<Bytes, EncodeError> {
    let mut named = *connect;
    named.username = Some(name);
    let mut out = BytesMut::new();
    named.encode_to(&mut out)?;
    Ok(out.freeze())
}

/// Why no upstream was reached.
enum Unreached {
    /// Every upstream failed.
    All,
    /// This host is out of descriptors, buffers or ports: no broker is to blame, and none is
    /// marked down.
    Local(io::Error),
}

/// Tries the route's upstreams in the crate's rendezvous order for this key, skipping those
/// marked down: when every one is, the client is answered at once. An expired mark lets one
/// connection at a time probe the upstream while the others take the next. Each is sent
/// `first`, the CONNECT and what came after it, as it is connected: an upstream that fails
/// before taking it all has not seen the client, and the next may be tried. A failure marks the
/// upstream down, unless it is a local error, which ends the attempt with health untouched.
async fn connect_upstream<'r>(
    route: &'r Route,
    key: &[u8],
    first: [&[u8]; 3],
    limits: &Limits,
    health: &Health,
    metrics: &Metrics,
) -> Result<(TcpStream, &'r Upstream, Duration), Unreached> {
    for upstream in rank(key, &route.upstreams).filter_map(|i| route.upstreams.get(i)) {
        if health.verdict(upstream, limits.upstream_timeout()) == Verdict::Skip {
            continue;
        }
        let connecting = Instant::now();
        // Pinned, as the read in `read_connect` is.
        let failure = match timeout(limits.upstream_timeout(), pin!(dial(&upstream.addr, first))).await {
            Ok(Ok(stream)) => {
                if health.mark_up(upstream) {
                    tracing::info!(upstream = %upstream, "upstream connect succeeded; marked up");
                    metrics.health(&upstream.addr, true, true);
                }
                return Ok((stream, upstream, connecting.elapsed()));
            }
            Ok(Err(e)) if is_local(&e) => {
                tracing::warn!(upstream = %upstream, error = %e, "upstream connect failed here; health unchanged");
                return Err(Unreached::Local(e));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        match health.mark_down(upstream, limits.down_for(), connecting) {
            Some(changed) => {
                tracing::warn!(upstream = %upstream, error = %failure, "upstream connect failed; marked down");
                metrics.health(&upstream.addr, false, changed);
            }
            None => tracing::warn!(
                upstream = %upstream,
                error = %failure,
                "upstream connect failed, begun before the upstream was found up; not marked down"
            ),
        }
    }
    Err(Unreached::All)
}

/// The PROXY protocol v2 header to send before the CONNECT, if the route asks for one: the
/// client's addresses, as the PROXY header it came with named them, else its socket's; TLS
/// facts in TLVs. The socket's local address is asked of the kernel only here.
fn proxy_header(route: &Route, arrival: &Arrival, client: &Client) -> io::Result<Vec<u8>> {
    if !route.proxy_protocol {
        return Ok(Vec::new());
    }
    let local = match arrival.local {
        Some(local) => local,
        None => client.local_addr()?,
    };
    let command = v2::Version::Two | v2::Command::Proxy;
    let mut header =
        v2::Builder::with_addresses(command, v2::Protocol::Stream, one_family(arrival.peer, local));
    if let Some(tls) = &arrival.tls {
        header = header.write_tlv(v2::Type::SSL, &tls.proxy_v2_ssl())?;
        if let Some(sni) = &tls.sni {
            header = header.write_tlv(v2::Type::Authority, sni.as_bytes())?;
        }
    }
    header.build()
}

/// The two addresses of a PROXY header in one family: IPv4 when both are IPv4 or IPv4-mapped,
/// as a dual-stack listener sees an IPv4 client (`::ffff:a.b.c.d`), so that the broker is told
/// the IPv4 address the client has; IPv6 otherwise, an IPv4 one mapped. Of two families, `ppp`
/// would send neither address (`AF_UNSPEC`).
fn one_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v4 = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddr::new(ip.to_ipv6_mapped().into(), a.port()),
        IpAddr::V6(_) => a,
    };
    match (v4(source), v4(destination)) {
        both @ (SocketAddr::V4(_), SocketAddr::V4(_)) => both,
        _ => (v6(source), v6(destination)),
    }
}

/// Why a client is refused before its CONNECT is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Early {
    /// The connection cap is reached.
    Busy,
    /// Its address is over the connection-rate limit.
    Rate,
}

impl Early {
    /// Why, for the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Rate => "rate",
        }
    }
}

/// Refused at accept, before its CONNECT is read (the server's [`Early`] refusals, apart from
/// the main path above). The edge comes first (a PROXY header naming the client, a TLS
/// handshake, a WebSocket upgrade) under its own deadline; then only the first bytes of the
/// CONNECT are read, which give the client's version, within a short deadline of their own; the
/// answer is in that version. Busy is 0x89 in 5.0 and 0x03 in 3.x; rate is 0x9F in 5.0 and 0x03 in 3.x.
pub async fn refuse_early(
    client: TcpStream,
    peer: SocketAddr,
    listener: Option<&Listener>,
    limits: &Limits,
    early: Early,
    metrics: &Metrics,
) {
    let started = Instant::now();
    let mut peer = peer;
    let mut log = Log::new(listener);
    let (arrived, arrival) = edge::arrive(client, peer, listener, limits).await;
    (peer, log.edge) = (arrival.peer, arrival.describe());
    let end = match arrived {
        Ok(mut client) => {
            log.transport = arrival.transport();
            let end = refuse_version(&mut client, limits, early, &mut log.version).await;
            linger(&mut client, &end).await;
            end
        }
        Err(refused) => End::Edge(refused),
    };
    log.close(peer, started, &end, metrics);
}

/// Reads the first bytes of the CONNECT for its version, which it notes for the log, answers
/// `early` in it, and closes.
async fn refuse_version(
    client: &mut Client,
    limits: &Limits,
    early: Early,
    version: &mut Option<Protocol>,
) -> End {
    let protocol = match read_version(client, limits, &[]).await {
        Ok(protocol) => protocol,
        // Quiet, or gone: refused all the same, unanswered, and counted so.
        Err(End::Deadline | End::ClosedBeforeConnect) => None,
        Err(end) => return end,
    };
    *version = protocol;
    let ack = protocol.and_then(|p| match early {
        Early::Busy => p.connack(ReasonCode::ServerBusy),
        Early::Rate if p == Protocol::V5 => p.connack(ReasonCode::ConnectionRateExceeded),
        Early::Rate => p.connack(ReasonCode::ServerUnavailable),
    });
    let why = match early {
        Early::Busy => Why::Busy,
        Early::Rate => Why::Rate,
    };
    refuse(client, ack, why).await
}

/// A fixed header, a protocol name of up to six bytes with its length, and the level byte.
const VERSION_BYTES: usize = 5 + 2 + 6 + 1;

/// The version the CONNECT announces, from its first bytes, of which `head` has come; `None` if
/// they give none.
async fn read_version(client: &mut Client, limits: &Limits, head: &[u8]) -> Result<Option<Protocol>, End> {
    let mut buf = [0; VERSION_BYTES];
    let mut len = head.len().min(VERSION_BYTES);
    buf.get_mut(..len).unwrap_or_default().copy_from_slice(head.get(..len).unwrap_or_default());
    let reading = async {
        while let Some(free) = buf.get_mut(len..).filter(|free| !free.is_empty()) {
            match client.read(free).await? {
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                n => len += n,
            }
            if let Some(protocol) = protocol_of(buf.get(..len).unwrap_or_default()) {
                return Ok(Some(protocol));
            }
        }
        Ok(None)
    };
    match timeout(limits.busy_deadline(), reading).await {
        Ok(Ok(protocol)) => Ok(protocol),
        Ok(Err(e)) => Err(before_connect(e)),
        Err(_) => Err(End::Deadline),
    }
}

/// Answers `ack`, if there is one, and closes the sending side; [`linger`] follows.
async fn refuse(client: &mut Client, ack: Option<Connack>, why: Why) -> End {
    let answered = ack.as_ref().map(Connack::reason_code);
    if let Some(ack) = ack {
        // Best effort: a client that already left cannot be told.
        client.write_all(ack.as_bytes()).await.ok();
    }
    client.shutdown().await.ok();
    End::Refused { why, answered }
}

/// After a refusal, input still arriving is read and dropped for a moment, so that the close
/// does not become a reset that loses the answer.
async fn linger(client: &mut Client, end: &End) {
    if let End::Refused { .. } = end {
        let mut sink = vec![0; 4096];
        timeout(LINGER, async { while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {} }).await.ok();
    }
}

/// How a connection ended, for its log line.
enum End {
    ClientClosed,
    UpstreamClosed,
    ClosedBeforeConnect,
    Deadline,
    /// `answered` is the reason code of the CONNACK sent, if one was; in 3.x the return code
    /// on the wire is the one it maps to.
    Refused {
        why: Why,
        answered: Option<ReasonCode>,
    },
    Failed(io::Error),
    /// Cut by the proxy: quiet too long, or still open at the drain deadline.
    Cut(Cut),
    /// Before the CONNECT: PROXY header, TLS or the first byte.
    Edge(edge::Refused),
}

impl End {
    /// How it ended, for the metrics.
    fn labels(&self) -> EndLabels {
        let (how, why, code) = match self {
            Self::ClientClosed => ("client_closed", "", None),
            Self::UpstreamClosed => ("upstream_closed", "", None),
            Self::ClosedBeforeConnect | Self::Edge(edge::Refused::Closed) => {
                ("closed_before_connect", "", None)
            }
            Self::Deadline => ("deadline", "", None),
            Self::Edge(edge::Refused::Deadline) => ("deadline", "handshake", None),
            Self::Refused { why, answered } => ("refused", why.label(), *answered),
            Self::Failed(_) | Self::Edge(edge::Refused::Failed(_)) => ("failed", "", None),
            Self::Edge(refused) => ("refused", refused.label(), None),
            Self::Cut(Cut::Idle(_)) => ("idle", "", None),
            Self::Cut(Cut::HalfClosed(_)) => ("half_closed", "", None),
            Self::Cut(Cut::Drained) => ("drained", "", None),
        };
        EndLabels { how, why, code: code.map(|code| format!("{:#04x}", u8::from(code))).unwrap_or_default() }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientClosed => f.write_str("client closed"),
            Self::UpstreamClosed => f.write_str("upstream closed"),
            Self::ClosedBeforeConnect => f.write_str("client closed before a whole CONNECT"),
            Self::Deadline => f.write_str("timeout: no whole CONNECT by the deadline"),
            Self::Refused { why, answered: Some(code) } => {
                write!(f, "refused ({why}): CONNACK {:#04x}", u8::from(*code))
            }
            Self::Refused { why, answered: None } => write!(f, "refused ({why}): closed"),
            Self::Failed(e) => write!(f, "error: {e}"),
            Self::Cut(Cut::Idle(limit)) => write!(f, "idle: nothing either way for {limit:?}"),
            Self::Cut(Cut::HalfClosed(limit)) => {
                write!(f, "half-closed: one side closed, the other quiet for {limit:?}")
            }
            Self::Cut(Cut::Drained) => f.write_str("cut at the drain deadline"),
            Self::Edge(refused) => write!(f, "{refused}"),
        }
    }
}

/// A read or write that failed: a refusal when the client was cut for a WebSocket frame it sent,
/// otherwise the socket's failure.
fn io_end(e: io::Error) -> End {
    if ws::is_refusal(&e) { End::Refused { why: Why::WebSocket(e), answered: None } } else { End::Failed(e) }
}

/// A read of the client that failed before its CONNECT was whole: the client gone (a close or a
/// reset, as [`edge::gone`] tells), or [`io_end`].
fn before_connect(e: io::Error) -> End {
    if edge::gone(&e) { End::ClosedBeforeConnect } else { io_end(e) }
}

/// Why a connection was refused before it reached an upstream.
enum Why {
    Invalid(mqtt_connect::Error),
    NoRoute,
    VersionNotRouted,
    Unavailable,
    Busy,
    /// The budget for buffered CONNECT bytes is spent.
    BufferBudget,
    /// A local error (out of descriptors, buffers or ports) on the upstream connect.
    Local(io::Error),
    /// Over the connection-rate limit of its address.
    Rate,
    /// The route puts the certificate's name in the CONNECT, and there is none.
    NoCertificate,
    /// The certificate's name cannot be a User Name.
    Identity(EncodeError),
    /// The certificate's name cannot stand for the client.
    Unfit(crate::tls::Unfit),
    /// A TLS ClientHello where a CONNECT should be.
    TlsOnPlain,
    /// A WebSocket frame the proxy does not take, for which the client was sent a close frame.
    WebSocket(io::Error),
    /// No CONNACK from the broker in time to carry the id the proxy assigned.
    Silent,
}

impl Why {
    /// Why, for the metrics.
    fn label(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::NoRoute => "no_route",
            Self::VersionNotRouted => "version",
            Self::Unavailable | Self::Silent => "unavailable",
            Self::Busy | Self::BufferBudget | Self::Local(_) => "busy",
            Self::Rate => "rate",
            Self::NoCertificate => "no_certificate",
            Self::Identity(_) | Self::Unfit(_) => "identity",
            Self::TlsOnPlain => "tls_on_plain",
            Self::WebSocket(_) => "websocket",
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
            Self::BufferBudget => f.write_str("CONNECT buffer budget spent"),
            Self::Local(e) => write!(f, "local error on the upstream connect: {e}"),
            Self::Rate => f.write_str("connection rate exceeded"),
            Self::NoCertificate => f.write_str("no client certificate name for the route's identity"),
            Self::Identity(e) => write!(f, "certificate name as User Name: {e}"),
            Self::Unfit(e) => write!(f, "certificate name as User Name: {e}"),
            Self::TlsOnPlain => f.write_str("TLS ClientHello on a plain listener"),
            Self::WebSocket(e) => write!(f, "{e}"),
            Self::Silent => f.write_str("no CONNACK from the broker in time to carry the assigned id"),
        }
    }
}

/// What is known of a connection so far. The route and the upstream are borrowed from the
/// config the session holds, not copied: 8 bytes each and no allocation.
#[derive(Default)]
struct Log<'c> {
    /// `tcp`, `tls`, `ws` or `wss`.
    transport: &'static str,
    /// Escaped and cut: the client chose it.
    client_id: Option<String>,
    version: Option<Protocol>,
    route: Option<&'c Route>,
    upstream: Option<&'c Upstream>,
    traffic: Traffic,
    /// TLS and PROXY header, as [`Arrival::describe`] has them.
    edge: Option<String>,
}

impl Log<'_> {
    /// A connection on `listener`, logged with its transport until its arrival says it.
    fn new(listener: Option<&Listener>) -> Self {
        Self { transport: edge::listener_transport(listener), ..Self::default() }
    }

    /// The client id, escaped for the line, if the line is to be written: escaping it cost
    /// 900 of the 32,300 instructions a connection took in user space (callgrind).
    fn client_id(&mut self, id: &str) {
        if tracing::enabled!(tracing::Level::INFO) {
            self.client_id = Some(logfmt::field(id));
        }
    }

    fn write(&self, peer: SocketAddr, took: Duration, end: &End) {
        fn unknown(field: Option<&str>) -> &str {
            field.unwrap_or("-")
        }
        tracing::info!(
            %peer,
            transport = %self.transport,
            client_id = %unknown(self.client_id.as_deref()),
            version = %self.version.map_or_else(|| "-".into(), |version| version.to_string()),
            route = %unknown(self.route.map(|route| route.name.as_str())),
            upstream = %unknown(self.upstream.map(|upstream| upstream.addr.as_str())),
            edge = %unknown(self.edge.as_deref()),
            bytes_up = self.traffic.up,
            bytes_down = self.traffic.down,
            connack = %self.traffic.connack.map_or("-".into(), |code| format!("{:#04x}", u8::from(code))),
            ms = took.as_millis() as u64,
            %end,
        );
    }

    /// Writes the log line and counts the connection, as it ends.
    fn close(&self, peer: SocketAddr, started: Instant, end: &End, metrics: &Metrics) {
        self.write(peer, started.elapsed(), end);
        metrics.ended(&end.labels());
    }
}
