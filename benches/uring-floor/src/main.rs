//! The epoll floor (`examples/floor_epoll.rs`) on io_uring: the same forwarder, with no readiness
//! events at all, so that `benches/proxy.sh cpu` can show what a user-space proxy would cost if
//! it gave up epoll. io_uring is the one way left to spend fewer system calls than the epoll
//! floor: each worker's loop is one `io_uring_enter` that submits what the last completions
//! asked for and waits for the next, and a socket is never added to or removed from an epoll set.
//!
//! It does what the epoll floor does, op for op: a worker thread per CPU, each with its own ring
//! and its own `SO_REUSEPORT` socket (the proxy's listener), accepting with one multishot accept;
//! the client's first bytes read unparsed and sent to the next upstream in turn once `connect`
//! completes (the send linked to the connect, so both go in one submission); then both ways until
//! each side has ended. After each read it tries one more without waiting, so that an end of file
//! that has already come rides in the segment of the last bytes (`MSG_MORE`, then a `shutdown`
//! linked to the send), as the epoll floor's read-closed readiness and the proxy's relay do.
//! Sockets are closed through the ring. No limits, refusals, timeouts, parsing or logs.
//!
//! It costs 0.96× to 0.98× of the epoll floor's CPU a connection, still above 0.8× of HAProxy's
//! (`benches/README.md`, "The floor without epoll: io_uring").
//!
//! ```sh
//! cargo run --release --manifest-path benches/uring-floor/Cargo.toml -- \
//!     --listen 127.0.0.1:9200 --upstream 127.0.0.1:1883
//! ```

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use io_uring::types::{Fd, SubmitArgs};
use io_uring::{IoUring, cqueue, opcode, squeue};
use socket2::{Protocol, SockAddr, Socket, Type};

// The proxy's own listening socket, so that this floor listens exactly as the proxy does.
#[path = "../../../examples/proxy/listener.rs"]
mod listener;

#[derive(Parser)]
#[command(about = "A TCP forwarder on io_uring: the floor for a user-space proxy without epoll")]
struct Args {
    /// Address to accept clients on.
    #[arg(long)]
    listen: SocketAddr,
    /// Upstreams, taken in turn; give one or more.
    #[arg(long, required = true)]
    upstream: Vec<SocketAddr>,
    /// Completions a worker waits for before it wakes, once `--min-wait-us` has passed without
    /// them it wakes for one; 1 is the epoll floor's wake-up on the first event.
    #[arg(long, default_value_t = 1)]
    wait_for: usize,
    /// How long a worker waits for `--wait-for` completions (kernel 6.12 or later).
    #[arg(long, default_value_t = 0)]
    min_wait_us: u32,
}

/// A direction's buffer: MQTT's CONNECT, CONNACK and DISCONNECT fit many times over.
const BUFFER: usize = 4096;

/// Submission queue entries a ring; completions get twice as many, and the kernel keeps any
/// that overflow.
const ENTRIES: u32 = 1024;

/// The multishot accept's `user_data`; a connection's ops carry `slot << 4 | op`.
const ACCEPT: u64 = u64::MAX;

fn main() -> io::Result<()> {
    let args = Args::parse();
    let upstreams: Arc<[SockAddr]> = args.upstream.iter().map(|&a| SockAddr::from(a)).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let start_one = |_| {
        let socket = listener::listen(args.listen)?;
        let (upstreams, next) = (upstreams.clone(), next.clone());
        let wait = (args.wait_for, args.min_wait_us);
        Ok(std::thread::spawn(move || Worker::new(socket, upstreams, next, wait)?.run()))
    };
    let workers: Vec<_> = (0..threads).map(start_one).collect::<io::Result<_>>()?;
    for worker in workers {
        worker.join().map_err(|_| io::Error::other("a worker panicked"))??;
    }
    Ok(())
}

