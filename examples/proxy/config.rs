//! What the proxy is told: listeners, limits and an ordered list of routes, read from a TOML
//! file or built from the command line, and checked before it is put in force.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use mqtt_connect::routing::{ClientId, Node, RoutingKey, UserProperty, Username};
use mqtt_connect::{Connect, Decoder, Protocol};
use serde::Deserialize;

/// The whole configuration; one snapshot serves a connection from accept to close.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Addresses to accept clients on.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Addresses to accept MQTT over WebSocket on.
    #[serde(default, rename = "websocket")]
    pub websockets: Vec<WebSocket>,
    /// Timeouts and caps.
    #[serde(default)]
    pub limits: Limits,
    /// Tried in order; the first that matches serves the connection.
    #[serde(rename = "route")]
    pub routes: Vec<Route>,
}

/// Timeouts and caps, in milliseconds and bytes, each also a command-line flag.
#[derive(Clone, Debug, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Time a client has to send its whole CONNECT, however it dribbles it.
    #[arg(long, value_name = "MS", default_value_t = LIMITS.connect_deadline_ms)]
    pub connect_deadline_ms: u64,
    /// Largest CONNECT accepted, judged from its Remaining Length before it is buffered.
    #[arg(long, value_name = "BYTES", default_value_t = LIMITS.max_connect_size)]
    pub max_connect_size: u32,
    /// Time to wait for an upstream to accept a connection before trying the next.
    #[arg(long, value_name = "MS", default_value_t = LIMITS.upstream_timeout_ms)]
    pub upstream_timeout_ms: u64,
    /// How long an upstream that failed to connect is skipped (passive health).
    #[arg(long, value_name = "MS", default_value_t = LIMITS.down_for_ms)]
    pub down_for_ms: u64,
    /// Concurrent client connections; past it new clients are told the server is busy.
    #[arg(long, value_name = "N", default_value_t = LIMITS.max_connections)]
    pub max_connections: usize,
    /// On SIGTERM or Ctrl-C, how long live connections may go on before the proxy exits.
    #[arg(long, value_name = "MS", default_value_t = LIMITS.drain_ms)]
    pub drain_ms: u64,
}

const LIMITS: Limits = Limits {
    connect_deadline_ms: 10_000,
    max_connect_size: 1 << 20,
    upstream_timeout_ms: 3_000,
    down_for_ms: 10_000,
    max_connections: 10_000,
    drain_ms: 30_000,
};

impl Default for Limits {
    fn default() -> Self {
        LIMITS
    }
}

impl Limits {
    pub fn connect_deadline(&self) -> Duration {
        Duration::from_millis(self.connect_deadline_ms)
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }

    pub fn down_for(&self) -> Duration {
        Duration::from_millis(self.down_for_ms)
    }

    pub fn drain(&self) -> Duration {
        Duration::from_millis(self.drain_ms)
    }

    /// The crate's decoder, capped at the configured size.
    pub fn decoder(&self) -> Decoder {
        Decoder::new().max_packet_size(self.max_connect_size)
    }
}

/// Where one class of clients goes, and what places them among its upstreams.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Shown in the connection log.
    #[serde(default = "default_route_name")]
    pub name: String,
    /// Client address or network the route takes, such as `10.0.0.0/8`.
    pub remote_addr: Option<Network>,
    /// Protocol name the route takes: `MQTT`, or `MQIsdp` for 3.1.
    pub protocol_name: Option<String>,
    /// Protocol level the route takes: 3, 4 or 5.
    pub protocol_level: Option<u8>,
    /// What in the CONNECT places the client on an upstream.
    #[serde(default)]
    pub key: Key,
    /// The brokers, as `HOST:PORT` or `HOST:PORT=WEIGHT`.
    pub upstreams: Vec<Upstream>,
    /// Start each upstream connection with a PROXY protocol v2 header, so that brokers see the
    /// client's address rather than the proxy's.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Give a 5.0 client that sends an empty client id one of the proxy's, and place it by that
    /// id; see `sticky.rs`.
    #[serde(default = "default_assign_client_id")]
    pub assign_client_id: bool,
    /// What each assigned client id starts with, before its 32 random hex digits.
    #[serde(default = "default_client_id_prefix")]
    pub client_id_prefix: String,
}

/// A listener for MQTT over WebSocket.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocket {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The request path the upgrade must be for.
    #[serde(default = "default_ws_path")]
    pub path: String,
}

/// Why no route took a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// A route would have taken it but for its protocol level: the client is told its version
    /// is not supported.
    Level,
    /// Nothing would: the connection is closed.
    Nothing,
}

