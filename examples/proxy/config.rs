//! What the proxy is told: listeners, limits and an ordered list of routes, read from a TOML
//! file or built from the command line, and checked before it is put in force.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use mqtt_connect::routing::{ClientId, Node, RoutingKey, UserProperty, Username};
use mqtt_connect::{Connect, Decoder, EncodeError, Protocol};
use serde::Deserialize;

use crate::tls::{self, Source};

/// A CONNECT buffer starts this large: most CONNECTs are a few dozen bytes. The buffer budget
/// must hold one.
pub const FIRST_CONNECT_BUFFER: usize = 256;

/// The whole configuration; one snapshot serves a connection from accept to close.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Addresses to accept clients on.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Timeouts and caps.
    #[serde(default)]
    pub limits: Limits,
    /// Tried in order; the first that matches serves the connection.
    #[serde(rename = "route")]
    pub routes: Vec<Route>,
    /// Where to serve Prometheus metrics over HTTP, if anywhere; read at start.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    /// More addresses to accept clients on, each with its own TLS and PROXY protocol options.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<Listener>,
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
    /// Concurrent client connections; past it new clients are told the server is busy. By
    /// default, two descriptors a connection within the descriptor limit, after a reserve.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// On SIGTERM or Ctrl-C, how long live connections may go on before the proxy exits.
    #[arg(long, value_name = "MS", default_value_t = LIMITS.drain_ms)]
    pub drain_ms: u64,
    /// Longest client Keep Alive honoured, in seconds: a connection quiet both ways for 1.5
    /// times its Keep Alive (or the broker's Server Keep Alive) is closed.
    #[arg(long, value_name = "S", default_value_t = LIMITS.max_keep_alive_s)]
    pub max_keep_alive_s: u16,
    /// How long a connection with Keep Alive 0, or above the maximum, may be quiet both ways.
    #[arg(long, value_name = "MS", default_value_t = LIMITS.idle_timeout_ms)]
    pub idle_timeout_ms: u64,
    /// Once one side has closed, how long the other may be quiet before both are closed.
    #[arg(long, value_name = "MS", default_value_t = LIMITS.half_closed_timeout_ms)]
    pub half_closed_timeout_ms: u64,
    /// Bytes of CONNECT buffered at once over all connections; past it a client is told the
    /// server is busy. Read at start; a reload keeps the budget in force.
    #[arg(long, value_name = "BYTES", default_value_t = LIMITS.connect_buffer_budget)]
    pub connect_buffer_budget: usize,
    /// Time a client refused at accept (the connection cap, or its rate) has to send the first
    /// bytes of its CONNECT, which give its version and so the answer's.
    #[arg(long, value_name = "MS", default_value_t = LIMITS.busy_deadline_ms)]
    pub busy_deadline_ms: u64,
    /// Refusals in progress at once; past it a client is closed without an answer. By
    /// default a sixteenth of the descriptor limit, within 8 and 4096. Read at start.
    #[arg(long, value_name = "N")]
    pub max_refusals: Option<usize>,
    /// New connections a second from one address, on average; past it a 5.0 client gets
    /// CONNACK 0x9F "connection rate exceeded" and a 3.x client 0x03. Off when unset; 0 is
    /// refused. Read at start.
    #[arg(long, value_name = "N")]
    pub max_connects_per_s: Option<u32>,
    /// Connections one address may open at once before its rate applies; the rate when unset;
    /// 0 is refused, and so is a burst without `max_connects_per_s`.
    #[arg(long, value_name = "N")]
    pub connect_burst: Option<u32>,
    /// Time a client has, from its accept, for a PROXY header, a TLS handshake and a WebSocket
    /// upgrade.
    #[arg(long, value_name = "MS", default_value_t = LIMITS.handshake_deadline_ms)]
    pub handshake_deadline_ms: u64,
    /// Largest WebSocket frame or message a client may send, and so the largest packet it can
    /// publish through the proxy: each is held whole before it is passed on. Past it the
    /// client is closed with 1009.
    #[arg(long, value_name = "BYTES", default_value_t = LIMITS.max_ws_message)]
    pub max_ws_message: usize,
}

/// The smallest CONNECT, in bytes: 3.1.1 with an empty client id (a 5.0 one has a byte more,
/// its property length).
const SMALLEST_CONNECT: u32 = 14;

