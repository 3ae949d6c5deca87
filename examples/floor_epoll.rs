//! The floor of `examples/floor.rs` without a runtime: the same forwarder written straight on
//! epoll (mio), as the lowest a user-space proxy in front of MQTT brokers can cost here, which
//! `benches/proxy.sh cpu` measures beside the proxy and HAProxy.
//!
//! It does only what a forwarder cannot leave out, each in as few system calls as the proxy
//! spends: a worker thread per CPU, each accepting on its own `SO_REUSEPORT` socket (the proxy's
//! listener); the client's first bytes read unparsed and written to the next upstream in turn as
//! soon as `connect(2)` returns; then both ways until each side has ended, an end of file taken
//! from read-closed readiness after a short read and passed on with `shutdown`, in the segment
//! of the last bytes (`MSG_MORE`), as the proxy passes it on. Sockets are closed without being
//! deregistered first (`close` removes them from epoll), and no task, timer, waker or allocation
//! but one per connection is involved. No limits, refusals, timeouts, parsing or logs.
//!
//! ```sh
//! cargo run --release --example floor_epoll -- --listen 127.0.0.1:9200 --upstream 127.0.0.1:1883
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

// The proxy's own listening socket, so that this floor listens exactly as the proxy does.
#[path = "proxy/listener.rs"]
mod listener;

use listener::listen;

#[derive(Parser)]
#[command(about = "A TCP forwarder straight on epoll: the floor for any user-space proxy's cost")]
struct Args {
    /// Address to accept clients on.
    #[arg(long)]
    listen: SocketAddr,
    /// Upstreams, taken in turn; give one or more.
    #[arg(long, required = true)]
    upstream: Vec<SocketAddr>,
}

/// The listener's token; a connection's are `2 × slot` for its client and one more for its
/// upstream.
const LISTENER: Token = Token(usize::MAX);

/// A direction's buffer: MQTT's CONNECT, CONNACK and DISCONNECT fit many times over.
const BUFFER: usize = 4096;

fn main() -> io::Result<()> {
    let args = Args::parse();
    let upstreams: Arc<[SocketAddr]> = args.upstream.into();
    let next = Arc::new(AtomicUsize::new(0));
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let start_one = |_| {
        let socket = listen(args.listen)?;
        let (upstreams, next) = (upstreams.clone(), next.clone());
        Ok(std::thread::spawn(move || Worker::new(socket)?.run(&upstreams, &next)))
    };
    let workers: Vec<_> = (0..threads).map(start_one).collect::<io::Result<_>>()?;
    for worker in workers {
        worker.join().map_err(|_| io::Error::other("a worker panicked"))??;
    }
    Ok(())
}

/// One thread's event loop, its listener and its connections.
struct Worker {
    poll: Poll,
    listener: TcpListener,
    /// Connections by slot; a slot is reused once its connection has ended.
    pairs: Vec<Option<Pair>>,
    free: Vec<usize>,
    /// Slots ended in this batch of events, free from the next: an event later in the batch
    /// may still name the connection that had it.
    ended: Vec<usize>,
}

impl Worker {
    fn new(socket: std::net::TcpListener) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(socket);
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Self { poll, listener, pairs: Vec::new(), free: Vec::new(), ended: Vec::new() })
    }

    fn run(mut self, upstreams: &[SocketAddr], next: &AtomicUsize) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            match self.poll.poll(&mut events, None) {
                // A signal, such as strace's detaching, is no reason to stop.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => result?,
            }
            self.free.append(&mut self.ended);
            for event in &events {
                if event.token() == LISTENER {
                    self.accept()?;
                    continue;
                }
                let slot = event.token().0 / 2;
                let Some(pair) = self.pairs.get_mut(slot).and_then(Option::as_mut) else {
                    continue;
                };
                if event.is_read_closed() {
                    let toward = if event.token().0 % 2 == 0 { &mut pair.up } else { &mut pair.down };
                    toward.read_closed = true;
                }
                let upstream = || {
                    let turn = next.fetch_add(1, Ordering::Relaxed);
                    upstreams.get(turn % upstreams.len()).copied()
                };
                // Any error ends the connection: the floor tells no one why.
                let done = pair.step(self.poll.registry(), Token(slot * 2 + 1), upstream).unwrap_or(true);
                if done {
                    // Closing both sockets takes them out of epoll.
                    if let Some(ended) = self.pairs.get_mut(slot) {
                        *ended = None;
                        self.ended.push(slot);
                    }
                }
            }
        }
    }

    /// Accepts until the backlog is empty, as edge-triggered readiness requires.
    fn accept(&mut self) -> io::Result<()> {
        loop {
            let mut client = match self.listener.accept() {
                Ok((client, _)) => client,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // Out of descriptors, say: the floor refuses no one, and waits for the next.
                Err(_) => return Ok(()),
            };
            let slot = self.free.pop().unwrap_or(self.pairs.len());
            self.poll.registry().register(&mut client, Token(slot * 2), Interest::READABLE)?;
            let pair = Some(Pair { client, upstream: None, up: Half::new(), down: Half::new() });
            match self.pairs.get_mut(slot) {
                Some(empty) => *empty = pair,
                None => self.pairs.push(pair),
            }
        }
    }
}

