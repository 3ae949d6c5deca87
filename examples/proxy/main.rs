//! An MQTT-aware TCP load balancer, after Apache APISIX's `mqtt-proxy` stream plugin.
//!
//! Each client's CONNECT is read and checked by the crate, placed on an upstream broker by the
//! crate's rendezvous routing (client id by default), and then relayed byte for byte.
//!
//! ```sh
//! cargo run --example proxy                       # 127.0.0.1:9100 -> 127.0.0.1:1883
//! cargo run --example proxy -- --upstream 127.0.0.1:1884 --upstream 127.0.0.1:1885=2
//! cargo run --example proxy -- --config examples/proxy.toml   # SIGHUP reloads it
//! ```
//!
//! Each module uses only those below it, and those to its right on its own line, so the proxy
//! reads bottom-up, as the crate does (`module-cycles examples/proxy` prints no cycle):
//!
//! ```text
//! main                      flags, the config file, signals: reload and drain
//! tls_flags                 the command line's listener flags
//! server                    the listeners, and what every connection shares
//! workers                   a thread and a runtime per CPU, for the server's accept loops
//! session                   one client, arrival to close: CONNECT, route, dial, relay
//! sticky                    ids for 5.0 clients that send none
//! relay                     bytes both ways until both directions end
//! listener                  the listening socket a worker accepts on
//! limits  ratelimit  idle   memory, descriptors, the drain's cut; connection rate; quiet
//!                           connections
//! healthcheck  metrics      active MQTT checks; Prometheus metrics over HTTP
//! health                    passive marks: upstreams skipped for a while
//! edge                      accept to CONNECT: PROXY header, TLS, WebSocket upgrade
//! client                    the client's stream from there on: plain, TLS or WebSocket
//! proxy_header  logfmt      the PROXY protocol header; client text made safe for logs
//! dial                      an upstream connection, its first bytes on their way
//! config                    what the proxy is told, checked before it is put in force
//! tls                       TLS at the edge: files, policy, what a handshake says of the client
//! ws                        MQTT over WebSocket
//! broker_connack            what the proxy reads of the broker's CONNACK
//! ```

mod broker_connack;
mod client;
mod config;
mod dial;
mod edge;
mod health;
mod healthcheck;
mod idle;
mod limits;
mod listener;
mod logfmt;
mod metrics;
mod proxy_header;
mod ratelimit;
mod relay;
mod server;
mod session;
mod sticky;
mod tls;
mod tls_flags;
mod workers;
mod ws;
// `cargo test` runs these: `test = true` for this example in Cargo.toml.
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ops;
#[cfg(test)]
mod tests_tls;
#[cfg(test)]
mod tests_ws;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use config::{Config, Identity, Key, Limits, Route, Upstream, Without};
use server::{Handle, Proxy};
use workers::Workers;