const LIMITS: Limits = Limits {
    connect_deadline_ms: 10_000,
    max_connect_size: 16 << 10,
    upstream_timeout_ms: 3_000,
    down_for_ms: 10_000,
    max_connections: None,
    drain_ms: 30_000,
    max_keep_alive_s: 1200,
    idle_timeout_ms: 1_800_000,
    half_closed_timeout_ms: 30_000,
    connect_buffer_budget: 64 << 20,
    busy_deadline_ms: 2_000,
    max_refusals: None,
    max_connects_per_s: None,
    connect_burst: None,
    handshake_deadline_ms: 5_000,
    max_ws_message: 1 << 20,
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

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn busy_deadline(&self) -> Duration {
        Duration::from_millis(self.busy_deadline_ms)
    }

    pub fn half_closed_timeout(&self) -> Duration {
        Duration::from_millis(self.half_closed_timeout_ms)
    }

    pub fn handshake_deadline(&self) -> Duration {
        Duration::from_millis(self.handshake_deadline_ms)
    }

    /// The crate's decoder, capped at the configured size.
    pub fn decoder(&self) -> Decoder {
        Decoder::new().max_packet_size(self.max_connect_size)
    }

    /// The most a client's CONNECT takes in the proxy's buffer: the cap, and what the decoder
    /// reads of a packet over it, its fixed header, to refuse it.
    pub fn connect_buffer(&self) -> usize {
        usize::try_from(self.max_connect_size).unwrap_or(usize::MAX).saturating_add(5)
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
    /// Active MQTT health checks of the upstreams; none unless set.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// TLS server name the route takes: exact, or `*.example.com` for any one label there.
    pub sni: Option<Sni>,
    /// `"username"` replaces the CONNECT's User Name with a name from the client's
    /// certificate, and re-encodes the packet.
    pub identity: Option<Identity>,
    /// With `identity`, which name of the certificate: `cn` (the default), `san-dns`,
    /// `san-email` or `san-uri`. Refused without `identity`, where it would do nothing.
    #[serde(default)]
    pub identity_source: Option<Source>,
    /// With `identity`, what a client without a certificate (or without that name) gets:
    /// `refuse` (CONNACK "not authorized", the default) or `pass` (forwarded unchanged).
    /// Refused without `identity`: a route meant to refuse such clients would let them through.
    #[serde(default)]
    pub without_certificate: Option<Without>,
    /// Give a 5.0 client that sends an empty client id one of the proxy's, and place it by that
    /// id; see `sticky.rs`.
    #[serde(default = "default_assign_client_id")]
    pub assign_client_id: bool,
    /// What each assigned client id starts with, before its 32 random hex digits;
    /// `proxy-` unless set. Refused with `assign_client_id = false`, where it would do nothing.
    #[serde(default)]
    pub client_id_prefix: Option<String>,
}

/// The settings read only at start, which a reload cannot change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadAtStart {
    connect_buffer_budget: usize,
    max_refusals: Option<usize>,
    max_connects_per_s: Option<u32>,
    connect_burst: Option<u32>,
    metrics: Option<SocketAddr>,
}

impl ReadAtStart {
    pub fn of(config: &Config) -> Self {
        let limits = &config.limits;
        Self {
            connect_buffer_budget: limits.connect_buffer_budget,
            max_refusals: limits.max_refusals,
            max_connects_per_s: limits.max_connects_per_s,
            connect_burst: limits.connect_burst,
            metrics: config.metrics,
        }
    }

    /// The names of those `new` sets otherwise, as the file spells them.
    pub fn changed_by(&self, new: &Self) -> impl Iterator<Item = &'static str> {
        [
            ("connect_buffer_budget", self.connect_buffer_budget != new.connect_buffer_budget),
            ("max_refusals", self.max_refusals != new.max_refusals),
            ("max_connects_per_s", self.max_connects_per_s != new.max_connects_per_s),
            ("connect_burst", self.connect_burst != new.connect_burst),
            ("metrics", self.metrics != new.metrics),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
    }
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