/// A client and, once its first bytes have come, its upstream.
struct Pair {
    client: TcpStream,
    upstream: Option<TcpStream>,
    /// Client to upstream.
    up: Half,
    /// Upstream to client.
    down: Half,
}

impl Pair {
    /// Moves what can be moved; true once both directions have ended.
    fn step(
        &mut self,
        registry: &mio::Registry,
        token: Token,
        upstream: impl FnOnce() -> Option<SocketAddr>,
    ) -> io::Result<bool> {
        if self.upstream.is_none() {
            let n = match self.client.read(self.up.buffer.as_mut_slice()) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            let addr = upstream().ok_or(io::ErrorKind::InvalidInput)?;
            let (mut stream, written) = dial(addr, self.up.buffer.get(..n).unwrap_or_default())?;
            registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
            self.up.pending = written..n;
            self.upstream = Some(stream);
        }
        let Some(stream) = self.upstream.as_mut() else { return Ok(false) };
        self.up.pump(&mut self.client, stream)?;
        self.down.pump(stream, &mut self.client)?;
        Ok(self.up.shut && self.down.shut)
    }
}

/// One direction: what was read and not yet written, and how far its end has come.
struct Half {
    buffer: Box<[u8; BUFFER]>,
    pending: std::ops::Range<usize>,
    /// The source's read-closed readiness has been seen: a short read has drained it.
    read_closed: bool,
    /// The source has ended; once `pending` is written, so does the sink.
    ended: bool,
    /// The sink has been shut for writing: this direction is over.
    shut: bool,
}

impl Half {
    fn new() -> Self {
        Self { buffer: Box::new([0; BUFFER]), pending: 0..0, read_closed: false, ended: false, shut: false }
    }

    /// Writes what is pending, reads more, and so on until either side would block.
    fn pump(&mut self, from: &mut TcpStream, to: &mut TcpStream) -> io::Result<()> {
        loop {
            while !self.pending.is_empty() {
                let bytes = self.buffer.get(self.pending.clone()).unwrap_or_default();
                // The end follows these bytes: with `MSG_MORE` its FIN rides in their segment,
                // as the proxy's relay sends a client's DISCONNECT and FIN.
                let sent = if self.ended {
                    socket2::SockRef::from(&*to).send_with_flags(bytes, libc::MSG_MORE)
                } else {
                    to.write(bytes)
                };
                match sent {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.pending.start += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            if self.ended {
                if !self.shut {
                    self.shut = true;
                    to.shutdown(Shutdown::Write)?;
                }
                return Ok(());
            }
            match from.read(self.buffer.as_mut_slice()) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    self.pending = 0..n;
                    self.ended = self.read_closed && n < BUFFER;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Opens a connection to `addr` and writes `first` as soon as `connect(2)` returns, as the
/// proxy's `dial` does; returns how much of it went.
fn dial(addr: SocketAddr, first: &[u8]) -> io::Result<(TcpStream, usize)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let socket = std::net::TcpStream::from(socket);
    let written = match (&socket).write(first) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    Ok((TcpStream::from_std(socket), written))
}
