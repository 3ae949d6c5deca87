//! The listeners and what all connections share: the config in force, the count of live
//! connections against the cap, and passive health. A reload swaps the config for new
//! connections only; a shutdown stops accepting and lets live connections drain.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::health::Health;
use crate::session;

/// A bound proxy, ready to run.
pub struct Proxy {
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
}

/// Reloads and stops a running proxy; cheap to clone.
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

struct Shared {
    config: watch::Sender<Arc<Config>>,
    /// Connections being proxied; refused ones don't count.
    live: watch::Sender<usize>,
    health: Health,
    stop: watch::Sender<bool>,
}

impl Proxy {
    /// Binds every listen address of `config`; call it inside the runtime.
    pub fn bind(config: Config) -> io::Result<Self> {
        let mut listeners = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            listeners.push(listen(addr)?);
        }
        let shared = Shared {
            config: watch::Sender::new(Arc::new(config)),
            live: watch::Sender::new(0),
            health: Health::default(),
            stop: watch::Sender::new(false),
        };
        Ok(Self { listeners, shared: Arc::new(shared) })
    }

    /// Where it listens, ports resolved.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(TcpListener::local_addr).collect()
    }

    pub fn handle(&self) -> Handle {
        Handle(self.shared.clone())
    }

    /// Accepts until [`Handle::shutdown`], then waits for live connections to end, up to the
    /// drain deadline.
    pub async fn run(self) {
        let mut accepting = JoinSet::new();
        for listener in self.listeners {
            accepting.spawn(accept(listener, self.shared.clone()));
        }
        self.shared.stop.subscribe().wait_for(|&stop| stop).await.ok();
        accepting.shutdown().await;

        let drain = self.shared.config.borrow().limits.drain();
        tracing::info!(live = *self.shared.live.borrow(), "stopped accepting; draining");
        let mut live = self.shared.live.subscribe();
        match tokio::time::timeout(drain, live.wait_for(|&n| n == 0)).await {
            Ok(_) => tracing::info!("drained"),
            Err(_) => tracing::warn!(live = *self.shared.live.borrow(), "drain deadline passed; closing"),
        }
    }
}

impl Handle {
    /// Puts the file's config in force for new connections; live ones keep their upstream. A
    /// file that fails to read, parse or check is refused with a log line, and the old config
    /// stays.
    pub fn reload(&self, path: &Path) -> Result<(), String> {
        let config = Config::load(path).inspect_err(|e| {
            tracing::error!(error = %e, "config refused; the previous one stays in force");
        })?;
        if config.listen != self.0.config.borrow().listen {
            tracing::warn!("listen addresses change only on restart; routes and limits reloaded");
        }
        tracing::info!(routes = config.routes.len(), "config reloaded");
        self.0.config.send_replace(Arc::new(config));
        Ok(())
    }

    pub fn shutdown(&self) {
        self.0.stop.send_replace(true);
    }
}

/// A listening socket whose backlog absorbs a burst of connects, which the default of 1024 does
/// not: the clients of a failed broker all come back at once.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Capped by the kernel's net.core.somaxconn.
const BACKLOG: u32 = 8192;

/// Hands each client to its own task, with the config in force when it arrived.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: wait for some to free rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        client.set_nodelay(true).ok();
        let config = shared.config.borrow().clone();
        match Slot::take(&shared, config.limits.max_connections) {
            Some(slot) => tokio::spawn(async move {
                session::serve(client, peer, &config, &slot.0.health).await;
            }),
            None => tokio::spawn(async move { session::refuse_busy(client, peer, &config.limits).await }),
        };
    }
}

/// One place under the connection cap, given back on drop.
struct Slot(Arc<Shared>);

impl Slot {
    fn take(shared: &Arc<Shared>, cap: usize) -> Option<Self> {
        let taken = shared.live.send_if_modified(|live| {
            let room = *live < cap;
            *live += usize::from(room);
            room
        });
        taken.then(|| Self(shared.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.live.send_modify(|live| *live -= 1);
    }
}
