//! Copies bytes both ways between client and upstream until both directions have ended.
//!
//! Most MQTT connections sit idle between small packets, and an idle connection's task is most
//! of what the proxy holds for it. So the relay is one hand-written poll over both sockets,
//! unsplit, and one timer: no `try_join!` of two copy loops beside a `select!` on a deadline
//! future, no `Arc` halves, no atomics or `Notify` between the directions. Bytes are read into
//! a buffer on the stack and written straight on; only what the writer would not take is kept,
//! on the heap, until it does. The relay's future went from 1,216 bytes to 400
//! (`-Zprint-type-sizes`), and with the session's own changes resident memory per idle
//! connection from 3.7 to 2.2–2.4 KiB (`benches/proxy.sh memory`), relay throughput 0.99–1.02×
//! direct.

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use mqtt_connect::{Protocol, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::broker_connack::Sniff;
use crate::client::Client;
use crate::idle::{Activity, Cut};
use crate::limits::Drained;
use crate::metrics::Relayed;

/// Large enough to move a burst in few system calls; on the stack, only while a read is polled.
const BURST: usize = 32 * 1024;

/// Bytes relayed each way, for the log line, and counted in the metrics as they pass.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Client to upstream.
    pub up: u64,
    /// Upstream to client.
    pub down: u64,
    /// The broker's CONNACK reason code, once it has passed.
    pub connack: Option<ReasonCode>,
    /// The counters of the route's upstream, once it is connected.
    pub counted: Option<Arc<Relayed>>,
}

impl Traffic {
    /// `up` and `down` more bytes relayed.
    pub fn add(&mut self, up: u64, down: u64) {
        self.up += up;
        self.down += down;
        if let Some(counted) = &self.counted {
            counted.bytes(up, down);
        }
    }
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
/// half-close, so a side may go on sending after the other has finished.
///
/// A failed read ends both directions: its socket is gone both ways. A failed write ends only
/// its own, and the other goes on to read what the gone socket still holds, such as the
/// DISCONNECT a client sent just before its reset; the error is returned once that has ended
/// too. Quiet past the limit `activity` keeps ends both, as does the drain deadline. The
/// broker's CONNACK may change that limit on its way through; it is read in the client's
/// `protocol`. `sent_down` are the broker's bytes already passed to the client before the
/// relay (the CONNACK a sticky id was added to), read for that CONNACK as if they had come
/// through here.
pub fn relay<'a>(
    client: Client,
    upstream: TcpStream,
    protocol: Protocol,
    sent_down: Vec<u8>,
    traffic: &'a mut Traffic,
    activity: Activity<'a>,
    drained: &'a Drained,
) -> impl Future<Output = io::Result<First>> + 'a {
    let mut relay = Relay {
        client,
        upstream,
        sniff: Sniff::new(protocol),
        activity,
        traffic,
        drained,
        up: Pump::default(),
        down: Pump::default(),
        upstream_first: false,
    };
    read_connack(&mut relay.sniff, &sent_down, relay.traffic, &mut relay.activity);
    drop(sent_down);
    // Built here, not in an `async fn`, whose arguments would stay in its future beside the
    // `Relay` made of them; and the closure below takes what it uses, rather than point at it.
    async move {
        // Taken before the relay first looks at `is_cut`, so that no cut falls between the two.
        let mut cut = pin!(relay.drained.wait());
        let mut timer = pin!(match relay.activity.deadline().0 {
            Some(deadline) => tokio::time::sleep_until(deadline.into()),
            None => tokio::time::sleep(Duration::MAX),
        });
        let mut polled = false;
        let end = {
            let relay = &mut relay;
            poll_fn(move |cx| {
                if relay.drained.poll_cut(cut.as_mut(), &mut polled, cx) {
                    return Poll::Ready(Ok(First::Cut(Cut::Drained)));
                }
                relay.poll(cx, timer.as_mut())
            })
            .await
        };
        // Once, after the loop above, rather than checked at each of its polls.
        if matches!(end, Ok(First::Cut(_)) | Err(_)) {
            let going_away = matches!(end, Ok(First::Cut(Cut::Drained)));
            poll_fn(|cx| {
                relay.farewell(cx, going_away);
                Poll::Ready(())
            })
            .await;
        }
        end
    }
}

/// Both directions of one connection, and what they share.
struct Relay<'a> {
    client: Client,
    upstream: TcpStream,
    /// Reads the broker's CONNACK on its way down.
    sniff: Sniff,
    activity: Activity<'a>,
    traffic: &'a mut Traffic,
    drained: &'a Drained,
    /// Client to upstream.
    up: Pump,
    /// Upstream to client.
    down: Pump,
    /// The upstream's end of file came before the client's.
    upstream_first: bool,
}

