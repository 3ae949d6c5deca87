//! Copies bytes both ways between client and upstream until both directions have ended.
//!
//! Most MQTT connections sit idle between small packets, so a buffer is taken only when a
//! socket is readable and given back as soon as it would block: an idle connection holds two
//! sockets and a small task, not two copy buffers.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Large enough to move a burst in few system calls; lives only while bytes flow.
const BURST: usize = 32 * 1024;

/// Bytes relayed each way.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    /// Client to upstream.
    pub up: u64,
    /// Upstream to client.
    pub down: u64,
}

/// Which side closed its sending direction first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum First {
    Client,
    Upstream,
}

/// Relays until each side has closed its sending direction; an end of file is passed on as a
/// half-close, so a side may go on sending after the other has finished. An error on either
/// side ends both directions.
pub async fn relay(
    client: impl AsyncRead + AsyncWrite,
    upstream: TcpStream,
    traffic: &mut Traffic,
) -> io::Result<First> {
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut upstream_rx, mut upstream_tx) = upstream.into_split();
    let (up_ended, down_ended) = tokio::try_join!(
        pump(&mut client_rx, &mut upstream_tx, &mut traffic.up),
        pump(&mut upstream_rx, &mut client_tx, &mut traffic.down),
    )?;
    Ok(if up_ended <= down_ended { First::Client } else { First::Upstream })
}

/// Copies one direction until end of file, which it passes on by shutting down the writer.
async fn pump(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    count: &mut u64,
) -> io::Result<Instant> {
    loop {
        let buf = burst(from).await?;
        if buf.is_empty() {
            to.shutdown().await?;
            return Ok(Instant::now());
        }
        to.write_all(&buf).await?;
        *count += buf.len() as u64;
    }
}

/// The next bytes, in a buffer made at each poll and dropped again when the read would block,
/// so that none is held while the peer is quiet. Socket readiness alone would not do for a
/// WebSocket, where a readable socket may hold only part of a frame, and a frame may already
/// be buffered inside tungstenite with the socket quiet; polling the read itself covers both.
async fn burst(from: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    poll_fn(|cx| {
        let mut buf = Vec::with_capacity(BURST);
        let polled = pin!(from.read_buf(&mut buf)).poll(cx);
        polled.map_ok(|_| buf)
    })
    .await
}