/// An MQTT-aware TCP load balancer: routes each connection by its CONNECT packet.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to accept clients on; repeat for several. 127.0.0.1:9100 when none is given,
    /// unless another listener flag takes that address.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// Broker to forward to; repeat for several. WEIGHT (default 1) sets its share.
    #[arg(long = "upstream", value_name = "HOST:PORT[=WEIGHT]", default_value = "127.0.0.1:1883")]
    upstreams: Vec<Upstream>,
    /// What places a client on a broker: client-id, username or user-property:NAME. A client
    /// without one is placed by its IP address.
    #[arg(long, default_value = "client-id")]
    key: Key,
    /// Start each upstream connection with a PROXY protocol v2 header carrying the client's
    /// address.
    #[arg(long)]
    proxy_protocol: bool,
    /// Leave the client id of a 5.0 client that sends none empty, for the broker to assign;
    /// by default the proxy assigns one and places the client by it.
    #[arg(long)]
    no_assign_client_id: bool,
    /// What each client id the proxy assigns starts with [default: proxy-].
    #[arg(long, value_name = "PREFIX", conflicts_with = "no_assign_client_id")]
    client_id_prefix: Option<String>,
    #[command(flatten)]
    limits: Limits,
    /// Serve Prometheus metrics over HTTP on this address; overrides `metrics` in the file.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// What to log: a level (`warn`) or filter (`info,proxy::session=warn`), as RUST_LOG
    /// takes it, which this overrides. `info` when neither is set.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// Log lines as text, or as JSON objects for machines, one a line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Threads serving connections, each accepting on its own socket of every listen address;
    /// one for each CPU by default.
    #[arg(long, value_name = "N")]
    workers: Option<NonZeroUsize>,
    /// Read listeners, limits and routes from this TOML file instead; SIGHUP reloads it.
    #[arg(long, value_name = "FILE", conflicts_with_all = REPLACED_BY_CONFIG)]
    config: Option<PathBuf>,
    #[command(flatten)]
    listeners: tls_flags::Flags,
    /// `username`: replace each CONNECT's User Name with a name from the client's certificate.
    #[arg(long, value_name = "FIELD")]
    identity: Option<Identity>,
    /// Which name of the certificate --identity takes.
    #[arg(long, value_name = "NAME", default_value = "cn", requires = "identity")]
    identity_source: tls::Source,
    /// With --identity, what a client without a certificate gets.
    #[arg(long, value_name = "POLICY", default_value = "refuse", requires = "identity")]
    without_certificate: Without,
}

/// The flags for what a `--config` file holds, refused beside it rather than ignored: all but
/// `--metrics` (which overrides the file's), `--workers` and the log flags.
const REPLACED_BY_CONFIG: [&str; 37] = [
    "listen",
    "upstreams",
    "key",
    "proxy_protocol",
    "no_assign_client_id",
    "client_id_prefix",
    "identity",
    "identity_source",
    "without_certificate",
    // `Limits`
    "connect_deadline_ms",
    "max_connect_size",
    "upstream_timeout_ms",
    "down_for_ms",
    "max_connections",
    "drain_ms",
    "max_keep_alive_s",
    "idle_timeout_ms",
    "half_closed_timeout_ms",
    "connect_buffer_budget",
    "busy_deadline_ms",
    "max_refusals",
    "max_connects_per_s",
    "connect_burst",
    "handshake_deadline_ms",
    "max_ws_message",
    // `tls_flags::Flags`
    "tls_listen",
    "ws_listen",
    "wss_listen",
    "ws_path",
    "ws_origin",
    "tls_cert",
    "tls_key",
    "tls_alpn",
    "tls_client_ca",
    "tls_client_auth",
    "tls_crl",
    "proxy_protocol_from",
];