impl Relay<'_> {
    /// Tells a TLS or WebSocket client that is cut, or whose relay failed, that it is closed:
    /// TLS's close_notify, WebSocket's close frame (1000; 1001, going away, when the proxy is
    /// `going_away` at the drain deadline), as far as its socket takes them now. Never waited
    /// for; a plain socket's close says it all.
    fn farewell(&mut self, cx: &mut Context<'_>, going_away: bool) {
        if let (Client::Ws(ws), true) = (&mut self.client, going_away) {
            ws.going_away();
        }
        if !matches!(self.client, Client::Plain(_)) {
            let _ = Pin::new(&mut self.client).poll_shutdown(cx);
        }
    }

    /// Moves what both sides have, then looks at the deadline; ready when both directions have
    /// ended, on an error, or cut.
    fn poll(&mut self, cx: &mut Context<'_>, timer: Pin<&mut Sleep>) -> Poll<io::Result<First>> {
        let Self { client, upstream, sniff, activity, traffic, up, down, upstream_first, .. } = self;
        let mut moved = false;
        let (mut sent_up, mut sent_down) = (0, 0);
        // The second end needs no shutdown of a plain TCP socket: the close that follows at
        // once sends the same FIN, as HAProxy's does (`shutdown` calls per connection 2.0 ->
        // 1.0, `strace -c -f`). TLS still sends its close_notify and WebSocket its close frame.
        let pass_end = !down.ended();
        // An end of file is activity too: the half-closed timer starts from it, not from the
        // last bytes before it, which may be older than the timeout.
        let up_ended = up.poll(cx, client, upstream, pass_end, &mut sent_up, |bytes| {
            moved = true;
            if bytes.is_empty() {
                activity.half_close();
            }
        });
        let pass_end = !up.ended() || !matches!(client, Client::Plain(_));
        let client_open = up.reading();
        let down_ended = down.poll(cx, upstream, client, pass_end, &mut sent_down, |bytes| {
            moved = true;
            if bytes.is_empty() {
                activity.half_close();
                *upstream_first = client_open;
            } else {
                read_connack(sniff, bytes, traffic, activity);
            }
        });
        // Counted before an error can return, so that what moved is counted.
        traffic.add(sent_up, sent_down);
        let (up_ended, down_ended) = (up.settle(up_ended, activity)?, down.settle(down_ended, activity)?);
        if up_ended && down_ended {
            if let Some(failed) = up.failure().or_else(|| down.failure()) {
                return Poll::Ready(Err(failed));
            }
            return Poll::Ready(Ok(if *upstream_first { First::Upstream } else { First::Client }));
        }
        // A write is activity too: a reader slower than its sender leaves bytes held, and no
        // read, for longer than a limit while it still takes them.
        if moved || sent_up != 0 || sent_down != 0 {
            activity.touch(Instant::now());
        }
        self.expired(cx, timer).map(|cut| Ok(First::Cut(cut)))
    }

    /// Ready once the connection has been quiet past its limit. The timer is re-armed lazily:
    /// bytes only move the deadline on, so it is set again when it fires early rather than at
    /// every burst, and at once only when a shorter limit brings the deadline forward.
    fn expired(&self, cx: &mut Context<'_>, mut timer: Pin<&mut Sleep>) -> Poll<Cut> {
        loop {
            let (deadline, cut) = self.activity.deadline();
            let Some(deadline) = deadline.map(tokio::time::Instant::from_std) else {
                return Poll::Pending;
            };
            if deadline < timer.deadline() {
                timer.as_mut().reset(deadline);
            }
            ready!(timer.as_mut().poll(cx));
            if tokio::time::Instant::now() >= deadline {
                return Poll::Ready(cut);
            }
            timer.as_mut().reset(deadline);
        }
    }
}

/// Reads the broker's bytes for its CONNACK: its code is logged and counted, and its Server
/// Keep Alive becomes the limit.
fn read_connack(sniff: &mut Sniff, bytes: &[u8], traffic: &mut Traffic, activity: &mut Activity) {
    let Some(ack) = sniff.feed(bytes) else { return };
    traffic.connack = Some(ack.code);
    if let Some(counted) = &traffic.counted {
        counted.connack(ack.code);
    }
    if let Some(seconds) = ack.server_keep_alive {
        activity.server_keep_alive(seconds);
    }
}

/// One direction, in 16 bytes.
#[derive(Default)]
enum Pump {
    #[default]
    Reading,
    /// Read, and not all taken by the writer, which would block; on the heap only then.
    Writing(Box<Held>),
    /// Written; the writer may still hold the bytes (tokio-rustls may report a write done with
    /// them still in rustls's buffer).
    Flushing,
    /// The reader's end of file read, and being passed on.
    Ending,
    Ended,
    /// Ended by a failed write, whose error waits for the other direction to end.
    Failed(io::Error),
}

/// How a direction failed, and so whose socket is gone.
#[derive(Debug)]
enum Failure {
    Read(io::Error),
    Write(io::Error),
}

/// Bytes the writer has not taken all of yet.
struct Held {
    bytes: Box<[u8]>,
    written: usize,
}

