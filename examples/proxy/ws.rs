//! MQTT over WebSocket: the upgrade at the configured path with subprotocol `mqtt`, then the
//! WebSocket as a plain byte stream, so that the rest of the session (read CONNECT → decode →
//! route → connect upstream → relay) is the one TCP clients get.
//!
//! Frame boundaries carry no meaning [MQTT-6.0.0-2]: one binary frame may hold part of a
//! packet or several, so the client's frames are read as one run of bytes, and the broker's
//! bytes go back in binary frames as they come. A text frame is not MQTT [MQTT-6.0.0-1]: the
//! connection is closed with 1003. A frame over the cap is closed with 1009, one that breaks the
//! WebSocket protocol with 1002, and text that is not UTF-8 with 1007 (RFC 6455 7.4.1), so that
//! the client learns why it was cut. Ping is answered with pong by tungstenite as it reads.
//!
//! [`upgrade`] and [`WsStream`] take any `AsyncRead + AsyncWrite` below them, so `wss://` is
//! this over a TLS stream.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The subprotocols taken, in the order chosen when a client offers several: the one MQTT over
/// WebSocket names [MQTT-6.0.0-3], then the one MQTT 3.1 clients offer (Paho's JavaScript
/// client, for one), which mosquitto takes too.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// tungstenite reads into a buffer of 128 KiB per connection by default, taken at the upgrade
/// and held while the connection lives; MQTT connections mostly idle between small packets.
const READ_BUFFER: usize = 4 * 1024;

/// What a client may send before its CONNECT is whole, past the CONNECT's own bytes: the headers
/// of the frames it comes in (6 to 14 bytes each), and what tungstenite reads past the frame
/// that ends it, at most one read of [`READ_BUFFER`], from the frames pipelined behind it.
pub const FRAMING: usize = 2 * READ_BUFFER;

/// What a client may send.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// The largest frame or message. tungstenite holds a frame whole before it hands it on, so
    /// this bounds what one connection can make the proxy buffer once its CONNECT is read
    /// ([`Metered`] bounds it before); an MQTT client sends a packet per frame, so it is also
    /// the largest packet a WebSocket client can publish through the proxy.
    pub message: usize,
    /// Bytes of frames before its CONNECT is whole, until [`WsStream::connect_read`].
    pub before_connect: usize,
}

/// Why there was no upgrade.
#[derive(Debug)]
pub enum NoUpgrade {
    /// Refused, or failed for what the client sent: why, with the HTTP status it was given.
    Refused(String),
    /// The client closed before its request was whole: a balancer's TCP check, a port scan.
    Closed,
    /// The socket failed, or the client reset it.
    Io(io::Error),
    /// No whole request within the deadline.
    Deadline,
}

/// Answers the HTTP upgrade on `stream` within `deadline`: the request must be for `path` (404
/// otherwise), come from one of `origins` if it names an origin and they are not empty (403
/// otherwise), and offer the subprotocol `mqtt` or `mqttv3.1` (400 otherwise), which the
/// answer then names. A request for no upgrade, or another version of it, gets 426, and one a
/// WebSocket server cannot take 400 ([`unanswered`]). The client is then held to `caps`.
pub async fn upgrade<S>(
    mut stream: S,
    path: &str,
    origins: &[String],
    deadline: Duration,
    caps: Caps,
) -> Result<WsStream<S>, NoUpgrade>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The signature is tungstenite's `Callback`, large error and all.
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        if request.uri().path() != path {
            return Err(error(StatusCode::NOT_FOUND, format!("MQTT over WebSocket is at {path}\n")));
        }
        if foreign(request, origins) {
            return Err(error(StatusCode::FORBIDDEN, "pages of this origin may not connect here\n".into()));
        }
        let Some(chosen) = subprotocol(request) else {
            let text = "the WebSocket subprotocol must be \"mqtt\" (or \"mqttv3.1\" for MQTT 3.1)\n".into();
            return Err(error(StatusCode::BAD_REQUEST, text));
        };
        response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(chosen));
        Ok(response)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(caps.message))
        .max_frame_size(Some(caps.message));
    // On a borrow, so that the stream is still here to answer what tungstenite refuses without
    // a word; once upgraded, it is the WebSocket's own. tungstenite refuses any byte after the
    // request, before the upgrade, so none is left behind in the handshake.
    let accepting = tokio_tungstenite::accept_hdr_async_with_config(&mut stream, check, Some(config));
    let e = match timeout(deadline, accepting).await {
        Ok(Ok(_)) => {
            let metered = Metered::new(stream, caps.before_connect);
            return Ok(WsStream::new(
                WebSocketStream::from_raw_socket(metered, Role::Server, Some(config)).await,
            ));
        }
        Ok(Err(WsError::Http(response))) => {
            return Err(NoUpgrade::Refused(format!("WebSocket upgrade refused: HTTP {}", response.status())));
        }
        Ok(Err(WsError::Protocol(ProtocolError::HandshakeIncomplete))) => return Err(NoUpgrade::Closed),
        Ok(Err(WsError::Io(e))) => return Err(NoUpgrade::Io(e)),
        Ok(Err(e)) => e,
        Err(_) => return Err(NoUpgrade::Deadline),
    };
    let Some(status) = unanswered(&e) else {
        return Err(NoUpgrade::Refused(format!("WebSocket upgrade failed: {e}")));
    };
    let upgrade = if status == StatusCode::UPGRADE_REQUIRED {
        "Upgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\n"
    } else {
        "Connection: close\r\n"
    };
    let text = format!("MQTT over WebSocket is at {path}\n");
    let answer = format!(
        "HTTP/1.1 {status}\r\n{upgrade}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
    // Best effort, within a deadline of its own: a client that is gone is not told.
    let answering = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    timeout(deadline, answering).await.ok();
    Err(NoUpgrade::Refused(format!("WebSocket upgrade refused: HTTP {status}: {e}")))
}

