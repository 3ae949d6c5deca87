//! The listening socket a worker accepts on. `examples/floor.rs` includes this file too, so
//! that the floor it is measured against listens exactly as the proxy does.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Capped by the kernel's net.core.somaxconn.
const BACKLOG: i32 = 8192;

/// A listening socket that other workers' sockets share the address of (`SO_REUSEPORT`), whose
/// backlog absorbs a burst of connects, which the default of 1024 does not: the clients of a
/// failed broker all come back at once.
pub fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // MQTT packets are small and latency-bound, so Nagle must not hold them back. Accepted
    // sockets inherit the option from their listener (Linux and the BSDs), which saves a
    // `setsockopt` per connection (setsockopt calls per connection 2 -> 1, `strace -c -f`).
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// The proxy sets no option on an accepted socket: Nagle is off because the listener's
    /// setting is inherited, which this holds the kernel to.
    #[tokio::test]
    async fn accepted_clients_have_nagle_off_from_their_listener() {
        let listener = listen("127.0.0.1:0".parse().expect("address")).expect("listen");
        let listener = TcpListener::from_std(listener).expect("register");
        let addr = listener.local_addr().expect("its address");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(accepted.nodelay().expect("read TCP_NODELAY"));
    }
}
