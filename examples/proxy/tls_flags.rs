//! The command line's listener flags (TLS, WebSocket and PROXY protocol), for a proxy run
//! without a config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{Listener, Network, default_ws_path};
use crate::tls::{ClientAuth, Settings};

/// The command line's TLS, WebSocket and PROXY protocol listener flags, for a proxy run
/// without a file. An option without a listener it applies to is refused, not ignored.
#[derive(Clone, Debug, Default, clap::Args)]
#[command(group = clap::ArgGroup::new("tls_listeners").args(["tls_listen", "wss_listen"]).multiple(true))]
#[command(group = clap::ArgGroup::new("ws_listeners").args(["ws_listen", "wss_listen"]).multiple(true))]
pub struct Flags {
    /// Address to accept TLS clients on; repeat for several. Needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Vec<SocketAddr>,
    /// Address to accept MQTT over WebSocket on; repeat for several.
    #[arg(long, value_name = "ADDR")]
    pub ws_listen: Vec<SocketAddr>,
    /// Address to accept MQTT over WebSocket over TLS (wss://) on; repeat for several. Needs
    /// --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub wss_listen: Vec<SocketAddr>,
    /// The path WebSocket clients connect to; needs --ws-listen or --wss-listen.
    #[arg(long, value_name = "PATH", default_value_t = default_ws_path(), requires = "ws_listeners")]
    pub ws_path: String,
    /// Let browsers open a WebSocket only from pages of this origin, such as
    /// https://app.example.com; repeat for several. Any by default.
    #[arg(long, value_name = "ORIGIN", requires = "ws_listeners")]
    pub ws_origin: Vec<String>,
    /// PEM file: the server certificate, then its chain. This and the other --tls-* flags need
    /// --tls-listen or --wss-listen.
    #[arg(long, value_name = "FILE", requires = "tls_listeners")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file: the server's private key.
    #[arg(long, value_name = "FILE", requires = "tls_listeners")]
    pub tls_key: Option<PathBuf>,
    /// Offer this protocol by ALPN, such as mqtt; repeat for several.
    #[arg(long, value_name = "PROTOCOL", requires = "tls_listeners")]
    pub tls_alpn: Vec<String>,
    /// PEM file: CAs to verify client certificates against; asks clients for one.
    #[arg(long, value_name = "FILE", requires = "tls_listeners")]
    pub tls_client_ca: Option<PathBuf>,
    /// Whether a client certificate is required once --tls-client-ca is given: required unless
    /// optional.
    #[arg(long, value_name = "POLICY", requires = "tls_client_ca")]
    pub tls_client_auth: Option<ClientAuth>,
    /// PEM file: certificate revocation list for client certificates; repeat for several.
    #[arg(long, value_name = "FILE", requires = "tls_client_ca")]
    pub tls_crl: Vec<PathBuf>,
    /// Accept a PROXY protocol v1 or v2 header on every listener from this network only, and
    /// require one of it; repeat for several. A header from anywhere else is refused.
    #[arg(long, value_name = "CIDR")]
    pub proxy_protocol_from: Vec<Network>,
}

impl Flags {
    /// The addresses of the listeners these flags add to the plain ones.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        [&self.tls_listen, &self.ws_listen, &self.wss_listen].into_iter().flatten().copied().collect()
    }

    /// The plain addresses left plain, and the listeners: these flags', and the plain
    /// addresses' when they take PROXY headers.
    pub fn listeners(&self, plain: Vec<SocketAddr>) -> (Vec<SocketAddr>, Vec<Listener>) {
        let settings = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(Settings {
                cert: cert.clone(),
                key: key.clone(),
                alpn: self.tls_alpn.clone(),
                client_ca: self.tls_client_ca.clone(),
                client_auth: self.tls_client_auth,
                crl: self.tls_crl.clone(),
                server: None,
            }),
            _ => None,
        };
        let listener = |addr, tls: Option<&Settings>, websocket: bool| Listener {
            addr,
            tls: tls.cloned(),
            proxy_protocol_from: self.proxy_protocol_from.clone(),
            websocket: websocket.then(|| self.ws_path.clone()),
            websocket_origins: if websocket { self.ws_origin.clone() } else { Vec::new() },
        };
        let (plain, proxied) =
            if self.proxy_protocol_from.is_empty() { (plain, Vec::new()) } else { (Vec::new(), plain) };
        let proxied = proxied.into_iter().map(|addr| listener(addr, None, false));
        let tls = self.tls_listen.iter().map(|&addr| listener(addr, settings.as_ref(), false));
        let ws = self.ws_listen.iter().map(|&addr| listener(addr, None, true));
        let wss = self.wss_listen.iter().map(|&addr| listener(addr, settings.as_ref(), true));
        (plain, proxied.chain(tls).chain(ws).chain(wss).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use super::Flags;

    /// The TLS and WebSocket-over-TLS listeners of the flags take the certificate and key of
    /// `--tls-cert` and `--tls-key`, with the TLS options beside them; the plain WebSocket one
    /// speaks no TLS.
    #[test]
    fn the_tls_listeners_of_the_flags_take_their_certificate_and_key() {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let flags = Flags {
            tls_listen: vec![addr(1)],
            ws_listen: vec![addr(2)],
            wss_listen: vec![addr(3)],
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            tls_alpn: vec!["mqtt".into()],
            ..Flags::default()
        };
        let (plain, listeners) = flags.listeners(vec![addr(4)]);
        assert_eq!(plain, [addr(4)]);
        let tls: Vec<_> = listeners
            .iter()
            .map(|l| (l.addr, l.tls.as_ref().map(|s| (s.cert.clone(), s.key.clone(), s.alpn.clone()))))
            .collect();
        let settings = Some((PathBuf::from("cert.pem"), PathBuf::from("key.pem"), vec!["mqtt".to_owned()]));
        assert_eq!(tls, [(addr(1), settings.clone()), (addr(2), None), (addr(3), settings)]);
    }
}
