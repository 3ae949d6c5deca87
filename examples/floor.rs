//! The least a TCP forwarder in front of MQTT brokers can do, as the floor the proxy's cost is
//! read against in `benches/proxy.sh cpu`: it reads the client's first bytes without looking at
//! them, connects to the next upstream in turn, writes them, and copies both ways until each
//! side has closed (`tokio::io::copy_bidirectional`, half-close passed on). No parsing, hashing,
//! limits, metrics or logs; the proxy's threading (a current-thread runtime per CPU, each
//! accepting on its own `SO_REUSEPORT` socket), and Nagle off as the proxy has it. What the
//! proxy costs beyond this is what its own work costs. `examples/floor_epoll.rs` is the same
//! forwarder without the runtime.
//!
//! ```sh
//! cargo run --release --example floor -- --listen 127.0.0.1:9200 --upstream 127.0.0.1:1883
//! ```

use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// The proxy's own listening socket, so that the floor listens exactly as the proxy does.
#[path = "proxy/listener.rs"]
mod listener;

use listener::listen;

#[derive(Parser)]
#[command(about = "A TCP forwarder that does nothing else: the floor for the proxy's cost")]
struct Args {
    /// Address to accept clients on.
    #[arg(long)]
    listen: SocketAddr,
    /// Upstreams, taken in turn; give one or more.
    #[arg(long, required = true)]
    upstream: Vec<SocketAddr>,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let upstreams: Arc<[SocketAddr]> = args.upstream.into();
    let next = Arc::new(AtomicUsize::new(0));
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let start_one = |_| {
        let socket = listen(args.listen)?;
        let (upstreams, next) = (upstreams.clone(), next.clone());
        Ok(std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(accept(socket, upstreams, next))
        }))
    };
    let workers: Vec<_> = (0..threads).map(start_one).collect::<io::Result<_>>()?;
    for worker in workers {
        worker.join().map_err(|_| io::Error::other("a worker panicked"))??;
    }
    Ok(())
}

async fn accept(
    socket: std::net::TcpListener,
    upstreams: Arc<[SocketAddr]>,
    next: Arc<AtomicUsize>,
) -> io::Result<()> {
    let listener = TcpListener::from_std(socket)?;
    loop {
        let (client, _) = listener.accept().await?;
        let turn = next.fetch_add(1, Ordering::Relaxed);
        let upstream = upstreams.get(turn % upstreams.len()).copied();
        tokio::spawn(async move {
            if let Some(upstream) = upstream {
                // A client that goes before its upstream answers is no concern of the floor's.
                let _ = forward(client, upstream).await;
            }
        });
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    let mut first = [0; 256];
    let n = client.read(&mut first).await?;
    if n == 0 {
        return Ok(());
    }
    let mut upstream = TcpStream::connect(upstream).await?;
    upstream.set_nodelay(true)?;
    upstream.write_all(first.get(..n).unwrap_or_default()).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
