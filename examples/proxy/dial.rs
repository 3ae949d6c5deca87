//! An upstream connection opened with its first bytes already on their way.
//!
//! tokio's `TcpStream::connect` waits for the socket to turn writable, through a turn of the
//! event loop, then asks the kernel how the connect went (`getsockopt(SO_ERROR)`), and only
//! then may the CONNECT be written. Here the bytes are written as soon as `connect(2)` returns,
//! as HAProxy does. On loopback the handshake has completed inside that call, and the write
//! goes at once; over a network the kernel answers `EAGAIN` while the handshake is under way,
//! and the socket is then waited on as tokio would; a refused connect fails the write with the
//! connect's own error. With the client's local address no longer asked for (it is needed only
//! for an outgoing PROXY header), this took the proxy from 23.1 to 21.1 system calls per
//! connection (`benches/proxy.sh profile`), and its CPU per connection from 117.5, 119.0 and
//! 125.0 µs to 113.5, 111.5 and 118.0 µs in three rounds of one run beside the build before
//! (`BASELINE=... benches/proxy.sh cpu`).

use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, lookup_host};

/// Connects to `addr` (`HOST:PORT`, resolved now; a literal address is not looked up) and
/// writes `first` (the PROXY header, the CONNECT and what the client pipelined after it; any
/// may be empty), all of it, trying each address the name resolves to in turn.
pub async fn dial(addr: &str, first: [&[u8]; 3]) -> io::Result<TcpStream> {
    let mut failed = None;
    for addr in lookup_host(addr).await? {
        match dial_one(addr, first).await {
            Ok(stream) => return Ok(stream),
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "resolved to no address")))
}

async fn dial_one(addr: SocketAddr, first: [&[u8]; 3]) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    // MQTT packets are small and latency-bound; don't let Nagle hold them back.
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let socket = std::net::TcpStream::from(socket);
    let mut slices = first.map(IoSlice::new);
    let mut rest = &mut slices[..];
    match (&socket).write_vectored(rest) {
        Ok(n) => IoSlice::advance_slices(&mut rest, n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let mut stream = TcpStream::from_std(socket)?;
    while !rest.is_empty() {
        match stream.write_vectored(rest).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => IoSlice::advance_slices(&mut rest, n),
        }
    }
    Ok(stream)
}