impl Pump {
    fn ended(&self) -> bool {
        matches!(self, Self::Ended | Self::Failed(_))
    }

    /// Whether the direction has ended, from its poll. A failed read is returned, to end both
    /// directions; a failed write ends this one alone, as `Failed`, and starts the half-closed
    /// timer for the other.
    fn settle(&mut self, polled: Poll<Result<(), Failure>>, activity: &mut Activity) -> io::Result<bool> {
        match polled {
            Poll::Pending => Ok(false),
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(Failure::Read(e))) => Err(e),
            Poll::Ready(Err(Failure::Write(e))) => {
                activity.half_close();
                *self = Self::Failed(e);
                Ok(true)
            }
        }
    }

    /// The error of a failed write, taken.
    fn failure(&mut self) -> Option<io::Error> {
        match std::mem::replace(self, Self::Ended) {
            Self::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Its end of file not read yet.
    fn reading(&self) -> bool {
        matches!(self, Self::Reading | Self::Writing(_) | Self::Flushing)
    }

    /// Copies from `from` to `to` until one of them would block; ready once `from` has ended
    /// and the end has been passed on by shutting `to` down (unless `pass_end` is false); a
    /// failure says whether it was `from`'s read or `to`'s write. `seen` looks at each burst on
    /// its way, and at the end of file as an empty one.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut impl Source,
        to: &mut impl Sink,
        pass_end: bool,
        count: &mut u64,
        mut seen: impl FnMut(&[u8]),
    ) -> Poll<Result<(), Failure>> {
        loop {
            match self {
                Self::Ended | Self::Failed(_) => return Poll::Ready(Ok(())),
                Self::Ending => {
                    if pass_end {
                        ready!(Pin::new(&mut *to).poll_shutdown(cx)).map_err(Failure::Write)?;
                    }
                    *self = Self::Ended;
                }
                Self::Flushing => {
                    ready!(Pin::new(&mut *to).poll_flush(cx)).map_err(Failure::Write)?;
                    *self = Self::Reading;
                }
                Self::Writing(held) => {
                    let rest = held.bytes.get(held.written..).unwrap_or_default();
                    let n = ready!(write(cx, to, rest, false)).map_err(Failure::Write)?;
                    *count += n as u64;
                    held.written += n;
                    if held.written >= held.bytes.len() {
                        *self = Self::Flushing;
                    }
                }
                Self::Reading => {
                    if ready!(from.poll_finished(cx)).map_err(Failure::Read)? {
                        seen(&[]);
                        *self = Self::Ending;
                        continue;
                    }
                    let mut stack = [MaybeUninit::uninit(); BURST];
                    let mut buf = ReadBuf::uninit(&mut stack);
                    match ready!(Pin::new(&mut *from).poll_read(cx, &mut buf)) {
                        Ok(()) => {}
                        // A TLS peer that closes without close_notify, as many MQTT clients
                        // do. MQTT frames its own packets, so a cut is no more than the close
                        // it would be over TCP.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                        Err(e) => return Poll::Ready(Err(Failure::Read(e))),
                    }
                    let bytes = buf.filled();
                    seen(bytes);
                    if bytes.is_empty() {
                        *self = Self::Ending;
                        continue;
                    }
                    // The reader's end of file came before this read, which took all before
                    // it: these bytes are its last, and the end is passed on right after them,
                    // so they may wait for it and go out with it in one segment.
                    let last = pass_end && matches!(from.poll_finished(cx), Poll::Ready(Ok(true)));
                    // Straight from the stack; what the writer does not take now is kept.
                    let mut sent = 0;
                    while let Some(rest) = bytes.get(sent..).filter(|rest| !rest.is_empty()) {
                        match write(cx, to, rest, last) {
                            Poll::Ready(Ok(n)) => sent += n,
                            Poll::Ready(Err(e)) => {
                                *count += sent as u64;
                                return Poll::Ready(Err(Failure::Write(e)));
                            }
                            Poll::Pending => break,
                        }
                    }
                    *count += sent as u64;
                    *self = match bytes.get(sent..) {
                        Some(rest) if !rest.is_empty() => {
                            Self::Writing(Box::new(Held { bytes: rest.into(), written: 0 }))
                        }
                        _ => Self::Flushing,
                    };
                }
            }
        }
    }
}

/// A reader that may know without reading that its peer has finished: its end of file came,
/// and every byte before it has been read.
trait Source: AsyncRead + Unpin {
    /// Ready with `true` when so, with `false` when a read is due, pending while there is
    /// nothing to read.
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>>;
}