impl Config {
    /// Reads and checks a file; the error says which file and what is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks TOML text; an error is one line, for the log.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let line =
                e.span().and_then(|span| text.get(..span.start)).map_or(0, |t| t.matches('\n').count());
            format!("line {}: {}", line + 1, e.message())
        })?;
        config.check()?;
        Ok(config)
    }

    /// Rules serde cannot express.
    pub fn check(&self) -> Result<(), String> {
        let addrs = self.addrs();
        if addrs.is_empty() {
            return Err("no listen address".into());
        }
        if let Some(twice) =
            addrs.iter().enumerate().find_map(|(i, a)| addrs.get(..i)?.contains(a).then_some(a))
        {
            return Err(format!("{twice} is listed twice"));
        }
        if let Some(ws) = self.websockets.iter().find(|ws| !ws.path.starts_with('/')) {
            return Err(format!("websocket {}: path {:?} does not start with /", ws.addr, ws.path));
        }
        if self.routes.is_empty() {
            return Err("no route".into());
        }
        if self.limits.max_connections == 0 || self.limits.connect_deadline_ms == 0 {
            return Err("limits: max_connections and connect_deadline_ms must be above 0".into());
        }
        self.routes.iter().try_for_each(Route::check)
    }

    /// Every address to accept on: the plain ones, then the WebSocket ones.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listen.iter().copied().chain(self.websockets.iter().map(|ws| ws.addr)).collect()
    }

    /// The WebSocket listener on `addr`; `None` for a plain `listen` address.
    pub fn websocket(&self, addr: SocketAddr) -> Option<&WebSocket> {
        self.websockets.iter().find(|ws| ws.addr == addr)
    }

    /// The first route for this client and version.
    pub fn route(&self, peer: IpAddr, protocol: Protocol) -> Result<&Route, Miss> {
        if let Some(route) =
            self.routes.iter().find(|r| r.takes_peer(peer, protocol) && r.takes_level(protocol))
        {
            return Ok(route);
        }
        if self.routes.iter().any(|r| r.takes_peer(peer, protocol)) {
            Err(Miss::Level)
        } else {
            Err(Miss::Nothing)
        }
    }
}

impl Route {
    fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if let Some(level) = self.protocol_level
            && !(3..=5).contains(&level)
        {
            return Err(format!("route {name}: protocol_level {level} is not 3, 4 or 5"));
        }
        if let Some(protocol) = &self.protocol_name
            && protocol != "MQTT"
            && protocol != "MQIsdp"
        {
            return Err(format!("route {name}: protocol_name {protocol:?} is not MQTT or MQIsdp"));
        }
        if self.upstreams.iter().all(|u| u.weight == 0) {
            return Err(format!("route {name}: no upstream with a weight above 0"));
        }
        // Room for the random part in a string of at most 65,535 bytes, and no U+0000
        // [MQTT-1.5.4-2].
        if self.client_id_prefix.len() > 60_000 || self.client_id_prefix.contains('\0') {
            return Err(format!("route {name}: client_id_prefix is over 60000 bytes or holds U+0000"));
        }
        Ok(())
    }

    /// Address and protocol name match.
    fn takes_peer(&self, peer: IpAddr, protocol: Protocol) -> bool {
        self.remote_addr.as_ref().is_none_or(|net| net.0.contains(&peer))
            && self.protocol_name.as_deref().is_none_or(|name| name == protocol.name())
    }

    fn takes_level(&self, protocol: Protocol) -> bool {
        self.protocol_level.is_none_or(|level| level == protocol.level())
    }
}

/// A client address or network; a bare address is a network of one.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Network(IpNet);

impl TryFrom<String> for Network {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(Network)
            .map_err(|_| format!("remote_addr {text:?} is not an address or CIDR"))
    }
}

/// Which bytes of the CONNECT place a client, as the crate's routing keys name them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum Key {
    /// The Client Identifier.
    #[default]
    ClientId,
    /// The User Name.
    Username,
    /// The first 5.0 User Property of this name.
    UserProperty(String),
}

impl Key {
    /// The key's bytes, `None` when the packet has none to offer.
    pub fn of<'a>(&self, connect: &Connect<'a>) -> Option<&'a [u8]> {
        match self {
            Self::ClientId => ClientId.routing_key(connect),
            Self::Username => Username.routing_key(connect),
            Self::UserProperty(name) => UserProperty(name).routing_key(connect),
        }
    }
}

impl FromStr for Key {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "client-id" => Ok(Self::ClientId),
            "username" => Ok(Self::Username),
            _ => match text.strip_prefix("user-property:") {
                Some(name) if !name.is_empty() => Ok(Self::UserProperty(name.to_owned())),
                _ => Err(format!("key {text:?} is not client-id, username or user-property:NAME")),
            },
        }
    }
}

impl TryFrom<String> for Key {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

/// A broker to forward to. Its `HOST:PORT` is its identity for placement, so a renamed broker
/// is a new node.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct Upstream {
    /// `HOST:PORT`, resolved at each connect.
    pub addr: String,
    /// Share of the keys, relative to the route's other upstreams; 0 takes none.
    pub weight: u32,
}

impl Node for Upstream {
    fn id(&self) -> &[u8] {
        self.addr.as_bytes()
    }

    fn weight(&self) -> u32 {
        self.weight
    }
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("upstream {text:?} is not HOST:PORT or HOST:PORT=WEIGHT");
        let (addr, weight) = match text.split_once('=') {
            Some((addr, weight)) => (addr, weight.parse().map_err(|_| bad())?),
            None => (text, 1),
        };
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Self { addr: addr.to_owned(), weight })
            }
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for Upstream {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 9100))]
}

fn default_route_name() -> String {
    "default".into()
}

fn default_assign_client_id() -> bool {
    true
}

pub fn default_client_id_prefix() -> String {
    "proxy-".into()
}

pub fn default_ws_path() -> String {
    "/mqtt".into()
}