    /// Parses and checks TOML text, and reads the TLS files it names; an error is one line, for
    /// the log.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut config: Self = toml::from_str(text).map_err(|e| {
            let line =
                e.span().and_then(|span| text.get(..span.start)).map_or(0, |t| t.matches('\n').count());
            format!("line {}: {}", line + 1, e.message())
        })?;
        config.check()?;
        config.arm()?;
        Ok(config)
    }

    /// Reads every TLS listener's files into its server config; an error names the listener.
    pub fn arm(&mut self) -> Result<(), String> {
        self.listeners.iter_mut().try_for_each(|l| match &mut l.tls {
            Some(tls) => tls.arm().map_err(|e| format!("listener {}: {e}", l.addr)),
            None => Ok(()),
        })
    }

    /// Every address to listen on, plain or not.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listen.iter().copied().chain(self.listeners.iter().map(|l| l.addr)).collect()
    }

    /// The options of the listener on `addr`; `None` for a plain `listen` address.
    pub fn listener(&self, addr: SocketAddr) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.addr == addr)
    }

    /// Refuses a metrics address that a listener has, or shares a port with on an address
    /// that takes it too (`0.0.0.0:P` and `127.0.0.1:P`): the listeners bind first, and the
    /// proxy would exit once it had begun to take clients.
    pub fn metrics_apart(&self, metrics: Option<SocketAddr>) -> Result<(), String> {
        let Some(metrics) = metrics.filter(|addr| addr.port() != 0) else { return Ok(()) };
        // A socket on `[::]` takes IPv4 clients too, unless it is IPv6 only.
        let covers = |a: SocketAddr, b: SocketAddr| a.ip().is_unspecified() && (a.is_ipv6() || b.is_ipv4());
        let shared = |addr: &SocketAddr| {
            addr.port() == metrics.port()
                && (*addr == metrics || covers(*addr, metrics) || covers(metrics, *addr))
        };
        match self.addrs().into_iter().find(shared) {
            Some(addr) if addr == metrics => {
                Err(format!("metrics address {metrics} is also a listen address"))
            }
            Some(addr) => {
                Err(format!("metrics address {metrics} shares its port with listen address {addr}"))
            }
            None => Ok(()),
        }
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
            return Err(format!("listen address {twice} given twice"));
        }
        self.metrics_apart(self.metrics)?;
        if let Some(l) =
            self.listeners.iter().find(|l| l.websocket.as_ref().is_some_and(|p| !p.starts_with('/')))
        {
            return Err(format!("listener {}: websocket path does not start with /", l.addr));
        }
        if let Some(l) =
            self.listeners.iter().find(|l| l.websocket.is_none() && !l.websocket_origins.is_empty())
        {
            return Err(format!("listener {}: websocket_origins without websocket", l.addr));
        }
        // A browser's Origin is a scheme, a host and maybe a port, never a path, not even `/`
        // (RFC 6454 6.2): one written with a path, as an address bar shows it, matches none.
        for l in &self.listeners {
            if let Some(origin) = l.websocket_origins.iter().find(|o| !is_origin(o)) {
                return Err(format!(
                    "listener {}: websocket origin {origin:?} is not scheme://host[:port], as browsers send it",
                    l.addr
                ));
            }
        }
        // A client that offers ALPN and finds none of its names is refused by the handshake
        // (RFC 7301 3.2), and a WebSocket client's TLS carries HTTP/1.1: browsers offer it,
        // so a wss listener offering only `mqtt` would refuse every one of them.
        if let Some(l) = self.listeners.iter().find(|l| {
            let alpn = l.tls.as_ref().map_or(&[][..], |tls| &tls.alpn[..]);
            l.websocket.is_some() && !alpn.is_empty() && !alpn.iter().any(|p| p == "http/1.1")
        }) {
            return Err(format!(
                "listener {}: a WebSocket listener's alpn must offer \"http/1.1\", which browsers ask \
                 for, or their handshakes fail (--tls-alpn is shared by --tls-listen and --wss-listen)",
                l.addr
            ));
        }
        if self.routes.is_empty() {
            return Err("no route".into());
        }
        // Each of these at 0 fails every client: no upstream connects in no time over a network,
        // nor does a TLS handshake. A connection rate or burst of 0 would mean the same, and
        // NGINX refuses a zero rate too.
        let limits = &self.limits;
        above_zero(
            "limits",
            [
                ("max_connections", limits.max_connections == Some(0)),
                ("connect_deadline_ms", limits.connect_deadline_ms == 0),
                ("idle_timeout_ms", limits.idle_timeout_ms == 0),
                ("half_closed_timeout_ms", limits.half_closed_timeout_ms == 0),
                ("upstream_timeout_ms", limits.upstream_timeout_ms == 0),
                ("handshake_deadline_ms", limits.handshake_deadline_ms == 0),
                ("max_ws_message", limits.max_ws_message == 0),
                ("busy_deadline_ms", limits.busy_deadline_ms == 0),
                ("max_connects_per_s", limits.max_connects_per_s == Some(0)),
                ("connect_burst", limits.connect_burst == Some(0)),
            ],
        )?;
        // A burst is of a rate: alone it would be taken and do nothing.
        if limits.connect_burst.is_some() && limits.max_connects_per_s.is_none() {
            return Err("limits: connect_burst needs max_connects_per_s".into());
        }
        if self.limits.max_connect_size < SMALLEST_CONNECT {
            return Err(format!(
                "limits: max_connect_size must be at least {SMALLEST_CONNECT}, the smallest CONNECT"
            ));
        }
        // MQTT clients send a packet a frame: one that cannot hold a CONNECT fails every one.
        if self.limits.max_ws_message < SMALLEST_CONNECT as usize {
            return Err(format!(
                "limits: max_ws_message must be at least {SMALLEST_CONNECT}, the smallest CONNECT"
            ));
        }
        if self.limits.connect_buffer_budget < FIRST_CONNECT_BUFFER {
            return Err(format!(
                "limits: connect_buffer_budget must be at least {FIRST_CONNECT_BUFFER}, one CONNECT buffer"
            ));
        }
        let tls = self.listeners.iter().any(|l| l.tls.is_some());
        self.routes.iter().zip(1..).try_for_each(|(route, place)| {
            route.check(tls).map_err(|e| format!("route {place} ({}): {e}", route.name))
        })?;
        self.one_check_an_upstream()?;
        self.one_header_an_upstream()?;
        // One name is one series in the metrics; routes left unnamed share the default one.
        let unnamed = default_route_name();
        match first_repeat(&self.routes, |route| (route.name != unnamed).then_some(&route.name)) {
            Some((first, again, route)) => {
                let (place, first, name) = (again + 1, first + 1, &route.name);
                Err(format!("route {place} ({name}): name {name:?} is route {first}'s too"))
            }
            None => Ok(()),
        }
    }

    /// An upstream's health is one, whichever routes name it, and so is its check: two routes
    /// that check it otherwise would have one of theirs ignored.
    fn one_check_an_upstream(&self) -> Result<(), String> {
        self.one_per_upstream("health_check", |route| route.health_check.as_ref())
    }

    /// An upstream's listener either requires a PROXY header or refuses one (HAProxy's
    /// `accept-proxy`, NGINX's `proxy_protocol`, brokers' own), so every route that names it
    /// sends one or none does; its health check sends what its connections do.
    fn one_header_an_upstream(&self) -> Result<(), String> {
        self.one_per_upstream("proxy_protocol", |route| Some(route.proxy_protocol))
    }

    /// Refuses two routes that name one upstream with a different `what`; a route whose
    /// `of` is `None` sets nothing.
    fn one_per_upstream<'a, T: PartialEq + Copy>(
        &'a self,
        what: &str,
        of: impl Fn(&'a Route) -> Option<T>,
    ) -> Result<(), String> {
        let mut seen: Vec<(&str, T, usize)> = Vec::new();
        for (route, place) in self.routes.iter().zip(1..) {
            let Some(value) = of(route) else { continue };
            for upstream in &route.upstreams {
                match seen.iter().find(|(addr, ..)| *addr == upstream.addr) {
                    Some((_, first, at)) if *first != value => {
                        let (name, addr) = (&route.name, &upstream.addr);
                        return Err(format!(
                            "route {place} ({name}): {what} of upstream {addr} is not route {at}'s, \
                             and an upstream has one"
                        ));
                    }
                    Some(_) => {}
                    None => seen.push((&upstream.addr, value, place)),
                }
            }
        }
        Ok(())
    }

    /// The first route for this client, TLS server name and version.
    pub fn route(&self, peer: IpAddr, sni: Option<&str>, protocol: Protocol) -> Result<&Route, Miss> {
        if let Some(route) = self
            .routes
            .iter()
            .find(|r| r.takes_peer(peer, protocol) && r.takes_sni(sni) && r.takes_level(protocol))
        {
            return Ok(route);
        }
        if self.routes.iter().any(|r| r.takes_peer(peer, protocol) && r.takes_sni(sni)) {
            Err(Miss::Level)
        } else {
            Err(Miss::Nothing)
        }
    }
}