/// The answer to a request tungstenite refused without one: 426 Upgrade Required for an HTTP
/// request that asks for no WebSocket upgrade, or for another version of the protocol (RFC 6455
/// 4.2.2; RFC 7231 6.5.15), 400 Bad Request for one a WebSocket server cannot take (RFC 6455
/// 4.2.1: not a GET, not HTTP/1.1, no key, not HTTP at all); none when the client is gone.
fn unanswered(e: &WsError) -> Option<StatusCode> {
    match e {
        WsError::Protocol(
            ProtocolError::MissingConnectionUpgradeHeader
            | ProtocolError::MissingUpgradeWebSocketHeader
            | ProtocolError::MissingSecWebSocketVersionHeader,
        ) => Some(StatusCode::UPGRADE_REQUIRED),
        WsError::Protocol(_) | WsError::HttpFormat(_) | WsError::Capacity(_) => Some(StatusCode::BAD_REQUEST),
        _ => None,
    }
}

/// Whether `origins` are given and the request's `Origin` is none of them; origins compare
/// without regard to case, as their scheme and host do (RFC 6454 4). A request with no `Origin`
/// is not from a browser, which always sends one (RFC 6455 4.1), and passes.
fn foreign(request: &Request, origins: &[String]) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else { return false };
    !origins.is_empty() && !origins.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
}

/// The first of [`SUBPROTOCOLS`] that `Sec-WebSocket-Protocol` lists, in any of its headers.
fn subprotocol(request: &Request) -> Option<&'static str> {
    let offers = |name: &str| {
        request
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|list| list.split(','))
            .any(|offered| offered.trim() == name)
    };
    SUBPROTOCOLS.into_iter().find(|&name| offers(name))
}

fn error(status: StatusCode, text: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text));
    *response.status_mut() = status;
    response
}

/// The client's bytes on their way to tungstenite, counted until its CONNECT is whole. tungstenite
/// holds a frame whole before it hands it on, up to [`Caps::message`], so a client could make the
/// proxy buffer that much before its CONNECT, where a TCP client's is buffered up to the CONNECT
/// cap, charged to the CONNECT buffer budget. Past `limit`, reads fail.
struct Metered<S> {
    inner: S,
    /// What the client may still send before its CONNECT is whole; `None` once it is.
    left: Option<usize>,
    limit: usize,
}

impl<S> Metered<S> {
    /// `inner`, of which the client may read `limit` bytes before its CONNECT is whole.
    fn new(inner: S, limit: usize) -> Self {
        Self { inner, left: Some(limit), limit }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(left) = this.left else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        if left == 0 {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, OverBudget(this.limit))));
        }
        // A read of at most `left` bytes, into what `buf` has initialized: no `unsafe` to hand
        // the rest of it down.
        let room = buf.remaining().min(left);
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(room));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        buf.advance(n);
        this.left = Some(left - n);
        Poll::Ready(Ok(()))
    }
}

