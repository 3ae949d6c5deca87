//! The listeners and what all connections share: the config in force, the count of live
//! connections against the cap, and passive health. A reload swaps the config for new
//! connections only, and opens or closes listeners to match it; a shutdown stops accepting and
//! lets live connections drain. Every listen address is bound once for each worker, which
//! accepts on its own socket.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ReadAtStart};
use crate::health::Health;
use crate::healthcheck;
use crate::limits::{Count, Guards, SpareInUse, out_of_descriptors};
use crate::listener::listen;
use crate::metrics::{EndLabels, Metrics};
use crate::session::{self, Early};
use crate::workers::Workers;

/// A proxy accepting clients.
pub struct Proxy {
    shared: Arc<Shared>,
    local_addrs: Vec<SocketAddr>,
}

/// Reloads and stops a running proxy; cheap to clone.
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

struct Shared {
    config: watch::Sender<Arc<Config>>,
    /// Connections being proxied; refused ones don't count.
    live: Count,
    health: Health,
    stop: watch::Sender<bool>,
    /// The accept loops, one for each worker, by the configured address they serve.
    accepting: Mutex<HashMap<SocketAddr, Vec<JoinHandle<()>>>>,
    /// Bounds over all connections, set at start.
    guards: Guards,
    /// The connection cap in force, set at start and at each reload.
    cap: AtomicUsize,
    /// What a reload cannot change, as in force since the start.
    read_at_start: ReadAtStart,
    /// `--metrics` overrides the file's `metrics`, at start and at restart alike.
    metrics_by_flag: AtomicBool,
    workers: Workers,
}

/// A listen address's sockets, one for each worker.
type Bound = (SocketAddr, Vec<std::net::TcpListener>);

impl Proxy {
    /// Binds every listen address of `config` and starts accepting on `workers`; call it inside
    /// a runtime, which runs the health checks.
    pub fn start(config: Config, workers: Workers) -> io::Result<Self> {
        let listeners = bind(&config.addrs(), workers.count())?;
        let local_addrs = listeners
            .iter()
            .filter_map(|(_, sockets)| sockets.first().map(std::net::TcpListener::local_addr))
            .collect::<io::Result<_>>()?;
        let guards = Guards::new(&config.limits);
        let cap = AtomicUsize::new(cap_for(&guards, &config));
        let read_at_start = ReadAtStart::of(&config);
        let shared = Arc::new(Shared {
            config: watch::Sender::new(Arc::new(config)),
            live: Count::default(),
            health: Health::default(),
            stop: watch::Sender::new(false),
            accepting: Mutex::default(),
            guards,
            cap,
            read_at_start,
            metrics_by_flag: AtomicBool::new(false),
            workers,
        });
        shared.accept_on(listeners);
        healthcheck::supervise(
            shared.config.subscribe(),
            shared.health.clone(),
            shared.guards.metrics.clone(),
        );
        Ok(Self { shared, local_addrs })
    }

    /// Where it listens, ports resolved, as started.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    pub fn handle(&self) -> Handle {
        Handle(self.shared.clone())
    }

    /// Serves until [`Handle::shutdown`], then waits for live connections and refusals in
    /// progress to end, up to the drain deadline; there it cuts the connections left, relaying
    /// or still on their way to the relay. A refusal is bounded by its own deadlines, and one
    /// still going is closed at exit.
    pub async fn run(self) {
        self.shared.stop.subscribe().wait_for(|&stop| stop).await.ok();
        self.shared.stop_accepting(|_| true);

        let drain = self.shared.config.borrow().limits.drain();
        let (live, guards) = (&self.shared.live, &self.shared.guards);
        tracing::info!(live = live.now(), refusing = guards.refusing(), "stopped accepting; draining");
        let ended = async {
            live.none_left().await;
            guards.refusals_ended().await;
        };
        if tokio::time::timeout(drain, ended).await.is_ok() {
            tracing::info!("drained");
        } else {
            let refusing = guards.refusing();
            tracing::warn!(live = live.now(), refusing, "drain deadline passed; cutting the rest");
            guards.cut_all();
            // A moment for each to write its log line.
            tokio::time::timeout(CUT_LOGS, live.none_left()).await.ok();
        }
    }
}