impl Route {
    /// The error names the key; [`Config::check`] names the route. `tls`: some listener takes
    /// TLS clients, the only ones with a server name or a certificate.
    fn check(&self, tls: bool) -> Result<(), String> {
        if !tls && self.identity.is_some() {
            return Err("identity without a TLS listener: no client has a certificate".into());
        }
        if !tls && self.sni.is_some() {
            return Err("sni without a TLS listener: no client sends a server name".into());
        }
        if self.identity.is_none() {
            if self.identity_source.is_some() {
                return Err("identity_source without identity".into());
            }
            if self.without_certificate.is_some() {
                return Err("without_certificate without identity".into());
            }
        }
        if let Some(level) = self.protocol_level
            && !(3..=5).contains(&level)
        {
            return Err(format!("protocol_level {level} is not 3, 4 or 5"));
        }
        if let Some(protocol) = &self.protocol_name
            && protocol != "MQTT"
            && protocol != "MQIsdp"
        {
            return Err(format!("protocol_name {protocol:?} is not MQTT or MQIsdp"));
        }
        // MQIsdp is 3.1's name, level 3; MQTT is 3.1.1's and 5.0's. The crate takes no other
        // pair, so a route with one would match no client.
        if let (Some(name), Some(level)) = (&self.protocol_name, self.protocol_level)
            && (name == "MQIsdp") != (level == 3)
        {
            return Err(format!("protocol_name {name:?} is never of protocol_level {level}"));
        }
        if self.upstreams.iter().all(|u| u.weight == 0) {
            return Err("upstreams: none with a weight above 0".into());
        }
        // Twice would be twice the share, silently; a weight says so.
        if let Some((_, _, twice)) = first_repeat(&self.upstreams, |u| Some(&u.addr)) {
            return Err(format!("upstream {twice} given twice"));
        }
        if let Some(check) = &self.health_check {
            check.check()?;
        }
        match &self.client_id_prefix {
            Some(_) if !self.assign_client_id => {
                Err("client_id_prefix with assign_client_id = false, which assigns none".into())
            }
            // Room for the random part in a string of at most 65,535 bytes, and no U+0000
            // [MQTT-1.5.4-2].
            Some(prefix) if prefix.len() > 60_000 || prefix.contains('\0') => {
                Err("client_id_prefix is over 60000 bytes or holds U+0000".into())
            }
            _ => Ok(()),
        }
    }

