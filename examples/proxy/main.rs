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

mod config;
mod health;
mod relay;
mod server;
mod session;
mod sticky;
mod ws;
// `cargo test` runs these: `test = true` for this example in Cargo.toml.
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ws;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use config::{Config, Key, Limits, Route, Upstream, WebSocket};
use server::{Handle, Proxy};

/// An MQTT-aware TCP load balancer: routes each connection by its CONNECT packet.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to accept clients on; repeat for several.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
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
    /// Address to accept MQTT over WebSocket on; repeat for several.
    #[arg(long, value_name = "ADDR")]
    ws_listen: Vec<SocketAddr>,
    /// The path WebSocket clients connect to.
    #[arg(long, value_name = "PATH", default_value_t = config::default_ws_path())]
    ws_path: String,
    /// Leave the client id of a 5.0 client that sends none empty, for the broker to assign;
    /// by default the proxy assigns one and places the client by it.
    #[arg(long)]
    no_assign_client_id: bool,
    /// What each client id the proxy assigns starts with.
    #[arg(long, value_name = "PREFIX", default_value_t = config::default_client_id_prefix())]
    client_id_prefix: String,
    #[command(flatten)]
    limits: Limits,
    /// Read listeners, limits and routes from this TOML file instead; SIGHUP reloads it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["listen", "upstreams", "key", "proxy_protocol", "ws_listen", "ws_path", "no_assign_client_id", "client_id_prefix"])]
    config: Option<PathBuf>,
}

impl Args {
    fn config(&self) -> Result<Config, String> {
        if let Some(path) = &self.config {
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
            assign_client_id: !self.no_assign_client_id,
            client_id_prefix: self.client_id_prefix.clone(),
        };
        let websockets =
            self.ws_listen.iter().map(|&addr| WebSocket { addr, path: self.ws_path.clone() }).collect();
        let config = Config {
            listen: self.listen.clone(),
            websockets,
            limits: self.limits.clone(),
            routes: vec![route],
        };
        config.check()?;
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let colour = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(colour).with_target(false).init();
    let args = Args::parse();
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return ExitCode::FAILURE;
        }
    };
    let proxy = match Proxy::start(config) {
        Ok(proxy) => proxy,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addrs = ?proxy.local_addrs(), "listening");
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
    });
    Ok(())
}
