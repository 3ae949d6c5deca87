//! Between the accept and the CONNECT: a PROXY header from a trusted balancer, a look at the
//! first byte so that plain text on a TLS port is told for what it is, the TLS handshake, and
//! on a WebSocket listener the upgrade; all under one deadline, the slowloris's limit. A plain listener that takes no PROXY
//! header has nothing to do here: its clients go straight to their CONNECT, and a ClientHello
//! sent there is told apart by its first byte when the decoder refuses it.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::client::Client;
use crate::config::{Limits, Listener};
use crate::proxy_header::{self, Next};
use crate::tls::{self, Hello};
use crate::{logfmt, ws};

/// A TLS record's first byte when it carries a handshake message, as a ClientHello does.
pub const TLS_HANDSHAKE: u8 = 0x16;
/// A CONNECT's first byte.
const MQTT_CONNECT: u8 = 0x10;

/// Who the client is, as far as the network says.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// The client's address: the one a trusted PROXY header carries, else the socket's.
    pub peer: SocketAddr,
    /// The address the client connected to, when a trusted PROXY header named it; else the
    /// socket's, asked of the kernel only by the one step that needs it.
    pub local: Option<SocketAddr>,
    /// The balancer's address, when its PROXY header named the client.
    pub via: Option<SocketAddr>,
    /// What the TLS handshake told, on a TLS listener; boxed, so that a plain session carries a
    /// pointer's worth of it.
    pub tls: Option<Box<Hello>>,
    /// MQTT over WebSocket, upgraded on a WebSocket listener.
    pub websocket: bool,
    /// A plain listener takes PROXY headers, but not from this client, whose first byte was not
    /// looked at: a header it sends is refused when its CONNECT is read.
    pub header_untrusted: bool,
}

/// The name of a transport: `tcp`, `tls`, `ws` or `wss`.
const fn transport(websocket: bool, tls: bool) -> &'static str {
    match (websocket, tls) {
        (false, false) => "tcp",
        (false, true) => "tls",
        (true, false) => "ws",
        (true, true) => "wss",
    }
}

/// How the clients of `listener` (`None`: a plain `listen` address) send their bytes; the log
/// line's until the client's arrival says it, so also for one refused, or cut at the drain
/// deadline, before it arrived.
pub fn listener_transport(listener: Option<&Listener>) -> &'static str {
    listener.map_or("tcp", |l| transport(l.websocket.is_some(), l.tls.is_some()))
}

impl Arrival {
    /// How the client's bytes come: `tcp`, `tls`, `ws` or `wss`.
    pub fn transport(&self) -> &'static str {
        transport(self.websocket, self.tls.is_some())
    }

    /// The TLS server name the client asked for.
    pub fn sni(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|tls| tls.sni.as_deref())
    }

    /// For the log line: the TLS version, server name and certificate name, and the balancer.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(tls) = &self.tls {
            parts.push(tls.version.to_owned());
            parts.extend(tls.sni.as_ref().map(|sni| format!("sni={}", logfmt::field(sni))));
            parts.extend(tls.name(crate::tls::Source::Cn).map(|cn| format!("cn=\"{}\"", logfmt::field(&cn))));
        }
        parts.extend(self.via.map(|via| format!("via={via}")));
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// Why a connection ended before its CONNECT was read.
#[derive(Debug)]
pub enum Refused {
    /// A PROXY header from an address the listener does not trust.
    Untrusted,
    /// No PROXY header from an address the listener trusts for one: its first byte.
    Missing(u8),
    Header(String),
    /// An MQTT CONNECT in the clear on a TLS listener.
    PlainMqttOnTls,
    /// Neither TLS nor MQTT on a TLS listener.
    NotTls(u8),
    Handshake(io::Error),
    /// The WebSocket upgrade, refused or failed.
    WebSocket(String),
    Deadline,
    Closed,
    Failed(io::Error),
}