/// [`Metered`]'s error, told apart from the socket's: the client sent more than its limit
/// before its CONNECT was whole.
#[derive(Debug)]
struct OverBudget(usize);

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket: over {} bytes of frames before a whole CONNECT", self.0)
    }
}

impl std::error::Error for OverBudget {}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A WebSocket as a byte stream: reads give the payloads of binary frames in order, writes go
/// out as binary frames, shutting down sends a close frame, and a close frame from the client
/// reads as end of file.
pub struct WsStream<S> {
    ws: WebSocketStream<Metered<S>>,
    /// What is left of the last binary frame.
    unread: Bytes,
    /// The length of the write queued in `ws` and not yet flushed.
    queued: Option<usize>,
    /// The client sent a close frame (or vanished): reads end, writes are dropped.
    client_closed: bool,
    /// The proxy's close frame is queued.
    closing: bool,
    /// The code its close frame will carry.
    close_code: CloseCode,
}

impl<S> WsStream<S> {
    fn new(ws: WebSocketStream<Metered<S>>) -> Self {
        Self {
            ws,
            unread: Bytes::new(),
            queued: None,
            client_closed: false,
            closing: false,
            close_code: CloseCode::Normal,
        }
    }
}

/// The error a read fails with when the client is cut for what it sent, under the close frame
/// it was sent: the session counts it a refusal, not a failure of the socket.
#[derive(Debug)]
pub struct Refusal {
    code: CloseCode,
    why: io::Error,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (WebSocket close {})", self.why, u16::from(self.code))
    }
}

impl std::error::Error for Refusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.why)
    }
}

/// Whether a read failed for what the client sent over the WebSocket.
pub fn is_refusal(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Refusal>())
}

/// A client cut for what it sent: the close frame that says why, and the error the read fails
/// with, which the session logs.
struct Refusing {
    close: CloseFrame,
    why: io::Error,
}

impl Refusing {
    fn new(code: CloseCode, reason: &'static str, why: io::Error) -> Self {
        Self { close: CloseFrame { code, reason: reason.into() }, why }
    }

    /// A text frame, which is not MQTT [MQTT-6.0.0-1].
    fn text() -> Self {
        let why =
            io::Error::new(io::ErrorKind::InvalidData, "WebSocket text frame: MQTT is sent in binary frames");
        Self::new(CloseCode::Unsupported, "MQTT is sent in binary frames", why)
    }

    /// A read that failed for what the client sent (RFC 6455 7.4.1): a frame or message over
    /// [`Caps::message`], or over what [`Metered`] lets through before the CONNECT, is too big
    /// (1009); a frame that breaks the protocol, unmasked or of an unknown type, is a protocol
    /// error (1002); text that is not UTF-8, in a text frame or a close frame's reason, is
    /// invalid data (1007). Any other failure, of the socket below, is no fault to tell the
    /// client of.
    fn read_failed(e: WsError) -> Result<Self, io::Error> {
        let (code, reason) = match &e {
            WsError::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<OverBudget>()) => {
                (CloseCode::Size, "message too big")
            }
            WsError::Capacity(_) => (CloseCode::Size, "message too big"),
            WsError::Protocol(_) => (CloseCode::Protocol, "WebSocket protocol error"),
            WsError::Utf8(_) => (CloseCode::Invalid, "text not UTF-8"),
            _ => return Err(io_error(e)),
        };
        Ok(Self::new(code, reason, io_error(e)))
    }
}