/// A ring for the calling thread, the only one that will use it. Its completions' task work
/// runs when the thread asks for completions, not as each comes: with the kernel's defaults it
/// interrupts the thread, which cost 1.03× the epoll floor's CPU a connection in three runs of
/// `cpu`, against 0.96× to 0.98× this way.
fn ring() -> io::Result<IoUring> {
    IoUring::builder().setup_single_issuer().setup_defer_taskrun().build(ENTRIES)
}

/// Client to upstream, or upstream to client: the index of a pair's [`Half`].
#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Up = 0,
    Down = 1,
}

/// What a completion finishes.
#[derive(Clone, Copy)]
enum Op {
    /// A read that waits for bytes.
    Recv(Dir),
    /// A read that does not wait, after bytes: is more, or the end, already there?
    Peek(Dir),
    Send(Dir),
    Shutdown(Dir),
    Connect,
    Close,
}

impl Op {
    fn code(self) -> u64 {
        match self {
            Op::Recv(d) => d as u64,
            Op::Peek(d) => 2 + d as u64,
            Op::Send(d) => 4 + d as u64,
            Op::Shutdown(d) => 6 + d as u64,
            Op::Connect => 8,
            Op::Close => 9,
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        let dir = if code.is_multiple_of(2) { Dir::Up } else { Dir::Down };
        Some(match code {
            0 | 1 => Op::Recv(dir),
            2 | 3 => Op::Peek(dir),
            4 | 5 => Op::Send(dir),
            6 | 7 => Op::Shutdown(dir),
            8 => Op::Connect,
            9 => Op::Close,
            _ => return None,
        })
    }
}

/// A client and, once its first bytes have come, its upstream.
struct Pair {
    client: Option<Socket>,
    upstream: Option<Socket>,
    halves: [Half; 2],
    /// Ops submitted and not yet completed: the slot, and the buffers the kernel may still
    /// write, are freed only at zero.
    inflight: u32,
    /// The upstream's index, taken in turn when the first bytes come.
    target: usize,
    /// An error, or a client gone before its first bytes: both sockets are shut both ways so
    /// that what is in flight completes, then closed.
    failed: bool,
}

/// One direction: what was read and not yet sent, and how far its end has come.
struct Half {
    buffer: Box<[u8; BUFFER]>,
    len: usize,
    /// The source has ended; once `len` bytes are sent, the sink is shut for writing.
    ended: bool,
    /// The sink has been shut for writing: this direction is over.
    shut: bool,
}

impl Half {
    fn new() -> Self {
        Self { buffer: Box::new([0; BUFFER]), len: 0, ended: false, shut: false }
    }
}

impl Pair {
    fn fd(&self, dir: Dir, source: bool) -> Option<Fd> {
        let from_client = (dir == Dir::Up) == source;
        let socket = if from_client { self.client.as_ref() } else { self.upstream.as_ref() };
        socket.map(|s| Fd(s.as_raw_fd()))
    }

    fn done(&self) -> bool {
        self.failed || self.halves.iter().all(|h| h.shut)
    }
}

/// One thread's ring, its listener and its connections.
struct Worker {
    ring: IoUring,
    listener: std::net::TcpListener,
    pairs: Vec<Option<Pair>>,
    free: Vec<usize>,
    upstreams: Arc<[SockAddr]>,
    next: Arc<AtomicUsize>,
    /// A batch of completions, taken off the ring before any is handled.
    batch: Vec<(u64, i32, u32)>,
    /// `--wait-for` and `--min-wait-us`.
    wait: (usize, u32),
}

impl Worker {
    fn new(
        listener: std::net::TcpListener,
        upstreams: Arc<[SockAddr]>,
        next: Arc<AtomicUsize>,
        wait: (usize, u32),
    ) -> io::Result<Self> {
        let ring = ring()?;
        Ok(Self {
            ring,
            listener,
            pairs: Vec::new(),
            free: Vec::new(),
            upstreams,
            next,
            batch: Vec::new(),
            wait,
        })
    }