    /// Address and protocol name match.
    fn takes_peer(&self, peer: IpAddr, protocol: Protocol) -> bool {
        self.remote_addr.as_ref().is_none_or(|net| net.contains(peer))
            && self.protocol_name.as_deref().is_none_or(|name| name == protocol.name())
    }

    fn takes_level(&self, protocol: Protocol) -> bool {
        self.protocol_level.is_none_or(|level| level == protocol.level())
    }

    /// A route with `sni` takes only TLS clients that asked for a matching name.
    fn takes_sni(&self, sni: Option<&str>) -> bool {
        self.sni.as_ref().is_none_or(|pattern| sni.is_some_and(|name| pattern.matches(name)))
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
            .map_err(|_| format!("{text:?} is not an address or CIDR"))
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::try_from(text.to_owned())
    }
}

impl Network {
    /// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as a dual-stack listener on `[::]` sees
    /// an IPv4 client) is in the IPv4 networks its IPv4 address is in, and in the IPv6 ones it
    /// is in as written.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip) || self.0.contains(&ip.to_canonical())
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
            Some((host, port)) if is_host(host) && port.parse::<u16>().is_ok_and(|port| port != 0) => {
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

/// A route's `[route.health_check]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    /// Time between checks of one upstream.
    pub interval_ms: u64,
    /// Time for the whole check: connect, CONNECT, CONNACK.
    pub timeout_ms: u64,
    /// The check's Client Identifier; a clean session, so the broker keeps nothing.
    pub client_id: String,
    /// Failures in a row that mark the upstream down.
    pub fall: u32,
    /// Successes in a row that mark it up again.
    pub rise: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            interval_ms: 5_000,
            timeout_ms: 2_000,
            client_id: "mqtt-proxy-health".into(),
            fall: 3,
            rise: 2,
        }
    }
}