impl Handle {
    /// Puts the file's config in force for new connections; live ones keep their upstream.
    /// Listeners are opened and closed to match. A file that fails to read, parse or check, or
    /// names an address that cannot be bound, is refused with a log line, and the old config
    /// stays. A setting read only at start that the file changes is named in a warning.
    pub fn reload(&self, path: &Path) -> Result<(), String> {
        let refused = |e: String| {
            tracing::error!(error = %e, "config refused; the previous one stays in force");
            e
        };
        let metrics = &self.0.guards.metrics;
        let config = Config::load(path).map_err(refused).inspect_err(|_| metrics.reload(false))?;
        let opened = {
            let accepting = self.0.accepting.lock().unwrap_or_else(PoisonError::into_inner);
            let new: Vec<SocketAddr> =
                config.addrs().into_iter().filter(|addr| !accepting.contains_key(addr)).collect();
            bind(&new, self.0.workers.count())
                .map_err(|e| refused(format!("{}: {e}", path.display())))
                .inspect_err(|_| metrics.reload(false))?
        };
        metrics.reload(true);
        let by_flag = self.0.metrics_by_flag.load(Ordering::Relaxed);
        let new = ReadAtStart::of(&config);
        let changed = self.0.read_at_start.changed_by(&new);
        for setting in changed.filter(|&setting| !(by_flag && setting == "metrics")) {
            tracing::warn!(%setting, "setting changed; read only at start, it takes effect at restart");
        }
        let listen = config.addrs();
        tracing::info!(routes = config.routes.len(), listen = ?listen, "config reloaded");
        self.0.cap.store(cap_for(&self.0.guards, &config), Ordering::Relaxed);
        self.0.config.send_replace(Arc::new(config));
        self.0.stop_accepting(|addr| !listen.contains(addr));
        self.0.accept_on(opened);
        Ok(())
    }

    /// The metrics address is `--metrics`', not the file's: a reload that changes the file's
    /// says nothing of it, as the flag wins at restart too.
    pub fn metrics_by_flag(&self) {
        self.0.metrics_by_flag.store(true, Ordering::Relaxed);
    }

    pub fn shutdown(&self) {
        self.0.stop.send_replace(true);
    }

    /// Connections being proxied now.
    pub fn live(&self) -> usize {
        self.0.live.now()
    }

    /// Clients refused at accept whose refusal is in progress now.
    pub fn refusing(&self) -> usize {
        self.0.guards.refusing()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.0.guards.metrics.clone()
    }
}

impl Shared {
    fn accept_on(self: &Arc<Self>, listeners: Vec<Bound>) {
        let mut accepting = self.accepting.lock().unwrap_or_else(PoisonError::into_inner);
        for (addr, sockets) in listeners {
            let loops = sockets.into_iter().zip(self.workers.iter()).map(|(socket, worker)| {
                let shared = self.clone();
                // Registered on the worker's thread, with its runtime.
                worker.spawn(async move {
                    match TcpListener::from_std(socket) {
                        Ok(listener) => accept(addr, listener, shared).await,
                        // The socket is closed, so the kernel gives its clients to the others.
                        Err(e) => tracing::error!(error = %e, %addr, "cannot accept on a worker"),
                    }
                })
            });
            accepting.insert(addr, loops.collect());
        }
    }

    /// Ends the accept loops of the addresses `stop` picks, closing their sockets.
    fn stop_accepting(&self, stop: impl Fn(&SocketAddr) -> bool) {
        let mut accepting = self.accepting.lock().unwrap_or_else(PoisonError::into_inner);
        accepting.retain(|addr, loops| {
            let keep = !stop(addr);
            if !keep {
                loops.iter().for_each(JoinHandle::abort);
            }
            keep
        });
    }
}

/// The connection cap in force for `config`, with one descriptor set aside for each upstream
/// under active health checks, and logged; tells the operator when the configured cap is more
/// than the descriptors allow.
fn cap_for(guards: &Guards, config: &Config) -> usize {
    let checked = healthcheck::checked(config).len();
    if let Some((configured, in_force)) = guards.lowered_cap(&config.limits, checked) {
        tracing::warn!(
            max_connections = configured,
            in_force,
            "max_connections needs more descriptors than the limit allows; lowered to fit it"
        );
    }
    let cap = guards.max_connections(&config.limits, checked);
    tracing::info!(max_connections = cap, "connection cap");
    cap
}

/// Binds all of `addrs`, each `count` times, or none.
fn bind(addrs: &[SocketAddr], count: usize) -> io::Result<Vec<Bound>> {
    let bind_one = |&addr: &SocketAddr| {
        let first = listen(addr).map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
        // The first bind picks a port for port 0; the others share the one it picked.
        let picked = first.local_addr()?;
        let rest = (1..count).map(|_| listen(picked));
        Ok((addr, std::iter::once(Ok(first)).chain(rest).collect::<io::Result<_>>()?))
    };
    addrs.iter().map(bind_one).collect()
}

/// How long connections cut at the drain deadline get to log their lines.
const CUT_LOGS: Duration = Duration::from_secs(1);