/// tungstenite's errors as I/O errors; a connection already closed is just closed.
fn io_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::NotConnected.into(),
        e => io::Error::other(e),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// The stream the WebSocket runs over.
    pub fn get_ref(&self) -> &S {
        &self.ws.get_ref().inner
    }

    /// The proxy is going away (RFC 6455 7.4.1, 1001): its close frame says so, where a normal
    /// close (1000) could read to a web page as one it need not reconnect after.
    pub fn going_away(&mut self) {
        self.close_code = CloseCode::Away;
    }

    /// The client's CONNECT is whole: its frames are no longer counted.
    pub fn connect_read(&mut self) {
        self.ws.get_mut().left = None;
    }

    /// Sends the close frame that tells the client why it is cut, as far as its socket takes it
    /// now, and returns the error to fail the read with. Best effort, and never waited for: a
    /// client that has stopped reading, its socket full of the broker's bytes, would otherwise
    /// hold its connection until the idle timeout; one that is gone is not told.
    fn refuse(&mut self, cx: &mut Context<'_>, refusing: Refusing) -> io::Error {
        let Refusing { close, why } = refusing;
        let code = close.code;
        let mut ws = Pin::new(&mut self.ws);
        if let Poll::Ready(Ok(())) = ws.as_mut().poll_ready(cx)
            && ws.as_mut().start_send(Message::Close(Some(close))).is_ok()
        {
            // What the socket does not take now is dropped with the connection.
            let _ = ws.poll_flush(cx);
        }
        io::Error::new(why.kind(), Refusal { code, why })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.unread.is_empty() {
                let n = this.unread.len().min(buf.remaining());
                buf.put_slice(&this.unread.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.client_closed {
                // Sends tungstenite's answer to the close, then reads as end of file.
                ready!(Pin::new(&mut this.ws).poll_flush(cx)).ok();
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(bytes))) => this.unread = bytes,
                Some(Ok(Message::Text(_))) => return Poll::Ready(Err(this.refuse(cx, Refusing::text()))),
                // Many clients close the socket after their DISCONNECT without a close frame: an
                // end like any other.
                Some(
                    Ok(Message::Close(_))
                    | Err(
                        WsError::ConnectionClosed
                        | WsError::AlreadyClosed
                        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                    ),
                )
                | None => this.client_closed = true,
                // tungstenite answers a ping with a pong as it reads.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(e)) => return Poll::Ready(Err(this.refuse(cx, Refusing::read_failed(e)?))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    /// Sends `buf` as one binary frame, and is ready once the frame is flushed: the relay writes
    /// and then waits to read, so nothing may be left in tungstenite's buffer. Pending after
    /// queuing, it must be called again with the same bytes, as `write_all` does.
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.client_closed || buf.is_empty() {
            // Nothing can carry them after the client's close; no empty frames.
            return Poll::Ready(Ok(buf.len()));
        }
        let mut ws = Pin::new(&mut this.ws);
        if this.queued.is_none() {
            ready!(ws.as_mut().poll_ready(cx)).map_err(io_error)?;
            ws.as_mut().start_send(Message::Binary(Bytes::copy_from_slice(buf))).map_err(io_error)?;
            this.queued = Some(buf.len());
        }
        ready!(ws.poll_flush(cx)).map_err(io_error)?;
        Poll::Ready(Ok(this.queued.take().unwrap_or_default()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws).poll_flush(cx).map_err(io_error)
    }

    /// Sends a close frame (1000, or 1001 when [`going_away`](Self::going_away)): WebSocket has
    /// no half-close, so this ends the client's side too once it answers. Then shuts the stream
    /// below down, so that `wss://` sends its TLS close_notify, which tungstenite's close does
    /// not: a strict TLS client reads the end without it as a truncation.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut ws = Pin::new(&mut this.ws);
        if !this.closing && !this.client_closed {
            if ready!(ws.as_mut().poll_ready(cx)).is_ok() {
                let close = CloseFrame { code: this.close_code, reason: "".into() };
                ws.as_mut().start_send(Message::Close(Some(close))).ok();
            }
            this.closing = true;
        }
        match ready!(ws.as_mut().poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
            Err(e) => return Poll::Ready(Err(io_error(e))),
        }
        Pin::new(&mut ws.get_mut().get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, BufWriter, DuplexStream};

    use super::*;

    /// A stream that writes no more than one buffer at a time.
    struct Unvectored;

    impl AsyncWrite for Unvectored {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Metering counts reads only: vectored writes, flushes and the shutdown reach the stream
    /// below as they would without it, a TLS stream's buffered records among them.
    #[tokio::test]
    async fn metered_writes_flushes_and_shuts_down_its_stream_as_is() {
        let mut stream = Metered::new(BufWriter::new(Vec::new()), 0);
        assert!(stream.is_write_vectored());
        assert!(!Metered::new(Unvectored, 0).is_write_vectored());
        let written =
            stream.write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cd")]).await.expect("write");
        assert_eq!(written, 4);
        assert_eq!(stream.inner.get_ref(), b"", "buffered until flushed");
        stream.flush().await.expect("flush");
        assert_eq!(stream.inner.get_ref(), b"abcd");
        stream.write_all(b"ef").await.expect("write");
        stream.shutdown().await.expect("shutdown");
        assert_eq!(stream.inner.get_ref(), b"abcdef", "flushed by the shutdown");
    }

    /// Past its limit a read fails with an error that says so, which the log line carries.
    #[tokio::test]
    async fn metered_reads_fail_past_the_limit_with_the_limit_named() {
        let mut stream = Metered::new(&b"abcdef"[..], 4);
        let mut buf = [0; 16];
        assert_eq!(stream.read(&mut buf).await.expect("read"), 4);
        assert_eq!(&buf[..4], b"abcd");
        let e = stream.read(&mut buf).await.expect_err("over the limit");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "WebSocket: over 4 bytes of frames before a whole CONNECT");
    }

    /// Only the client's bytes make a refusal with a close code: over the limit before the
    /// CONNECT is 1009, and a failure of the socket below, a reset, is the socket's error.
    #[test]
    fn a_socket_error_is_no_refusal_and_over_the_limit_is_1009() {
        let over = io::Error::new(io::ErrorKind::InvalidData, OverBudget(4));
        let Ok(refusing) = Refusing::read_failed(WsError::Io(over)) else { panic!("a refusal") };
        assert_eq!(refusing.close.code, CloseCode::Size);
        let reset = WsError::Io(io::ErrorKind::ConnectionReset.into());
        let e = Refusing::read_failed(reset).err().expect("no refusal");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert!(!is_refusal(&e));
    }

    /// Both ends of a WebSocket over an in-memory pipe of `capacity` bytes each way.
    async fn pair(capacity: usize) -> (WsStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(capacity);
        let server =
            WebSocketStream::from_raw_socket(Metered::new(server, usize::MAX), Role::Server, None).await;
        (WsStream::new(server), WebSocketStream::from_raw_socket(client, Role::Client, None).await)
    }

    /// Guards the tests below against a hang, which would be a failure.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// An empty write sends no frame, and a write after the client's close frame is taken and
    /// dropped, not failed: nothing can carry it.
    #[tokio::test]
    async fn an_empty_write_sends_no_frame_and_one_after_the_clients_close_is_dropped() {
        let (mut server, mut client) = pair(1024).await;
        assert_eq!(server.write(b"").await.expect("write"), 0);
        server.write_all(b"x").await.expect("write");
        let next = timeout(PATIENCE, client.next()).await.expect("in time");
        assert!(matches!(&next, Some(Ok(Message::Binary(b))) if b[..] == *b"x"), "{next:?}");
        client.send(Message::Close(None)).await.expect("close");
        assert_eq!(timeout(PATIENCE, server.read(&mut [0; 8])).await.expect("in time").expect("end"), 0);
        assert_eq!(server.write(b"late").await.expect("dropped"), 4);
        let next = timeout(PATIENCE, client.next()).await.expect("in time");
        assert!(matches!(next, Some(Ok(Message::Close(_)))), "the answer to its close: {next:?}");
    }

    /// A flush sends what tungstenite still holds: here the rest of the close frame of a
    /// refusal, which the client's full socket did not take at once.
    #[tokio::test]
    async fn a_flush_sends_the_rest_of_a_refusals_close_frame() {
        let (mut server, mut client) = pair(16).await;
        client.send(Message::Text("a".into())).await.expect("send");
        let e = timeout(PATIENCE, server.read(&mut [0; 8])).await.expect("in time").expect_err("refused");
        assert!(is_refusal(&e), "{e}");
        let flushed = async move {
            server.flush().await.expect("flush");
            drop(server);
        };
        let (_, next) = tokio::join!(flushed, timeout(PATIENCE, client.next()));
        let next = next.expect("in time");
        assert!(
            matches!(&next, Some(Ok(Message::Close(Some(close)))) if close.code == CloseCode::Unsupported),
            "{next:?}"
        );
    }

    /// A refusal is told apart from other errors, and says why and with which close code.
    #[test]
    fn a_refusal_is_known_as_one_and_keeps_its_cause() {
        let why = io::Error::other("bad frame");
        let refusal = Refusal { code: CloseCode::Protocol, why };
        assert_eq!(refusal.to_string(), "bad frame (WebSocket close 1002)");
        let source = std::error::Error::source(&refusal).expect("its cause");
        assert_eq!(source.to_string(), "bad frame");
        let e = io::Error::new(io::ErrorKind::InvalidData, refusal);
        assert!(is_refusal(&e));
        assert!(!is_refusal(&io::Error::new(io::ErrorKind::InvalidData, "bad frame")));
        assert!(!is_refusal(&io::ErrorKind::ConnectionReset.into()));
    }
}