    fn run(mut self) -> io::Result<()> {
        self.accept()?;
        loop {
            let args = SubmitArgs::new().min_wait_usec(self.wait.1);
            match self.ring.submitter().submit_with_args(self.wait.0, &args) {
                // A signal, such as strace's detaching, is no reason to stop.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // `--min-wait-us` passed with no completion at all.
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => 0,
                result => result?,
            };
            self.batch.extend(self.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
            let mut batch = std::mem::take(&mut self.batch);
            for &(data, result, flags) in &batch {
                self.complete(data, result, flags)?;
            }
            batch.clear();
            self.batch = batch;
        }
    }

    /// Queues `entry`, submitting what is queued first if the queue is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every pointer an entry holds outlives its op: buffers are boxed in a pair
            // that is dropped only once none of its ops is in flight, and upstream addresses live
            // in `upstreams` for the whole run.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn accept(&mut self) -> io::Result<()> {
        let entry = opcode::AcceptMulti::new(Fd(self.listener.as_raw_fd())).build().user_data(ACCEPT);
        self.push(&entry)
    }

    /// Submits `op` for the pair in `slot`.
    fn submit(&mut self, slot: usize, op: Op) -> io::Result<()> {
        let Some(pair) = self.pairs.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        let fd = |pair: &Pair, dir, source| pair.fd(dir, source).ok_or(io::ErrorKind::NotConnected);
        let entry = match op {
            Op::Recv(dir) | Op::Peek(dir) => {
                let from = fd(pair, dir, true)?;
                let half = &mut pair.halves[dir as usize];
                let free = &mut half.buffer[half.len..];
                let flags = if matches!(op, Op::Peek(_)) { libc::MSG_DONTWAIT } else { 0 };
                opcode::Recv::new(from, free.as_mut_ptr(), free.len() as u32).flags(flags).build()
            }
            Op::Send(dir) => {
                let to = fd(pair, dir, false)?;
                let half = &pair.halves[dir as usize];
                let bytes = &half.buffer[..half.len];
                // The end follows these bytes: with `MSG_MORE` its FIN rides in their segment.
                let more = if half.ended { libc::MSG_MORE } else { 0 };
                let send =
                    opcode::Send::new(to, bytes.as_ptr(), bytes.len() as u32).flags(libc::MSG_WAITALL | more);
                let link = if half.ended { squeue::Flags::IO_LINK } else { squeue::Flags::empty() };
                send.build().flags(link)
            }
            Op::Shutdown(dir) => opcode::Shutdown::new(fd(pair, dir, false)?, libc::SHUT_WR).build(),
            Op::Connect => {
                let addr = &self.upstreams[pair.target];
                let to = fd(pair, Dir::Up, false)?;
                opcode::Connect::new(to, addr.as_ptr().cast(), addr.len())
                    .build()
                    .flags(squeue::Flags::IO_LINK)
            }
            Op::Close => unreachable!("closes are submitted by `close`"),
        };
        pair.inflight += 1;
        self.push(&entry.user_data((slot as u64) << 4 | op.code()))
    }

    fn complete(&mut self, data: u64, result: i32, flags: u32) -> io::Result<()> {
        if data == ACCEPT {
            if result >= 0 {
                // SAFETY: a successful accept's result is a new descriptor that nothing else owns.
                self.admit(unsafe { Socket::from_raw_fd(result) })?;
            }
            return if cqueue::more(flags) { Ok(()) } else { self.accept() };
        }
        let slot = (data >> 4) as usize;
        let (Some(op), Some(pair)) =
            (Op::from_code(data & 0xf), self.pairs.get_mut(slot).and_then(Option::as_mut))
        else {
            return Ok(());
        };
        pair.inflight -= 1;
        if !pair.failed {
            // Any error ends the connection: the floor tells no one why.
            if self.step(slot, op, result).is_err() {
                self.fail(slot);
            }
        }
        self.end_if_done(slot)
    }