impl Refused {
    /// Why, for the metrics, when it is a refusal.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Untrusted => "proxy_header_untrusted",
            Self::Missing(_) => "proxy_header_missing",
            Self::Header(_) => "proxy_header",
            Self::PlainMqttOnTls => "plain_on_tls",
            Self::NotTls(_) => "not_tls",
            Self::Handshake(_) => "tls_handshake",
            Self::WebSocket(_) => "websocket",
            Self::Deadline => "handshake_deadline",
            Self::Closed => "closed",
            Self::Failed(_) => "failed",
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Untrusted => f.write_str("refused: PROXY header from an untrusted address"),
            Self::Missing(byte) => {
                write!(f, "refused: no PROXY header from a trusted address (first byte {byte:#04x})")
            }
            Self::Header(e) => write!(f, "refused: {e}"),
            Self::PlainMqttOnTls => f.write_str("refused: plain-text MQTT CONNECT on a TLS listener"),
            Self::NotTls(byte) => write!(f, "refused: not TLS on a TLS listener (first byte {byte:#04x})"),
            Self::Handshake(e) if tls::unknown_revocation(e) => write!(
                f,
                "TLS handshake failed: {e} (crl has no list from a CA of the client's chain, and needs one from each)"
            ),
            Self::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            Self::WebSocket(why) => f.write_str(why),
            Self::Deadline => f.write_str(
                "timeout: no PROXY header or TLS handshake by the deadline, nor a WebSocket upgrade",
            ),
            Self::Closed => f.write_str("client closed before its CONNECT"),
            Self::Failed(e) => write!(f, "error: {e}"),
        }
    }
}

/// Takes the PROXY header if the listener trusts the client for one, tells TLS from plain text
/// and shakes hands, then answers the WebSocket upgrade on a WebSocket listener; within the
/// handshake deadline for all of it. The arrival comes as far as it got, a refusal's too: the
/// client a PROXY header named is the one refused, not its balancer.
pub async fn arrive(
    mut tcp: TcpStream,
    peer: SocketAddr,
    listener: Option<&Listener>,
    limits: &Limits,
) -> (Result<Client, Refused>, Arrival) {
    let deadline = limits.handshake_deadline();
    let mut arrival =
        Arrival { peer, local: None, via: None, tls: None, websocket: false, header_untrusted: false };
    let proxied = listener.filter(|l| !l.proxy_protocol_from.is_empty());
    let tls = listener.and_then(|l| l.tls.as_ref()).and_then(|tls| tls.server.clone());
    let websocket = listener.and_then(|l| l.websocket.as_deref());
    let steps = async {
        // A direct client of a plain listener owes no handshake: its first byte is its
        // CONNECT's, waited for under the connect deadline as on a listener that takes no
        // headers, not here under the handshake deadline.
        let trusted = proxied.map(|l| l.trusts(peer.ip()));
        let direct = trusted == Some(false) && tls.is_none() && websocket.is_none();
        arrival.header_untrusted = direct;
        if let Some(trusted) = trusted.filter(|_| !direct) {
            let first = first_byte(&tcp).await?;
            match (trusted, proxy_header::may_start(first)) {
                (false, false) => {}
                (false, true) => return Err(Refused::Untrusted),
                // A trusted balancer's connections all carry a header: the specification
                // (sections 2 and 5) forbids guessing whether one is there, and HAProxy's
                // `accept-proxy` and NGINX's `proxy_protocol` refuse a connection without one,
                // lest a balancer that sent none pass as the client. Which sources send one is
                // configured, as section 5 allows; section 2 would give them a port of their own.
                (true, false) => return Err(Refused::Missing(first)),
                (true, true) => {
                    if let Some((source, destination)) = read_header(&mut tcp).await? {
                        (arrival.peer, arrival.local, arrival.via) = (source, Some(destination), Some(peer));
                    }
                }
            }
        }
        let client = match tls {
            None => Client::Plain(tcp),
            Some(server) => match first_byte(&tcp).await? {
                TLS_HANDSHAKE => {
                    // Boxed: the handshake's state holds a whole rustls connection, and would
                    // otherwise sit inline in every session's future, plain ones too, for their
                    // whole life.
                    let accepting = Box::pin(TlsAcceptor::from(server).accept(tcp));
                    // A client gone mid-handshake (a balancer's TCP check) is no failed one.
                    let stream = accepting
                        .await
                        .map_err(|e| if gone(&e) { Refused::Closed } else { Refused::Handshake(e) })?;
                    arrival.tls = Some(Box::new(Hello::of(&stream)));
                    Client::Tls(Box::new(stream))
                }
                MQTT_CONNECT => return Err(Refused::PlainMqttOnTls),
                other => return Err(Refused::NotTls(other)),
            },
        };
        let Some(path) = websocket else { return Ok(client) };
        arrival.websocket = true;
        // Boxed like the TLS handshake, so that a session that never upgrades carries none of it.
        let origins = listener.map_or(&[][..], |l| &l.websocket_origins[..]);
        let before_connect = limits.connect_buffer().saturating_add(ws::FRAMING);
        let caps = ws::Caps { message: limits.max_ws_message, before_connect };
        let upgrading = ws::upgrade(client, path, origins, deadline, caps);
        let ws = Box::pin(upgrading).await.map_err(|refused| match refused {
            ws::NoUpgrade::Refused(why) => Refused::WebSocket(why),
            ws::NoUpgrade::Closed => Refused::Closed,
            ws::NoUpgrade::Io(e) => io_refusal(e),
            ws::NoUpgrade::Deadline => Refused::Deadline,
        })?;
        Ok(Client::Ws(Box::new(ws)))
    };
    let client = timeout(deadline, steps).await.unwrap_or(Err(Refused::Deadline));
    (client, arrival)
}