impl HealthCheck {
    pub fn check(&self) -> Result<(), String> {
        above_zero(
            "health_check",
            [
                ("interval_ms", self.interval_ms == 0),
                ("timeout_ms", self.timeout_ms == 0),
                ("fall", self.fall == 0),
                ("rise", self.rise == 0),
            ],
        )?;
        if self.client_id.is_empty() || self.client_id.len() > 23 {
            return Err("health_check: client_id must be 1 to 23 bytes of UTF-8".into());
        }
        // One no CONNECT can carry (U+0000) would fail every check.
        self.connect().map(drop).map_err(|e| format!("health_check: client_id: {e}"))
    }

    /// The check's CONNECT: 3.1.1, a clean session, `client_id`; its bytes and their length.
    pub fn connect(&self) -> Result<([u8; 64], usize), EncodeError> {
        let mut packet = [0; 64];
        let len = Connect::new(Protocol::V3_1_1, &self.client_id).encode(&mut packet)?;
        Ok((packet, len))
    }
}

/// Each `(key, zero)` of a config `section`: the first key whose value is 0, which would fail
/// every client, is an error naming it.
pub fn above_zero<const N: usize>(section: &str, values: [(&str, bool); N]) -> Result<(), String> {
    match values.into_iter().find(|(_, zero)| *zero) {
        Some((key, _)) => Err(format!("{section}: {key} must be above 0")),
        None => Ok(()),
    }
}

/// The first item whose key (`None`: none to compare) an earlier item has too: the earlier
/// one's index, its own, and the item.
fn first_repeat<'a, T, K: PartialEq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> Option<K>,
) -> Option<(usize, usize, &'a T)> {
    items.iter().enumerate().find_map(|(again, item)| {
        let wanted = key(item)?;
        let first =
            items.get(..again)?.iter().position(|earlier| key(earlier).is_some_and(|k| k == wanted))?;
        Some((first, again, item))
    })
}

/// Whether `origin` is one a browser can send: `http` or `https`, `://`, then a host and maybe
/// a port, with no path.
fn is_origin(origin: &str) -> bool {
    let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    host.is_some_and(|host| !host.is_empty() && !host.contains(['/', '?', '#']))
}

/// An IPv6 address in brackets, or an IPv4 address or a DNS name (letters, digits, `-` and `_`
/// in dot-separated labels, a final dot allowed): what can be connected to, so that a typo is
/// refused with the config rather than failing every connect. A name whose last label is all
/// digits is an IPv4 address or nothing (no top-level domain is all digits, RFC 3696 2), so
/// `127.0.0.300` is refused.
fn is_host(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let numeric = name.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    name.split('.').all(is_label) && (!numeric || name.parse::<std::net::Ipv4Addr>().is_ok())
}

/// A DNS label as an upstream's host or a route's `sni` may have it: letters, digits, `-` and `_`.
fn is_label(label: &str) -> bool {
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 9100))]
}

fn default_route_name() -> String {
    "default".into()
}

/// An address to accept clients on, with its options.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub addr: SocketAddr,
    /// Clients here speak TLS.
    pub tls: Option<tls::Settings>,
    /// Networks whose PROXY protocol v1 or v2 header is taken, and required: the client's
    /// address is then the one it carries. A header from any other address is refused, and
    /// those addresses' clients need none.
    #[serde(default)]
    pub proxy_protocol_from: Vec<Network>,
    /// Clients here speak MQTT over WebSocket (over TLS too, with `tls`: `wss://`); the
    /// request path the upgrade must be for, such as `/mqtt`.
    pub websocket: Option<String>,
    /// The web origins, such as `https://app.example.com`, whose pages may open a WebSocket
    /// here; any by default. A browser names its page's origin, which a page cannot forge, so
    /// this keeps other sites' pages from reaching the brokers through their visitors'
    /// browsers (RFC 6455 10.2); a client that names none is not a browser, and is let in.
    #[serde(default)]
    pub websocket_origins: Vec<String>,
}

impl Listener {
    /// Whether a PROXY header from `peer` is taken.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.proxy_protocol_from.iter().any(|net| net.contains(peer))
    }
}

/// A TLS server name to route on: exact, or `*.` and a domain for any one label in it; matched
/// without regard to case.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Sni(String);

impl Sni {
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_prefix('*') {
            Some(domain) => name
                .len()
                .checked_sub(domain.len())
                .and_then(|label| name.split_at_checked(label))
                .is_some_and(|(label, rest)| {
                    !label.is_empty() && !label.contains('.') && rest.eq_ignore_ascii_case(domain)
                }),
            None => name.eq_ignore_ascii_case(&self.0),
        }
    }
}