impl Source for TcpStream {
    /// After a read shorter than its buffer, which leaves the socket drained, tokio clears the
    /// readable state but keeps read-closed (`EPOLLRDHUP`: the peer's FIN), and any event since
    /// sets readable again. So read-closed alone means the FIN had come before that read, and
    /// the read took everything before it: the end of file, without the `recvfrom` that would
    /// return 0, as HAProxy takes it. A client's DISCONNECT and FIN usually come together, so
    /// this saves a system call per connection (5.0 -> 4.0 `recvfrom`, `strace -c -f`).
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        ready!(self.poll_read_ready(cx))?;
        // Not pending: the readiness just seen is still there to read back.
        let readiness = pin!(self.ready(Interest::READABLE | Interest::ERROR)).poll(cx);
        Poll::Ready(Ok(matches!(readiness, Poll::Ready(Ok(ready)) if ready == Ready::READ_CLOSED)))
    }
}

impl Source for Client {
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        match self {
            Self::Plain(tcp) => tcp.poll_finished(cx),
            // TLS and WebSocket end with a record or frame of their own, which is read.
            Self::Tls(_) | Self::Ws(_) => Poll::Ready(Ok(false)),
        }
    }
}

/// A writer whose end may carry the last bytes written before it.
trait Sink: AsyncWrite + Unpin + Sized {
    /// One write of `bytes`, which the shutdown will follow at once.
    fn poll_write_before_end(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(self).poll_write(cx, bytes)
    }
}

impl Sink for TcpStream {
    /// With `MSG_MORE`, so that the kernel keeps the bytes until the FIN that `shutdown` adds to
    /// them: one segment to the peer, and one wake-up, instead of two. A client's DISCONNECT
    /// and FIN go on to the broker so: 22.25 -> 21.27 TCP segments per connection
    /// (`benches/proxy.sh segments`), and 0.955x to 0.977x the CPU per connection of the build
    /// before, beside it in six runs (`benches/proxy.sh cpu` with `BASELINE`).
    fn poll_write_before_end(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.poll_write_ready(cx))?;
            let sent = self.try_io(Interest::WRITABLE, || {
                socket2::SockRef::from(&*self).send_with_flags(bytes, libc::MSG_MORE)
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }
}

impl Sink for Client {
    fn poll_write_before_end(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Self::Plain(tcp) => tcp.poll_write_before_end(cx, bytes),
            Self::Tls(_) | Self::Ws(_) => Pin::new(self).poll_write(cx, bytes),
        }
    }
}