/// Whether `e` is the client going, by a close where more was due or by a reset, rather than
/// a fault: a balancer's TCP check resets its connection, once a second, and HAProxy counts
/// either as the client's abort.
pub fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// A socket error before the CONNECT: the client gone, or a failure.
fn io_refusal(e: io::Error) -> Refused {
    if gone(&e) { Refused::Closed } else { Refused::Failed(e) }
}

/// The next byte, left in the socket.
async fn first_byte(tcp: &TcpStream) -> Result<u8, Refused> {
    let mut byte = [0];
    match tcp.peek(&mut byte).await {
        Ok(0) => Err(Refused::Closed),
        Ok(_) => Ok(byte[0]),
        Err(e) => Err(io_refusal(e)),
    }
}

/// Reads the header and not a byte more, as [`proxy_header::next`] says, and parses it.
///
/// A balancer sends the header whole, mostly with the client's first bytes: when a look at what
/// has come finds all of it, it is read in one call, where a v1 line would otherwise take one a
/// byte: `recvfrom` calls a connection 54.0 → 7.0, all system calls 73.6 → 26.8, for a 48-byte
/// line sent with the CONNECT (`strace -c -f`, 500 connections; the build before with the look
/// taken and unused). Only a header that has not all come is read as `next` asks, in pieces.
async fn read_header(tcp: &mut TcpStream) -> Result<Option<(SocketAddr, SocketAddr)>, Refused> {
    let mut header = vec![0; proxy_header::MAX];
    let came = tcp.peek(&mut header).await.map_err(io_refusal)?;
    header.truncate(came);
    match proxy_header::next(&header) {
        // Read whole, which the loop then finds whole and parses.
        Ok(Next::Whole(len)) if len <= came => {
            header.truncate(len);
            tcp.read_exact(&mut header).await.map_err(io_refusal)?;
        }
        _ => header.clear(),
    }
    loop {
        let more = match proxy_header::next(&header).map_err(|e| Refused::Header(e.into()))? {
            Next::Whole(len) if header.len() >= len => {
                return proxy_header::parse(&header).map_err(Refused::Header);
            }
            Next::Whole(len) => len - header.len(),
            Next::More(more) => more,
        };
        let start = header.len();
        header.resize(start + more, 0);
        tcp.read_exact(&mut header[start..]).await.map_err(io_refusal)?;
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use tokio_rustls::rustls;

    use super::Refused;

    /// The note on CRLs is for a certificate whose revocation no list covers; any other failed
    /// handshake is named as it failed, without it.
    #[test]
    fn a_failed_handshake_that_is_not_about_revocation_has_no_crl_note() {
        let failed =
            Refused::Handshake(io::Error::new(io::ErrorKind::InvalidData, "peer sent no certificates"));
        assert_eq!(failed.to_string(), "TLS handshake failed: peer sent no certificates");
        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let failed = Refused::Handshake(io::Error::new(io::ErrorKind::InvalidData, bad));
        assert!(!failed.to_string().contains("crl"), "{failed}");
    }
}
