//! Copies bytes both ways between client and upstream until both directions have ended.
//!
//! Most MQTT connections sit idle between small packets, so a buffer is taken only when a
//! socket is readable and given back as soon as it would block: an idle connection holds two
//! sockets and a small task, not two copy buffers.

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::time::Instant;

use mqtt_connect::{Protocol, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::broker_connack::Sniff;
use crate::idle::{Activity, Cut};
use crate::tls::Client;

/// Large enough to move a burst in few system calls; on the stack, only while a read is polled.
const BURST: usize = 32 * 1024;

/// Bytes relayed each way.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    /// Client to upstream.
    pub up: u64,
    /// Upstream to client.
    pub down: u64,
    /// The broker's CONNACK reason code, once it has passed.
    pub connack: Option<ReasonCode>,
}

/// Which side closed its sending direction first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum First {
    Client,
    Upstream,
    /// Neither: the connection went quiet past its limit and the proxy cut it.
    Cut(Cut),
}

/// Relays until each side has closed its sending direction; an end of file is passed on as a
/// half-close, so a side may go on sending after the other has finished. An error on either
/// side ends both directions. So does quiet past the limit `activity` keeps, which the
/// broker's CONNACK may change on its way through; it is read in the client's `protocol`.
/// `sent_down` are the broker's bytes already passed to the client before the relay (the
/// CONNACK a sticky id was added to), read for that CONNACK as if they had come through here.
pub async fn relay(
    client: Client,
    upstream: TcpStream,
    protocol: Protocol,
    sent_down: &[u8],
    traffic: &mut Traffic,
    activity: &Activity,
) -> io::Result<First> {
    let sniff = Sniff::new(protocol);
    // A TCP stream splits into halves without a lock; TLS and WebSocket streams share one.
    match client {
        Client::Plain(tcp) => {
            let (client_rx, client_tx) = tcp.into_split();
            both_ways(client_rx, client_tx, upstream, sniff, sent_down, traffic, activity).await
        }
        Client::Tls(tls) => {
            let (client_rx, client_tx) = tokio::io::split(tls);
            both_ways(client_rx, client_tx, upstream, sniff, sent_down, traffic, activity).await
        }
        Client::Ws(ws) => {
            let (client_rx, client_tx) = tokio::io::split(ws);
            both_ways(client_rx, client_tx, upstream, sniff, sent_down, traffic, activity).await
        }
    }
}

/// [`relay`] on the client's two halves.
async fn both_ways(
    mut client_rx: impl AsyncRead + Unpin,
    mut client_tx: impl AsyncWrite + Unpin,
    upstream: TcpStream,
    mut sniff: Sniff,
    sent_down: &[u8],
    traffic: &mut Traffic,
    activity: &Activity,
) -> io::Result<First> {
    let (mut upstream_rx, mut upstream_tx) = upstream.into_split();
    let connack = &mut traffic.connack;
    let mut on_down = |bytes: &[u8]| {
        if let Some(ack) = sniff.feed(bytes) {
            *connack = Some(ack.code);
            if let Some(seconds) = ack.server_keep_alive {
                activity.server_keep_alive(seconds);
            }
        }
    };
    on_down(sent_down);
    let pumps = async {
        tokio::try_join!(
            pump(&mut client_rx, &mut upstream_tx, &mut traffic.up, activity, |_| {}),
            pump(&mut upstream_rx, &mut client_tx, &mut traffic.down, activity, on_down),
        )
    };
    tokio::select! {
        ended = pumps => {
            let (up_ended, down_ended) = ended?;
            Ok(if up_ended <= down_ended { First::Client } else { First::Upstream })
        }
        cut = activity.expired() => Ok(First::Cut(cut)),
    }
}

/// Copies one direction until end of file, which it passes on by shutting down the writer.
/// `seen` looks at each burst on its way.
async fn pump(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    count: &mut u64,
    activity: &Activity,
    mut seen: impl FnMut(&[u8]),
) -> io::Result<Instant> {
    loop {
        let buf = burst(from).await?;
        if buf.is_empty() {
            activity.half_close();
            to.shutdown().await?;
            return Ok(Instant::now());
        }
        activity.touch();
        seen(&buf);
        to.write_all(&buf).await?;
        // tokio-rustls may report a write done with the bytes still in rustls's buffer.
        to.flush().await?;
        *count += buf.len() as u64;
    }
}

/// The next bytes, read into a buffer on the stack and copied out at their own size, so that
/// none is held while the peer is quiet, and a burst costs one allocation of what arrived, not
/// a 32 KiB one at every poll, the polls that would block included (under `benches/proxy.sh
/// profile`, libc's share of the proxy's CPU went from 5.6% to 5.1%, `malloc_consolidate`'s
/// 0.3% with it, and large chunks no longer come and go in the heap beside idle connections).
/// Socket readiness alone would not do for TLS or a WebSocket, where a readable
/// socket may hold only part of a record or frame, and one may already be decrypted inside
/// rustls or buffered inside tungstenite with the socket quiet; polling the read itself covers
/// both.
async fn burst(from: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    poll_fn(|cx| {
        let mut stack = [MaybeUninit::uninit(); BURST];
        let mut buf = ReadBuf::uninit(&mut stack);
        Pin::new(&mut *from).poll_read(cx, &mut buf).map_ok(|()| buf.filled().to_vec())
    })
    .await
    .or_else(|e| match e.kind() {
        // A TLS peer that closes without close_notify, as many MQTT clients do. MQTT frames its
        // own packets, so a cut is no more than the close it would be over TCP.
        io::ErrorKind::UnexpectedEof => Ok(Vec::new()),
        _ => Err(e),
    })
}