impl Args {
    fn config(&self) -> Result<Config, String> {
        if let Some(path) = &self.config {
            // `metrics` stays the file's, so that a reload compares it with the file's; the
            // flag overrides it in `main`.
            return Config::load(path);
        }
        let route = Route {
            name: "default".into(),
            remote_addr: None,
            protocol_name: None,
            protocol_level: None,
            key: self.key.clone(),
            upstreams: self.upstreams.clone(),
            proxy_protocol: self.proxy_protocol,
            health_check: None,
            sni: None,
            identity: self.identity,
            identity_source: self.identity.and(Some(self.identity_source)),
            without_certificate: self.identity.and(Some(self.without_certificate)),
            assign_client_id: !self.no_assign_client_id,
            client_id_prefix: self.client_id_prefix.clone(),
        };
        // An address typed twice is refused by `check`, as in a file; the default one is left
        // to the listener that takes it.
        let plain = if self.listen.is_empty() {
            let taken = self.listeners.addrs();
            config::default_listen().into_iter().filter(|a| !taken.contains(a)).collect()
        } else {
            self.listen.clone()
        };
        let (listen, listeners) = self.listeners.listeners(plain);
        let mut config = Config {
            listen,
            limits: self.limits.clone(),
            routes: vec![route],
            metrics: self.metrics,
            listeners,
        };
        config.check()?;
        config.arm()?;
        Ok(config)
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to standard error at the level `--log-level`, else RUST_LOG, else `info` sets.
fn init_logs(args: &Args) -> Result<(), String> {
    let env = std::env::var("RUST_LOG").ok().filter(|filter| !filter.is_empty());
    let filter = match (&args.log_level, &env) {
        (Some(filter), _) => log_filter(filter).map_err(|e| format!("--log-level {filter:?}: {e}"))?,
        (None, Some(filter)) => log_filter(filter).map_err(|e| format!("RUST_LOG {filter:?}: {e}"))?,
        (None, None) => EnvFilter::new("info"),
    };
    let logs =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match args.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => {
            logfmt::leave_escaping_to_json();
            logs.json().init();
        }
    }
    Ok(())
}

/// A filter as RUST_LOG takes it, but for a word alone that is not a level: `EnvFilter` takes
/// `warning` for a target, so that the filter lets through nothing, fatal errors included.
fn log_filter(filter: &str) -> Result<EnvFilter, String> {
    let target_alone = filter.split(',').map(str::trim).find(|directive| {
        !directive.is_empty()
            && !directive.contains(['=', '[', ':'])
            && directive.parse::<tracing_subscriber::filter::LevelFilter>().is_err()
    });
    if let Some(word) = target_alone {
        return Err(format!(
            "{word:?} is not a level (error, warn, info, debug, trace, off); a target alone is \
             written with its level, as {word}=trace"
        ));
    }
    EnvFilter::try_new(filter).map_err(|e| e.to_string())
}

// Connections are served on the workers' runtimes; this one takes signals, serves metrics and
// runs health checks.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = init_logs(&args) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::FAILURE;
        }
    };
    match limits::raise_descriptor_limit() {
        Ok(descriptors) => tracing::info!(descriptors, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit"),
    }
    // The file's address was checked with the rest of it.
    if let Err(e) = config.metrics_apart(args.metrics) {
        tracing::error!(error = %e, "bad configuration");
        return ExitCode::FAILURE;
    }
    let metrics_addr = args.metrics.or(config.metrics);
    let workers = args.workers.unwrap_or_else(Workers::per_cpu);
    let started = Workers::threads(workers).and_then(|threads| Proxy::start(config, threads));
    let proxy = match started {
        Ok(proxy) => proxy,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addrs = ?proxy.local_addrs(), workers = workers.get(), "listening");
    if args.metrics.is_some() {
        proxy.handle().metrics_by_flag();
    }
    if let Some(addr) = metrics_addr
        && let Err(e) = metrics::serve(addr, proxy.handle().metrics()).await
    {
        tracing::error!(error = %e, %addr, "cannot serve metrics");
        return ExitCode::FAILURE;
    }
    match on_signals(proxy.handle(), args.config) {
        Ok(()) => {
            proxy.run().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot watch signals");
            ExitCode::FAILURE
        }
    }
}

/// SIGHUP reloads the config file; SIGTERM or Ctrl-C starts the drain.
fn on_signals(proxy: Handle, file: Option<PathBuf>) -> std::io::Result<()> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hangup.recv() => match &file {
                    Some(path) => { proxy.reload(path).ok(); }
                    None => tracing::warn!("SIGHUP: no --config file to reload"),
                },
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
            }
        }
        proxy.shutdown();
        // A second signal during the drain means now; a reload would reopen listeners.
        loop {
            tokio::select! {
                _ = hangup.recv() => tracing::warn!("SIGHUP during the drain: not reloaded"),
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
            }
        }
        tracing::warn!(
            live = proxy.live(),
            refusing = proxy.refusing(),
            "second signal during the drain; exiting now"
        );
        std::process::exit(1);
    });
    Ok(())
}