/// One write of `bytes`, which takes at least one of them; `last` when the shutdown follows.
fn write(cx: &mut Context<'_>, to: &mut impl Sink, bytes: &[u8], last: bool) -> Poll<io::Result<usize>> {
    let written = if last { to.poll_write_before_end(cx, bytes) } else { Pin::new(to).poll_write(cx, bytes) };
    match ready!(written) {
        Ok(0) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
        done => Poll::Ready(done),
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use mqtt_connect::Protocol;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
    use tokio::net::{TcpListener, TcpSocket, TcpStream};

    use super::{Failure, First, Pump, Sink, Source, Traffic, relay};
    use crate::client::Client;
    use crate::config::Limits;
    use crate::idle::{Activity, Quiet};
    use crate::limits::Drained;

    /// Both ends of a loopback connection.
    async fn pair() -> (TcpStream, TcpStream) {
        pair_with(|_| {}).await
    }

    /// [`pair`], its near end `set` before it connects.
    async fn pair_with(set: impl FnOnce(&TcpSocket)) -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let socket = TcpSocket::new_v4().expect("socket");
        set(&socket);
        let near = socket.connect(listener.local_addr().expect("address")).await.expect("connect");
        let (far, _) = listener.accept().await.expect("accept");
        (near, far)
    }

    /// [`pair`] with small buffers toward the near end, a peer that reads late: the relay, at
    /// the far end, soon holds what it reads for it.
    async fn narrow_pair() -> (TcpStream, TcpStream) {
        let (near, far) =
            pair_with(|socket| socket.set_recv_buffer_size(4096).expect("receive buffer")).await;
        socket2::SockRef::from(&far).set_send_buffer_size(4096).expect("send buffer");
        (near, far)
    }

    /// `len` bytes that are not all alike, so that one out of place shows.
    fn pattern(len: u32) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Relays between the proxy's ends of a client's and a broker's connection, with the
    /// default limits, until both directions end; how it ended, and what it counted.
    async fn relayed(
        client_side: TcpStream,
        upstream_side: TcpStream,
        protocol: Protocol,
    ) -> (First, Traffic) {
        relayed_within(client_side, upstream_side, protocol, Limits::default()).await
    }

    /// [`relayed`], within `limits`.
    async fn relayed_within(
        client_side: TcpStream,
        upstream_side: TcpStream,
        protocol: Protocol,
        limits: Limits,
    ) -> (First, Traffic) {
        ended_within(client_side, upstream_side, protocol, limits).await.expect("relayed")
    }

    /// How [`relayed_within`] ended, an error too.
    async fn ended_within(
        client_side: TcpStream,
        upstream_side: TcpStream,
        protocol: Protocol,
        limits: Limits,
    ) -> io::Result<(First, Traffic)> {
        let drained = Drained::default();
        let mut traffic = Traffic::default();
        let activity = Activity::new(Quiet::new(&limits), 60);
        let client = Client::Plain(client_side);
        let first =
            relay(client, upstream_side, protocol, Vec::new(), &mut traffic, activity, &drained).await?;
        Ok((first, traffic))
    }

    /// A client's end of file after a quiet spell longer than the half-closed timeout is passed
    /// on as a half-close, and the broker's answer comes back: the timer starts at the end of
    /// file. It started at the last bytes, so the connection was cut in the poll that read it.
    #[tokio::test]
    async fn a_half_close_after_a_quiet_spell_is_passed_on_and_answered() {
        let (mut client, client_side) = pair().await;
        let (upstream_side, mut broker) = pair().await;
        let limits = Limits { half_closed_timeout_ms: 300, ..Limits::default() };
        let relaying = relayed_within(client_side, upstream_side, Protocol::V5, limits);
        let client_closes = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            client.shutdown().await.expect("half-close");
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.expect("read to the end");
            answer
        };
        let broker_answers = async move {
            let mut got = Vec::new();
            broker.read_to_end(&mut got).await.expect("the client's end");
            broker.write_all(b"after").await.expect("answer");
        };
        let ((first, _), answer, ()) = tokio::join!(relaying, client_closes, broker_answers);
        assert_eq!((first, &answer[..]), (First::Client, &b"after"[..]));
    }

    #[tokio::test]
    async fn a_reader_slower_than_the_writer_gets_every_byte_in_order_then_each_end() {
        let (mut client, client_side) = pair().await;
        let (upstream_side, mut broker) = pair().await;
        // Far more than the socket buffers hold, so that writes block and the relay holds the
        // rest on the heap until the broker reads.
        let sent = pattern(8 << 20);
        let relaying = relayed(client_side, upstream_side, Protocol::V5);
        let client_sends = async {
            client.write_all(&sent).await.expect("send");
            client.shutdown().await.expect("half-close");
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.expect("read to the end");
            answer
        };
        let broker_reads = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut got = vec![0; sent.len()];
            broker.read_exact(&mut got).await.expect("every byte");
            assert_eq!(broker.read(&mut [0; 1]).await.expect("the end"), 0, "the client's end passed on");
            broker.write_all(b"after").await.expect("send after the client's end");
            drop(broker);
            got
        };
        let ((first, traffic), answer, got) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(relaying, client_sends, broker_reads)
        })
        .await
        .expect("in time");
        assert!(got == sent, "the bytes, in order");
        assert_eq!(answer, b"after", "the other direction still open after the first end");
        assert_eq!(first, First::Client);
        assert_eq!((traffic.up, traffic.down), (sent.len() as u64, 5));
    }

    /// Bytes `socket` has sent that its peer has not yet acknowledged, from `/proc/net/tcp`:
    /// none once every byte is in the peer's receive queue.
    fn unacknowledged(socket: &TcpStream) -> u64 {
        let port = socket.local_addr().expect("address").port();
        let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
        let line = table
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(&format!("0100007F:{port:04X}")))
            .expect("the socket in /proc/net/tcp");
        let queues = line.split_whitespace().nth(4).expect("tx_queue:rx_queue");
        let (tx, _) = queues.split_once(':').expect("tx_queue:rx_queue");
        u64::from_str_radix(tx, 16).expect("tx_queue")
    }

    /// A client reading more slowly than the broker sends is not cut as idle while the relay's
    /// writes to it go on: a write is activity too. Only reads were, and the 32 KiB the relay
    /// held took the client longer than the idle limit to take, so it was cut in the middle.
    #[tokio::test]
    async fn a_slow_reader_is_not_cut_as_idle_while_its_bytes_still_move() {
        let (mut client, client_side) = narrow_pair().await;
        let (upstream_side, mut broker) = pair().await;
        // The client's Keep Alive (60 s) above the longest honoured, so the idle cap is the limit.
        let limits = Limits { idle_timeout_ms: 1000, max_keep_alive_s: 59, ..Limits::default() };
        let sent = pattern(64 << 10);
        let relaying = relayed_within(client_side, upstream_side, Protocol::V5, limits);
        let broker_sends = async {
            broker.write_all(&sent).await.expect("send");
            broker.shutdown().await.expect("half-close");
            broker.read_to_end(&mut Vec::new()).await.expect("the client's end")
        };
        // 256 bytes every 20 ms for the first 24 KiB, 1.9 s, while the relay still writes; the
        // rest, the last of which the kernel holds out of the relay's sight, at once.
        let client_reads = async {
            let (mut got, mut chunk) = (Vec::new(), [0; 256]);
            while got.len() < 24 << 10 {
                let n = client.read(&mut chunk).await.expect("read");
                got.extend_from_slice(chunk.get(..n).expect("read into the chunk"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            client.read_to_end(&mut got).await.expect("read to the end");
            client.shutdown().await.expect("half-close");
            got
        };
        let ((first, _), _, got) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(relaying, broker_sends, client_reads)
        })
        .await
        .expect("in time");
        assert!(got == sent, "every byte, in order: {} of {}", got.len(), sent.len());
        assert_eq!(first, First::Upstream);
    }

    /// A client's last burst before its end of file, written to wait for the end, that the
    /// broker's full window will not take at once is held until it does, as any other is: the
    /// kernel's "would block" is no failure.
    #[tokio::test]
    async fn a_last_burst_the_broker_will_not_take_at_once_is_held_until_it_does() {
        let (mut client, client_side) = pair().await;
        let (mut broker, upstream_side) = narrow_pair().await;
        let sent = pattern(256 << 10);
        let relaying = ended_within(client_side, upstream_side, Protocol::V5, Limits::default());
        let client_sends = async {
            client.write_all(&sent).await.expect("send");
            client.shutdown().await.expect("half-close");
            client.read_to_end(&mut Vec::new()).await.expect("read to the end")
        };
        let broker_reads = async {
            let mut got = Vec::new();
            broker.read_to_end(&mut got).await.expect("read to the end");
            drop(broker);
            got
        };
        let (ended, _, got) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(relaying, client_sends, broker_reads)
        })
        .await
        .expect("in time");
        assert!(got == sent, "every byte, in order: {} of {}", got.len(), sent.len());
        let (first, traffic) = ended.expect("relayed");
        assert_eq!((first, traffic.up), (First::Client, sent.len() as u64));
    }

    /// `sender` sends `bytes`, and resets its connection once the proxy has them all; `reader`,
    /// which has read none of them yet, then sends `nudge`, whose write the reset fails, and
    /// reads to the end: what it got.
    async fn reset_after_sending(
        mut sender: TcpStream,
        mut reader: TcpStream,
        bytes: &[u8],
        nudge: &[u8],
    ) -> Vec<u8> {
        sender.write_all(bytes).await.expect("send");
        while unacknowledged(&sender) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sender.set_zero_linger().expect("linger");
        drop(sender);
        reader.write_all(nudge).await.expect("send");
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.expect("read to the end");
        got
    }

    /// Relays while the client (`client_sends`) or the broker sends 64 KiB, far more than the
    /// other's small window takes, then a DISCONNECT, and resets once the proxy has them all;
    /// the other reads them only after. Asserts that it got every byte, and that the relay
    /// ended with the reset.
    async fn every_byte_sent_before_a_reset_arrives(client_sends: bool) {
        let (client, client_side) = if client_sends { pair().await } else { narrow_pair().await };
        let (broker, upstream_side) = if client_sends { narrow_pair().await } else { pair().await };
        let mut sent = pattern(64 << 10);
        sent.extend([0xe0, 0x00]);
        let relaying = ended_within(client_side, upstream_side, Protocol::V5, Limits::default());
        let resetting = match client_sends {
            true => reset_after_sending(client, broker, &sent, &[0xd0, 0x00]),
            false => reset_after_sending(broker, client, &sent, &[0xc0, 0x00]),
        };
        let (ended, got) =
            tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(relaying, resetting) })
                .await
                .expect("in time");
        assert!(got == sent, "every byte sent, in order: {} of {}", got.len(), sent.len());
        assert_eq!(ended.map(|(first, _)| first).map_err(|e| e.kind()), Err(io::ErrorKind::ConnectionReset));
    }

    /// A broker that resets its connection after sending fails the relay's write to it; its
    /// bytes that the proxy holds, and those in the proxy's receive queue, still reach the
    /// client. An error ended both directions at once, and they were lost.
    #[tokio::test]
    async fn a_failed_write_upstream_loses_none_of_the_brokers_bytes_on_their_way_down() {
        every_byte_sent_before_a_reset_arrives(false).await;
    }

    /// A client's DISCONNECT sent just before its reset still reaches the broker, though the
    /// relay's write of the broker's next packet to the client fails first: the broker would
    /// otherwise publish the client's Will.
    #[tokio::test]
    async fn a_clients_disconnect_sent_before_its_reset_reaches_the_broker() {
        every_byte_sent_before_a_reset_arrives(true).await;
    }

    /// The end of file taken from read-closed readiness, with no read for it, comes after
    /// every byte that was waiting with it.
    #[tokio::test]
    async fn last_bytes_waiting_with_the_end_of_file_are_passed_on_before_it() {
        let (mut client, client_side) = pair().await;
        let (upstream_side, mut broker) = pair().await;
        // A DISCONNECT and the FIN, both queued before the relay first looks.
        client.write_all(&[0xe0, 0x00]).await.expect("send");
        client.shutdown().await.expect("half-close");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let relaying = relayed(client_side, upstream_side, Protocol::V3_1_1);
        let broker_reads = async {
            let mut got = Vec::new();
            broker.read_to_end(&mut got).await.expect("read to the end");
            drop(broker);
            got
        };
        let ((first, traffic), got) =
            tokio::time::timeout(Duration::from_secs(5), async { tokio::join!(relaying, broker_reads) })
                .await
                .expect("in time");
        assert_eq!(got, [0xe0, 0x00], "the bytes, then the end");
        assert_eq!((first, traffic.up), (First::Client, 2));
    }

    /// The proxy's end of a broker's connection, noting which way each write went: to go out
    /// at once, or to wait for the end of file that follows (`MSG_MORE`).
    struct Noted {
        stream: TcpStream,
        at_once: Vec<Vec<u8>>,
        before_end: Vec<Vec<u8>>,
    }

    impl Noted {
        fn new(stream: TcpStream) -> Self {
            Self { stream, at_once: Vec::new(), before_end: Vec::new() }
        }
    }

    /// What `bytes` a write took, noted in `notes`.
    fn note(
        notes: &mut Vec<Vec<u8>>,
        bytes: &[u8],
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = written {
            notes.push(bytes.get(..n).unwrap_or(bytes).to_vec());
        }
        written
    }

    impl AsyncWrite for Noted {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bytes: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = &mut *self;
            note(&mut this.at_once, bytes, Pin::new(&mut this.stream).poll_write(cx, bytes))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.stream).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.stream).poll_shutdown(cx)
        }
    }

    impl Sink for Noted {
        fn poll_write_before_end(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
            note(&mut self.before_end, bytes, self.stream.poll_write_before_end(cx, bytes))
        }
    }

    /// A client that has sent a DISCONNECT, the proxy's end of it, the proxy's noted end of a
    /// broker's connection, and the broker.
    async fn disconnect_sent() -> (TcpStream, TcpStream, Noted, TcpStream) {
        let (mut client, client_side) = pair().await;
        let (upstream_side, broker) = pair().await;
        client.write_all(&[0xe0, 0x00]).await.expect("send");
        (client, client_side, Noted::new(upstream_side), broker)
    }

    /// Waits until `socket` has seen its peer's FIN, so that all sent before it is there too.
    async fn until_read_closed(socket: &TcpStream) {
        while !socket.ready(Interest::READABLE).await.expect("readiness").is_read_closed() {
            tokio::task::yield_now().await;
        }
    }

    /// A client's DISCONNECT and FIN, read through `read_as`, once both wait: pumped to the
    /// broker as last bytes, which the kernel holds for the FIN, so that one segment carries both.
    async fn last_bytes_are_written_to_wait_for_the_end<S: Source>(read_as: impl FnOnce(TcpStream) -> S) {
        let (mut client, client_side, mut upstream, mut broker) = disconnect_sent().await;
        client.shutdown().await.expect("half-close");
        until_read_closed(&client_side).await;
        let (mut pump, mut count, mut client_side) = (Pump::default(), 0, read_as(client_side));
        poll_fn(|cx| pump.poll(cx, &mut client_side, &mut upstream, true, &mut count, |_| {}))
            .await
            .expect("pumped to the end");
        assert_eq!(upstream.before_end, [[0xe0, 0x00]], "written to wait for the end");
        assert!(upstream.at_once.is_empty(), "nothing written to go out at once");
        let mut got = Vec::new();
        broker.read_to_end(&mut got).await.expect("read to the end");
        assert_eq!((got.as_slice(), count), (&[0xe0, 0x00][..], 2), "the bytes, then the end");
    }

    /// A socket's DISCONNECT and FIN that wait together go to the broker as last bytes.
    #[tokio::test]
    async fn last_bytes_read_with_the_end_of_file_known_are_written_to_wait_for_it() {
        last_bytes_are_written_to_wait_for_the_end(|socket| socket).await;
    }

    /// A plain client, as the relay reads it, knows its end of file from read-closed readiness
    /// too: its DISCONNECT and FIN that wait together go to the broker as last bytes.
    #[tokio::test]
    async fn a_plain_clients_last_bytes_are_written_to_wait_for_its_end_of_file() {
        last_bytes_are_written_to_wait_for_the_end(Client::Plain).await;
    }

    /// A failed write of last bytes fails the direction with its error, the broker's reset,
    /// as any failed write does: only "would block" is waited out. Retried, the reset would be
    /// lost, and a later write's broken pipe reported instead.
    #[tokio::test]
    async fn a_failed_write_of_last_bytes_fails_the_direction_with_its_error() {
        let (mut client, mut client_side) = pair().await;
        let (mut upstream, broker) = pair().await;
        client.write_all(&[0xe0, 0x00]).await.expect("send");
        client.shutdown().await.expect("half-close");
        until_read_closed(&client_side).await;
        broker.set_zero_linger().expect("linger");
        drop(broker);
        until_read_closed(&upstream).await;
        let (mut pump, mut count) = (Pump::default(), 0);
        let pumped =
            poll_fn(|cx| pump.poll(cx, &mut client_side, &mut upstream, true, &mut count, |_| {})).await;
        assert!(
            matches!(&pumped, Err(Failure::Write(e)) if e.kind() == io::ErrorKind::ConnectionReset),
            "the reset, as a write failure: {pumped:?}"
        );
    }

    /// Bytes whose end of file has not come go out at once: written to wait for an end that
    /// may never come, they would wait in the kernel for more.
    #[tokio::test]
    async fn bytes_read_with_the_end_of_file_not_come_are_written_at_once() {
        let (_client, mut client_side, mut upstream, mut broker) = disconnect_sent().await;
        client_side.readable().await.expect("readable");
        let (mut pump, mut count) = (Pump::default(), 0);
        let pumped = poll_fn(|cx| {
            Poll::Ready(pump.poll(cx, &mut client_side, &mut upstream, true, &mut count, |_| {}))
        });
        assert!(pumped.await.is_pending(), "still reading, since the client has not ended");
        assert_eq!(upstream.at_once, [[0xe0, 0x00]], "written to go out at once");
        assert!(upstream.before_end.is_empty(), "nothing written to wait for an end");
        let mut got = [0; 2];
        broker.read_exact(&mut got).await.expect("the bytes");
        assert_eq!((got, count), ([0xe0, 0x00], 2));
    }

    /// A reader whose every read fails with one kind of error, as a TLS client's does when it
    /// closes without close_notify (`UnexpectedEof`) or a peer's reset does.
    struct Failing(io::ErrorKind);

    impl AsyncRead for Failing {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(self.0.into()))
        }
    }

    impl Source for Failing {
        fn poll_finished(&mut self, _: &mut Context<'_>) -> Poll<io::Result<bool>> {
            Poll::Ready(Ok(false))
        }
    }

    /// Pumps from a reader failing with `kind` to the proxy's end of a broker's connection until
    /// ready: the outcome, the bursts seen, and what the broker then reads to its end.
    async fn pumped_from_failing(kind: io::ErrorKind) -> (Result<(), Failure>, Vec<Vec<u8>>, Vec<u8>) {
        let (mut upstream, mut broker) = pair().await;
        let (mut pump, mut count, mut seen) = (Pump::default(), 0, Vec::new());
        let pumped = poll_fn(|cx| {
            pump.poll(cx, &mut Failing(kind), &mut upstream, true, &mut count, |bytes| {
                seen.push(bytes.to_vec())
            })
        })
        .await;
        drop(upstream);
        let mut got = Vec::new();
        broker.read_to_end(&mut got).await.expect("read to the end");
        (pumped, seen, got)
    }

    /// A TLS client that closes without close_notify, as many MQTT clients do, has ended: its
    /// end is seen and passed on, and the direction ends without an error.
    #[tokio::test]
    async fn an_unexpected_end_of_file_ends_the_direction_as_an_end_of_file() {
        let (pumped, seen, got) = pumped_from_failing(io::ErrorKind::UnexpectedEof).await;
        assert!(pumped.is_ok(), "ended, not failed: {pumped:?}");
        assert_eq!(seen, [Vec::<u8>::new()], "the end seen as an empty burst");
        assert!(got.is_empty());
    }

    /// Any other failed read fails the direction as a read, whose socket is gone both ways.
    #[tokio::test]
    async fn a_failed_read_fails_the_direction_as_a_read() {
        let (pumped, seen, _) = pumped_from_failing(io::ErrorKind::ConnectionReset).await;
        assert!(
            matches!(&pumped, Err(Failure::Read(e)) if e.kind() == io::ErrorKind::ConnectionReset),
            "a read failure: {pumped:?}"
        );
        assert!(seen.is_empty(), "no end of file seen: {seen:?}");
    }

    /// A writer that takes `takes` bytes, then fails every write, as one whose peer reset does.
    struct Breaking {
        takes: usize,
    }

    impl AsyncWrite for Breaking {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bytes: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = self.takes.min(bytes.len());
            self.takes -= n;
            match n {
                0 => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                n => Poll::Ready(Ok(n)),
            }
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Sink for Breaking {}

    /// The part of a burst written before a write of the rest failed is counted: it was relayed.
    #[tokio::test]
    async fn bytes_written_before_a_failed_write_are_counted() {
        let (mut client, mut client_side) = pair().await;
        client.write_all(&pattern(10)).await.expect("send");
        client_side.readable().await.expect("readable");
        let (mut pump, mut count, mut to) = (Pump::default(), 0, Breaking { takes: 4 });
        let pumped = poll_fn(|cx| pump.poll(cx, &mut client_side, &mut to, true, &mut count, |_| {})).await;
        assert!(
            matches!(&pumped, Err(Failure::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe),
            "{pumped:?}"
        );
        assert_eq!(count, 4, "the bytes the writer took");
    }
}