impl TryFrom<String> for Sni {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let name = text.strip_prefix("*.").unwrap_or(&text);
        if name.split('.').all(is_label) {
            Ok(Self(text))
        } else {
            Err(format!("sni {text:?} is not a host name or *.domain"))
        }
    }
}

/// What a route puts in the CONNECT for the client's certificate.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// The certificate's name replaces the User Name.
    Username,
}

/// With `identity`, what becomes of a client without a certificate.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Without {
    /// CONNACK "not authorized" in the client's version, and close.
    #[default]
    Refuse,
    /// Forwarded as sent.
    Pass,
}

fn default_assign_client_id() -> bool {
    true
}

pub const DEFAULT_CLIENT_ID_PREFIX: &str = "proxy-";

pub fn default_ws_path() -> String {
    "/mqtt".into()
}

#[cfg(test)]
mod tests {
    use mqtt_connect::routing::rank;

    use super::{Config, Key, Upstream};

    /// A config of one route with `options`.
    fn route(options: &str) -> Result<Config, String> {
        Config::parse(&format!("[[route]]\nupstreams = [\"127.0.0.1:1883\"]\n{options}"))
    }

    /// A route's `key` is `client-id`, `username` or `user-property:NAME` with a name; anything
    /// else is refused, with the key quoted.
    #[test]
    fn a_key_is_the_client_id_the_username_or_a_named_user_property() {
        for (text, key) in [
            ("client-id", Key::ClientId),
            ("username", Key::Username),
            ("user-property:tenant", Key::UserProperty("tenant".into())),
        ] {
            assert_eq!(text.parse::<Key>(), Ok(key.clone()), "{text}");
            let config = route(&format!("key = \"{text}\"")).expect(text);
            assert_eq!(config.routes[0].key, key, "{text}");
        }
        for text in ["user-property:", "password", "Client-Id", ""] {
            let refused = text.parse::<Key>().expect_err(text);
            assert_eq!(refused, format!("key {text:?} is not client-id, username or user-property:NAME"));
        }
    }

    /// An assigned client id is the prefix and 32 hex digits, in at most 65,535 bytes: a prefix
    /// of 60,000 bytes is taken, one a byte longer refused.
    #[test]
    fn a_client_id_prefix_of_60000_bytes_is_taken_and_one_longer_refused() {
        let prefix = |len: usize| route(&format!("client_id_prefix = \"{}\"", "p".repeat(len)));
        let taken = prefix(60_000).expect("60,000 bytes");
        assert_eq!(taken.routes[0].client_id_prefix.as_ref().map(String::len), Some(60_000));
        let refused = prefix(60_001).map(drop).expect_err("60,001 bytes");
        assert_eq!(refused, "route 1 (default): client_id_prefix is over 60000 bytes or holds U+0000");
    }

    /// The health check's client id is 1 to 23 bytes, the most every 3.1.1 broker must take
    /// [MQTT-3.1.3-5].
    #[test]
    fn a_health_check_client_id_is_1_to_23_bytes() {
        let check = |id: &str| route(&format!("[route.health_check]\nclient_id = \"{id}\"")).map(drop);
        for id in ["c", &"c".repeat(23)] {
            assert_eq!(check(id), Ok(()), "{} bytes", id.len());
        }
        for id in ["", &"c".repeat(24)] {
            assert_eq!(
                check(id),
                Err("route 1 (default): health_check: client_id must be 1 to 23 bytes of UTF-8".into()),
                "{} bytes",
                id.len()
            );
        }
    }

    /// An upstream's weight is its share of the keys: one of weight 0 takes none, so every key
    /// goes to the other.
    #[test]
    fn an_upstream_of_weight_0_takes_no_key() {
        let upstreams: Vec<Upstream> =
            ["127.0.0.1:1884=0", "127.0.0.1:1885"].iter().map(|u| u.parse().expect("upstream")).collect();
        assert_eq!(upstreams[0].weight, 0);
        for key in 0..64 {
            let key = format!("client-{key}");
            let first = rank(key.as_bytes(), &upstreams)
                .next()
                .and_then(|i| upstreams.get(i))
                .map(|u| u.addr.as_str());
            assert_eq!(first, Some("127.0.0.1:1885"), "{key}");
        }
    }
}