/// Hands each client to its own task, with the config in force when it arrived; `addr` is the
/// configured address, which names the listener's options in that config.
async fn accept(addr: SocketAddr, listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                if !accept_with_spare(addr, &listener, &shared, &e).await {
                    // Wait for descriptors to free rather than spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        shared.guards.metrics.accepted();
        let config = shared.config.borrow().clone();
        // Behind a trusted balancer the socket's address is the balancer's: the rate applies
        // to the client's, once its PROXY header has named it.
        let rate_after_edge = config.listener(addr).is_some_and(|l| l.trusts(peer.ip()));
        if !rate_after_edge && !shared.guards.admits(peer.ip()) {
            spawn_refusal(client, peer, addr, &shared, None, Early::Rate);
            continue;
        }
        match Slot::take(&shared, shared.cap.load(Ordering::Relaxed)) {
            Some(slot) => {
                // Boxed: what the task's block captures stays in it for the connection's whole
                // life, though `serve` takes these at once; a box leaves 8 bytes of them.
                let accepted = Box::new((client, session::Accepted { peer, listen: addr, rate_after_edge }));
                tokio::spawn(async move {
                    let (client, accepted) = *accepted;
                    session::serve(client, accepted, &config, &slot.0.health, &slot.0.guards).await;
                });
            }
            None => spawn_refusal(client, peer, addr, &shared, None, Early::Busy),
        }
    }
}

/// Refused at accept: [`session::refuse_early`] tells the client why, on a task of its own, if a
/// place among the refusals in progress is free; otherwise the client is closed at once.
fn spawn_refusal(
    client: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    shared: &Shared,
    spare: Option<SpareInUse>,
    early: Early,
) {
    let Some(refusing) = shared.guards.refusal() else {
        tracing::debug!(%peer, "refusals in progress at their limit; closed unanswered");
        let labels = EndLabels { how: "refused", why: early.label(), code: String::new() };
        shared.guards.metrics.ended(&labels);
        return;
    };
    let config = shared.config.borrow().clone();
    let metrics = shared.guards.metrics.clone();
    tokio::spawn(async move {
        session::refuse_early(client, peer, config.listener(listen), &config.limits, early, &metrics).await;
        drop((refusing, spare));
    });
}

/// When the descriptors are gone: closes the spare one to accept the next client and tell it
/// "busy", rather than leave it hanging unanswered. Whether it did.
async fn accept_with_spare(addr: SocketAddr, listener: &TcpListener, shared: &Shared, e: &io::Error) -> bool {
    if !out_of_descriptors(e) {
        return false;
    }
    let Some(spare) = shared.guards.release_spare() else { return false };
    // The client the failed accept left waiting, if it is still there; never one that comes
    // later, when there may be descriptors again.
    match tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        Ok(Ok((client, peer))) => {
            shared.guards.metrics.accepted();
            spawn_refusal(client, peer, addr, shared, Some(spare), Early::Busy);
            true
        }
        Ok(Err(_)) | Err(_) => false,
    }
}

/// One place under the connection cap, given back on drop.
struct Slot(Arc<Shared>);

impl Slot {
    /// The gauge moves by one with each place, not set from the count: workers that read the
    /// count and then set it could leave it at a stale value.
    fn take(shared: &Arc<Shared>, cap: usize) -> Option<Self> {
        let taken = shared.live.take(cap);
        taken.then(|| {
            shared.guards.metrics.opened();
            Self(shared.clone())
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.live.give_back();
        self.0.guards.metrics.closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each worker's socket of an address shares the port the first bind picked, and the kernel
    /// hands new clients to all of them.
    #[test]
    fn an_address_is_bound_once_for_each_worker_and_clients_spread_over_them() {
        let bound = bind(&["127.0.0.1:0".parse().expect("address")], 3).expect("bind");
        let [(_, sockets)] = &bound[..] else { panic!("one address, bound: {bound:?}") };
        let port = |socket: &std::net::TcpListener| socket.local_addr().expect("its address").port();
        assert_eq!(sockets.len(), 3);
        assert!(sockets.iter().all(|socket| port(socket) == port(&sockets[0])));

        // On loopback the handshake is done when `connect` returns, so each client is queued.
        let clients: Vec<_> = (0..30)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port(&sockets[0]))).expect("connect"))
            .collect();
        let accepted: Vec<usize> =
            sockets.iter().map(|socket| std::iter::from_fn(|| socket.accept().ok()).count()).collect();
        assert_eq!(accepted.iter().sum::<usize>(), clients.len(), "{accepted:?}");
        assert!(accepted.iter().filter(|&&n| n > 0).count() > 1, "spread over the sockets: {accepted:?}");
    }
}