    fn admit(&mut self, client: Socket) -> io::Result<()> {
        let slot = self.free.pop().unwrap_or(self.pairs.len());
        let pair = Pair {
            client: Some(client),
            upstream: None,
            halves: [Half::new(), Half::new()],
            inflight: 0,
            target: 0,
            failed: false,
        };
        match self.pairs.get_mut(slot) {
            Some(empty) => *empty = Some(pair),
            None => self.pairs.push(Some(pair)),
        }
        self.submit(slot, Op::Recv(Dir::Up))
    }

    /// Moves a connection on from one completion.
    fn step(&mut self, slot: usize, op: Op, result: i32) -> io::Result<()> {
        let pair = self.pairs[slot].as_mut().expect("a completion's pair is live");
        if result < 0 && !(matches!(op, Op::Peek(_)) && result == -libc::EAGAIN) {
            return Err(io::Error::from_raw_os_error(-result));
        }
        let n = result as usize;
        match op {
            Op::Recv(Dir::Up) if pair.upstream.is_none() => {
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                pair.halves[0].len = n;
                pair.target = self.next.fetch_add(1, Ordering::Relaxed) % self.upstreams.len();
                pair.upstream = Some(dial(&self.upstreams[pair.target])?);
                // The first bytes go as soon as the connect completes, in the same submission.
                self.submit(slot, Op::Connect)?;
                self.submit(slot, Op::Send(Dir::Up))
            }
            Op::Recv(dir) => {
                let half = &mut pair.halves[dir as usize];
                if n == 0 {
                    half.ended = true;
                    return self.submit(slot, Op::Shutdown(dir));
                }
                half.len = n;
                self.submit(slot, Op::Peek(dir))
            }
            Op::Peek(dir) => {
                let half = &mut pair.halves[dir as usize];
                match result {
                    0 => {
                        half.ended = true;
                        self.submit(slot, Op::Send(dir))?;
                        self.submit(slot, Op::Shutdown(dir))
                    }
                    r if r > 0 && half.len + n < BUFFER => {
                        half.len += n;
                        self.submit(slot, Op::Peek(dir))
                    }
                    r => {
                        half.len += r.max(0) as usize;
                        self.submit(slot, Op::Send(dir))
                    }
                }
            }
            Op::Send(dir) => {
                let half = &mut pair.halves[dir as usize];
                if n != half.len {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                half.len = 0;
                // An ended half's shutdown is linked to this send, and follows by itself.
                if half.ended { Ok(()) } else { self.submit(slot, Op::Recv(dir)) }
            }
            Op::Shutdown(dir) => {
                pair.halves[dir as usize].shut = true;
                Ok(())
            }
            Op::Connect => self.submit(slot, Op::Recv(Dir::Down)),
            Op::Close => Ok(()),
        }
    }

    /// Shuts both sockets both ways, so that their ops in flight complete.
    fn fail(&mut self, slot: usize) {
        if let Some(pair) = self.pairs.get_mut(slot).and_then(Option::as_mut) {
            pair.failed = true;
            for socket in [&pair.client, &pair.upstream].into_iter().flatten() {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }

    /// Closes a finished connection's sockets through the ring, and frees its slot once the
    /// closes have completed.
    fn end_if_done(&mut self, slot: usize) -> io::Result<()> {
        let Some(pair) = self.pairs.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        if pair.inflight > 0 || !pair.done() {
            return Ok(());
        }
        let sockets = [pair.client.take(), pair.upstream.take()];
        if sockets.iter().all(Option::is_none) {
            self.pairs[slot] = None;
            self.free.push(slot);
            return Ok(());
        }
        pair.inflight = sockets.iter().flatten().count() as u32;
        for socket in sockets.into_iter().flatten() {
            let entry = opcode::Close::new(Fd(socket.into_raw_fd())).build();
            let entry = entry.user_data((slot as u64) << 4 | Op::Close.code());
            self.push(&entry)?;
        }
        Ok(())
    }
}

/// A socket for the next upstream, with Nagle off, as the proxy's and the epoll floor's.
fn dial(addr: &SockAddr) -> io::Result<Socket> {
    let socket = Socket::new(addr.domain(), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket)
}
