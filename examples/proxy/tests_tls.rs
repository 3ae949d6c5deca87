//! The proxy example's TLS edge over loopback: TLS listeners beside plain ones, client
//! certificates, the certificate's name as the User Name, routes by SNI, and the PROXY header
//! from a trusted balancer. Certificates are made in each test with rcgen; no key is committed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_connect::{Connect, Protocol, ReasonCode, Status, UserProperties};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, DnValue, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::config::{self, Config};
use crate::server::{Handle, Proxy};
use crate::workers::Workers;
use crate::{proxy_header, session};

const V5_OK: &[u8] = &[0x20, 0x03, 0x00, 0x00, 0x00];
const V311_OK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
const PATIENCE: Duration = Duration::from_secs(5);

/// A directory of PEM files for one test, removed after it.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mqtt-proxy-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write PEM");
        path.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A certificate authority made for the test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
    /// The CAs between it and its root, for an intermediate; it first.
    chain: Vec<CertificateDer<'static>>,
}

/// A certificate it issued, with its key.
struct Issued {
    der: CertificateDer<'static>,
    cert_pem: String,
    key: KeyPair,
    serial: u64,
    /// The intermediates a client sends after its own certificate.
    chain: Vec<CertificateDer<'static>>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("P-256 key");
        let cert = params.self_signed(&key).expect("self-signed");
        Self { der: cert.der().clone(), pem: cert.pem(), issuer: Issuer::new(params, key), chain: Vec::new() }
    }

    /// An intermediate CA under this one.
    fn intermediate(&self, name: &str, serial: u64) -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().expect("P-256 key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        let chain = std::iter::once(cert.der().clone()).chain(self.chain.iter().cloned()).collect();
        Self { der: cert.der().clone(), pem: cert.pem(), issuer: Issuer::new(params, key), chain }
    }

    /// A leaf with this subject CN and these SANs, and serial `serial`.
    fn issue(&self, cn: impl Into<DnValue>, sans: Vec<SanType>, serial: u64) -> Issued {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().expect("P-256 key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Issued { der: cert.der().clone(), cert_pem: cert.pem(), key, serial, chain: self.chain.clone() }
    }

    /// A CRL revoking these serials.
    fn crl(&self, revoked: &[u64]) -> String {
        self.crl_params(revoked).signed_by(&self.issuer).expect("CRL").pem().expect("CRL PEM")
    }

    /// The same, DER-encoded, as CAs mostly publish them.
    fn crl_der(&self, revoked: &[u64]) -> Vec<u8> {
        self.crl_params(revoked).signed_by(&self.issuer).expect("CRL").der().to_vec()
    }

    fn crl_params(&self, revoked: &[u64]) -> CertificateRevocationListParams {
        let revoked_certs = revoked
            .iter()
            .map(|&serial| RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect();
        CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
    }
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().expect("DNS name"))
}

/// The server side of a test: a CA, a server certificate for `names`, written out.
struct Pki {
    dir: Dir,
    ca: Ca,
    server_cert: String,
    server_key: String,
    ca_file: String,
}

impl Pki {
    fn new(test: &str) -> Self {
        let dir = Dir::new(test);
        let ca = Ca::new("test CA");
        let names = ["proxy.test", "a.example.com", "x.tenant.example"].map(dns);
        let server = ca.issue("proxy", names.into(), 1);
        let server_cert = dir.write("server.pem", &server.cert_pem);
        let server_key = dir.write("server.key", &server.key.serialize_pem());
        let ca_file = dir.write("ca.pem", &ca.pem);
        Self { dir, ca, server_cert, server_key, ca_file }
    }

    /// `tls = { ... }` for a listener, with `extra` inside the braces.
    fn tls(&self, extra: &str) -> String {
        format!("tls = {{ cert = {:?}, key = {:?}{extra} }}", self.server_cert, self.server_key)
    }

    /// `, client_ca = "..."` and `extra`.
    fn mtls(&self, extra: &str) -> String {
        self.tls(&format!(", client_ca = {:?}{extra}", self.ca_file))
    }

    fn client(&self, cert: Option<&Issued>) -> TlsConnector {
        client_with(&self.ca, cert)
    }
}

fn client_with(ca: &Ca, cert: Option<&Issued>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).expect("CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match cert {
        Some(cert) => {
            let key = PrivateKeyDer::try_from(cert.key.serialize_der()).expect("key");
            let chain = std::iter::once(&cert.der).chain(&cert.chain).cloned().collect();
            builder.with_client_auth_cert(chain, key).expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// A broker stand-in that sends each connection's bytes, up to its end, once it ends; it
/// answers the first CONNECT (after a PROXY v2 header if there is one) with success.
struct Recorder {
    addr: SocketAddr,
    got: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Recorder {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, got) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(record(stream, tx.clone()));
            }
        });
        Self { addr, got }
    }

    fn upstream(&self) -> String {
        format!("\"{}\"", self.addr)
    }

    /// The next connection's bytes.
    async fn next(&mut self) -> Vec<u8> {
        tokio::time::timeout(PATIENCE, self.got.recv()).await.expect("a connection in time").expect("open")
    }

    fn nothing(&mut self) -> bool {
        self.got.try_recv().is_err()
    }
}

async fn record(mut stream: TcpStream, tx: mpsc::UnboundedSender<Vec<u8>>) {
    let mut buf = Vec::new();
    let mut answered = false;
    while stream.read_buf(&mut buf).await.unwrap_or(0) > 0 {
        if answered {
            continue;
        }
        let skip = ppp::v2::Header::try_from(buf.as_slice()).map_or(0, |h| h.len());
        if let Ok(Status::Complete { packet, .. }) = mqtt_connect::decode(&buf[skip..]) {
            let ack = packet.protocol.connack(ReasonCode::Success).expect("CONNACK");
            stream.write_all(ack.as_bytes()).await.ok();
            answered = true;
        }
    }
    tx.send(buf).ok();
}

struct Running {
    addrs: Vec<SocketAddr>,
    handle: Handle,
}

async fn start(config: &str) -> Running {
    let config = Config::parse(config).expect("test config is valid");
    let proxy = Proxy::start(config, Workers::current()).expect("bind proxy");
    let addrs = proxy.local_addrs().to_vec();
    let handle = proxy.handle();
    tokio::spawn(proxy.run());
    Running { addrs, handle }
}

/// A config with one plain and one TLS listener (`tls`), and `routes`. Listeners are known by
/// their configured address, so two on port 0 take two loopback addresses.
fn config(tls: &str, routes: &str) -> String {
    format!("listen = [\"127.0.0.1:0\"]\n[[listener]]\naddr = \"127.0.0.2:0\"\n{tls}\n{routes}")
}

fn packet(connect: &Connect<'_>) -> Vec<u8> {
    let mut buf = vec![0; connect.encoded_len().expect("encodable")];
    connect.encode(&mut buf).expect("encodes");
    buf
}

/// Connects over TLS asking for `sni`; sends `bytes`, reads `ack_len` bytes or to the close.
async fn tls_exchange(to: SocketAddr, client: &TlsConnector, sni: &str, bytes: &[u8]) -> io_result::Answer {
    let tcp = TcpStream::connect(to).await.expect("connect");
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    match tokio::time::timeout(PATIENCE, client.connect(name, tcp)).await.expect("handshake in time") {
        Ok(mut stream) => {
            stream.write_all(bytes).await.expect("send");
            io_result::Answer::Ok(read_answer(&mut stream, &mut Vec::new()).await, Box::new(stream))
        }
        Err(e) => io_result::Answer::HandshakeFailed(e),
    }
}

mod io_result {
    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;

    /// How a TLS exchange went.
    pub enum Answer {
        /// The first packet back (a CONNACK), or what came before the close; the stream.
        Ok(Vec<u8>, Box<TlsStream<TcpStream>>),
        HandshakeFailed(std::io::Error),
    }

    impl Answer {
        pub fn bytes(&self) -> &[u8] {
            match self {
                Self::Ok(bytes, _) => bytes,
                Self::HandshakeFailed(e) => panic!("handshake failed: {e}"),
            }
        }

        /// A refused handshake; with TLS 1.3 a refused client certificate shows only at the
        /// first read, as an alert.
        pub fn refused(&self) -> bool {
            match self {
                Self::Ok(bytes, _) => bytes.is_empty(),
                Self::HandshakeFailed(_) => true,
            }
        }
    }
}

/// A whole CONNACK (its length from byte 1), or whatever arrives before the close.
async fn read_answer(stream: &mut (impl AsyncRead + Unpin), got: &mut Vec<u8>) -> Vec<u8> {
    let reading = async {
        loop {
            if got.len() >= 2 && got.len() >= 2 + usize::from(got[1]) {
                break;
            }
            match stream.read_buf(got).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading).await.expect("answer in time");
    got.clone()
}

#[tokio::test]
async fn the_certificate_cn_replaces_the_user_name_and_the_connect_is_canonical() {
    let pki = Pki::new("identity");
    let mut broker = Recorder::start().await;
    let proxy = start(&config(
        &pki.mtls(""),
        &format!("[[route]]\nidentity = \"username\"\nupstreams = [{}]", broker.upstream()),
    ))
    .await;
    let bob = pki.ca.issue("bob", Vec::new(), 10);
    let mut claim = Connect::new(Protocol::V5, "bobs-device");
    claim.username = Some("alice");
    claim.password = Some(b"bob's password");
    claim.properties.session_expiry_interval = Some(300);
    let pairs = [("k", "v"), ("k", "w")];
    claim.properties.user_properties = UserProperties::from(&pairs[..]);
    let pipelined = b"\xc0\x00";
    let sent = [packet(&claim), pipelined.to_vec()].concat();
    let answer = tls_exchange(proxy.addrs[1], &pki.client(Some(&bob)), "proxy.test", &sent).await;
    assert_eq!(answer.bytes(), V5_OK);
    drop(answer);

    let got = broker.next().await;
    let Ok(Status::Complete { packet: forwarded, len }) = mqtt_connect::decode(&got) else {
        panic!("a whole CONNECT reached the broker: {got:x?}");
    };
    let mut expected = claim;
    expected.username = Some("bob");
    assert_eq!(forwarded, expected, "the certificate's name, everything else as sent");
    assert_eq!(&got[..len], packet(&expected), "byte for byte the crate's canonical encoding");
    assert_eq!(&got[len..], pipelined, "then the pipelined bytes");
}

/// The crate's encoder will not write a will announced as UTF-8 that is not (5.0 3.1.3.2.3: a
/// client MUST NOT send one), so the CONNECT cannot be re-encoded with the certificate's name.
/// The client hears why, 0x99 Payload format invalid, as from a broker that checks, and not
/// 0x87 Not authorized, which would send it looking at its certificate.
#[tokio::test]
async fn a_will_announced_as_utf8_that_is_not_is_refused_as_such_when_the_name_is_rewritten() {
    let pki = Pki::new("will-format");
    let broker = Recorder::start().await;
    let proxy = start(&config(
        &pki.mtls(""),
        &format!("[[route]]\nidentity = \"username\"\nupstreams = [{}]", broker.upstream()),
    ))
    .await;
    let dave = pki.ca.issue("dave", Vec::new(), 12);
    // 5.0, clean start and a will: client id "c", will properties {Payload Format Indicator: 1},
    // will topic "t", will payload 0xFF.
    let connect = b"\x10\x17\x00\x04MQTT\x05\x06\x00\x3c\x00\x00\x01c\x02\x01\x01\x00\x01t\x00\x01\xff";
    let answer = tls_exchange(proxy.addrs[1], &pki.client(Some(&dave)), "proxy.test", connect).await;
    assert_eq!(answer.bytes(), [0x20, 0x03, 0x00, 0x99, 0x00], "Payload format invalid");
}

#[tokio::test]
async fn a_san_may_be_the_identity_and_the_cn_is_not_used_then() {
    let pki = Pki::new("san");
    let mut broker = Recorder::start().await;
    let proxy = start(&config(
        &pki.mtls(""),
        &format!(
            "[[route]]\nidentity = \"username\"\nidentity_source = \"san-email\"\nupstreams = [{}]",
            broker.upstream()
        ),
    ))
    .await;
    let email = SanType::Rfc822Name("carol@example.com".try_into().expect("email"));
    let carol = pki.ca.issue("device-17", vec![dns("d17.example.com"), email], 11);
    let connect = Connect::new(Protocol::V3_1_1, "d17");
    let answer =
        tls_exchange(proxy.addrs[1], &pki.client(Some(&carol)), "proxy.test", &packet(&connect)).await;
    assert_eq!(answer.bytes(), V311_OK);
    drop(answer);
    let got = broker.next().await;
    let Ok(Status::Complete { packet: forwarded, .. }) = mqtt_connect::decode(&got) else {
        panic!("{got:x?}")
    };
    assert_eq!(forwarded.username, Some("carol@example.com"));
}

#[tokio::test]
async fn without_a_certificate_the_route_refuses_in_the_clients_version_or_passes() {
    let pki = Pki::new("policy");
    let (mut strict_broker, mut lax_broker) = (Recorder::start().await, Recorder::start().await);
    let proxy = start(&config(
        &pki.mtls(", client_auth = \"optional\""),
        &format!(
            "[[route]]\nsni = \"a.example.com\"\nidentity = \"username\"\nupstreams = [{}]\n\
             [[route]]\nidentity = \"username\"\nwithout_certificate = \"pass\"\nupstreams = [{}]",
            strict_broker.upstream(),
            lax_broker.upstream()
        ),
    ))
    .await;
    let anonymous = pki.client(None);
    let mut v5 = Connect::new(Protocol::V5, "anon");
    v5.username = Some("alice");
    let answer = tls_exchange(proxy.addrs[1], &anonymous, "a.example.com", &packet(&v5)).await;
    assert_eq!(answer.bytes(), [0x20, 3, 0, 0x87, 0], "5.0: not authorized");
    let v311 = Connect::new(Protocol::V3_1_1, "anon");
    let answer = tls_exchange(proxy.addrs[1], &anonymous, "a.example.com", &packet(&v311)).await;
    assert_eq!(answer.bytes(), [0x20, 2, 0, 0x05], "3.1.1: not authorized");
    let on_plain = packet(&v311);
    let mut plain = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
    plain.write_all(&on_plain).await.expect("send");
    assert_eq!(read_answer(&mut plain, &mut Vec::new()).await, V311_OK, "plain: the lax route passes it");
    drop(plain);
    assert_eq!(lax_broker.next().await, on_plain, "unchanged");

    let answer = tls_exchange(proxy.addrs[1], &anonymous, "proxy.test", &packet(&v5)).await;
    assert_eq!(answer.bytes(), V5_OK);
    drop(answer);
    assert_eq!(lax_broker.next().await, packet(&v5), "passed as sent, user name and all");
    assert!(strict_broker.nothing(), "nothing refused reaches a broker");
}

#[tokio::test]
async fn routes_by_sni_exact_and_wildcard_and_a_plain_client_matches_neither() {
    let pki = Pki::new("sni");
    let (mut a, mut tenant, mut rest) =
        (Recorder::start().await, Recorder::start().await, Recorder::start().await);
    let proxy = start(&config(
        &pki.tls(""),
        &format!(
            "[[route]]\nsni = \"A.example.com\"\nupstreams = [{}]\n\
             [[route]]\nsni = \"*.tenant.example\"\nupstreams = [{}]\n\
             [[route]]\nupstreams = [{}]",
            a.upstream(),
            tenant.upstream(),
            rest.upstream()
        ),
    ))
    .await;
    let client = pki.client(None);
    let connect = packet(&Connect::new(Protocol::V5, "c"));
    for (sni, broker) in
        [("a.example.com", &mut a), ("x.tenant.example", &mut tenant), ("proxy.test", &mut rest)]
    {
        let answer = tls_exchange(proxy.addrs[1], &client, sni, &connect).await;
        assert_eq!(answer.bytes(), V5_OK, "{sni}");
        drop(answer);
        assert_eq!(broker.next().await, connect, "{sni} reached its route's broker");
    }
    let mut plain = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
    plain.write_all(&connect).await.expect("send");
    assert_eq!(read_answer(&mut plain, &mut Vec::new()).await, V5_OK);
    drop(plain);
    assert_eq!(rest.next().await, connect, "no SNI: only the route without one");

    let patterns = [
        ("*.tenant.example", "a.b.tenant.example", false),
        ("*.tenant.example", "tenant.example", false),
        ("*.tenant.example", "X.Tenant.Example", true),
        ("a.example.com", "b.example.com", false),
    ];
    for (pattern, name, matches) in patterns {
        let sni = config::Sni::try_from(pattern.to_owned()).expect("pattern");
        assert_eq!(sni.matches(name), matches, "{pattern} against {name}");
    }
}

#[tokio::test]
async fn tls_on_the_plain_port_and_plain_text_on_the_tls_port_are_refused_before_any_broker() {
    let pki = Pki::new("mixup");
    let mut broker = Recorder::start().await;
    let proxy =
        start(&config(&pki.tls(""), &format!("[[route]]\nupstreams = [{}]", broker.upstream()))).await;
    let answer = tls_exchange(proxy.addrs[0], &pki.client(None), "proxy.test", b"").await;
    assert!(answer.refused(), "no TLS server on the plain port");
    let mut plain = TcpStream::connect(proxy.addrs[1]).await.expect("connect");
    plain.write_all(&packet(&Connect::new(Protocol::V5, "c"))).await.expect("send");
    assert_eq!(read_answer(&mut plain, &mut Vec::new()).await, b"", "closed without an answer");
    assert!(broker.nothing());
}

#[tokio::test]
async fn required_client_certificates_are_verified_against_the_ca_and_the_crl() {
    let pki = Pki::new("mtls");
    let mut broker = Recorder::start().await;
    let good = pki.ca.issue("good", Vec::new(), 20);
    let revoked = pki.ca.issue("revoked", Vec::new(), 21);
    let crl = pki.dir.write("crl.pem", &pki.ca.crl(&[revoked.serial]));
    let proxy = start(&config(
        &pki.mtls(&format!(", crl = [{crl:?}]")),
        &format!("[[route]]\nupstreams = [{}]", broker.upstream()),
    ))
    .await;
    let connect = packet(&Connect::new(Protocol::V5, "c"));
    let answer = tls_exchange(proxy.addrs[1], &pki.client(Some(&good)), "proxy.test", &connect).await;
    assert_eq!(answer.bytes(), V5_OK, "a certificate from the CA");
    drop(answer);
    broker.next().await;
    let stranger_ca = Ca::new("another CA");
    let stranger = stranger_ca.issue("good", Vec::new(), 20);
    for (case, cert) in [("none", None), ("revoked", Some(&revoked)), ("another CA", Some(&stranger))] {
        let answer = tls_exchange(proxy.addrs[1], &pki.client(cert), "proxy.test", &connect).await;
        assert!(answer.refused(), "refused: {case}");
    }
    assert!(broker.nothing());
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_at_its_deadline_and_others_are_served_meanwhile() {
    let pki = Pki::new("stall");
    let mut broker = Recorder::start().await;
    let proxy = start(&config(
        &pki.tls(""),
        &format!("[limits]\nhandshake_deadline_ms = 500\n[[route]]\nupstreams = [{}]", broker.upstream()),
    ))
    .await;
    let mut stalled = TcpStream::connect(proxy.addrs[1]).await.expect("connect");
    // A record header announcing 512 bytes of handshake, and only the first few of them.
    stalled.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").await.expect("send");
    let started = Instant::now();
    let connect = packet(&Connect::new(Protocol::V5, "meanwhile"));
    let answer = tls_exchange(proxy.addrs[1], &pki.client(None), "proxy.test", &connect).await;
    assert_eq!(answer.bytes(), V5_OK, "another client is served while one stalls");
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, stalled.read_to_end(&mut rest)).await.expect("cut").ok();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "not before the deadline: {took:?}");
    assert!(rest.is_empty());
    drop(answer);
    assert_eq!(broker.next().await, connect);
}

#[tokio::test]
async fn a_reload_takes_a_new_certificate_for_new_handshakes_and_refuses_a_bad_one() {
    let pki = Pki::new("reload");
    let mut broker = Recorder::start().await;
    let route = format!("[[route]]\nupstreams = [{}]", broker.upstream());
    let text = config(&pki.tls(""), &route);
    let proxy = start(&text).await;
    let tls_addr = proxy.addrs[1];
    // The same addresses, port 0 and all, name the same listeners: they stay open.
    let file = pki.dir.write("proxy.toml", &text);
    let connect = packet(&Connect::new(Protocol::V5, "live"));
    let live = tls_exchange(tls_addr, &pki.client(None), "proxy.test", &connect).await;
    assert_eq!(live.bytes(), V5_OK);

    let new_ca = Ca::new("new CA");
    let new_server = new_ca.issue("proxy", vec![dns("proxy.test")], 2);
    std::fs::write(&pki.server_cert, &new_server.cert_pem).expect("write");
    std::fs::write(&pki.server_key, new_server.key.serialize_pem()).expect("write");
    proxy.handle.reload(file.as_ref()).expect("reloads");
    let fresh = packet(&Connect::new(Protocol::V5, "fresh"));
    assert!(
        tls_exchange(tls_addr, &pki.client(None), "proxy.test", &fresh).await.refused(),
        "old CA no more"
    );
    let answer = tls_exchange(tls_addr, &client_with(&new_ca, None), "proxy.test", &fresh).await;
    assert_eq!(answer.bytes(), V5_OK, "the new certificate");
    drop(answer);

    std::fs::write(&pki.server_cert, "not a certificate").expect("write");
    assert!(proxy.handle.reload(file.as_ref()).is_err(), "a bad certificate file is refused");
    let answer = tls_exchange(tls_addr, &client_with(&new_ca, None), "proxy.test", &fresh).await;
    assert_eq!(answer.bytes(), V5_OK, "the config in force stays");
    drop(answer);

    let io_result::Answer::Ok(_, mut live) = live else { unreachable!() };
    live.write_all(b"\xc0\x00").await.expect("the live connection goes on");
    live.shutdown().await.ok();
    let mut got = Vec::new();
    for _ in 0..3 {
        got = broker.next().await;
        if got.starts_with(&connect) {
            break;
        }
    }
    assert_eq!(got, [connect, b"\xc0\x00".to_vec()].concat(), "the live connection kept its session");
    proxy.handle.shutdown();
}

#[tokio::test]
async fn a_trusted_proxy_header_gives_the_client_address_to_routes_and_upstream() {
    let pki = Pki::new("proxy-in");
    let (mut far, mut near) = (Recorder::start().await, Recorder::start().await);
    let proxy = start(&format!(
        "listen = []\n\
         [[listener]]\naddr = \"127.0.0.1:0\"\nproxy_protocol_from = [\"127.0.0.0/8\"]\n{}\n\
         [[listener]]\naddr = \"127.0.0.2:0\"\nproxy_protocol_from = [\"192.0.2.0/24\"]\n\
         [[route]]\nremote_addr = \"203.0.113.0/24\"\nproxy_protocol = true\nupstreams = [{}]\n\
         [[route]]\nupstreams = [{}]",
        pki.mtls(", client_auth = \"optional\""),
        far.upstream(),
        near.upstream()
    ))
    .await;
    let (trusting, untrusting) = (proxy.addrs[0], proxy.addrs[1]);
    let connect = packet(&Connect::new(Protocol::V5, "from-afar"));
    let client: SocketAddr = "203.0.113.7:40000".parse().expect("address");
    let frontend: SocketAddr = "198.51.100.1:8883".parse().expect("address");
    let command = ppp::v2::Version::Two | ppp::v2::Command::Proxy;
    let v2 = ppp::v2::Builder::with_addresses(command, ppp::v2::Protocol::Stream, (client, frontend))
        .build()
        .expect("header");
    let alice = pki.ca.issue("alice", Vec::new(), 30);

    // v2 then TLS with a client certificate: the upstream header carries the client's address
    // and the TLS fields.
    let mut tcp = TcpStream::connect(trusting).await.expect("connect");
    tcp.write_all(&v2).await.expect("header");
    let name = ServerName::try_from("proxy.test").expect("name");
    let mut stream = pki.client(Some(&alice)).connect(name, tcp).await.expect("handshake");
    stream.write_all(&connect).await.expect("send");
    assert_eq!(read_answer(&mut stream, &mut Vec::new()).await, V5_OK);
    drop(stream);
    let got = far.next().await;
    let header = ppp::v2::Header::try_from(got.as_slice()).expect("a PROXY v2 header");
    assert_eq!(header.addresses, (client, frontend).into(), "the carried addresses");
    let ssl = header.tlvs().filter_map(Result::ok).find(|t| t.kind == ppp::v2::Type::SSL as u8).expect("SSL");
    assert_eq!(ssl.value[0], 0x07, "over TLS, with a certificate on this connection and session");
    assert_eq!(&ssl.value[1..5], [0; 4], "verified");
    let subs = &ssl.value[5..];
    assert_eq!(subs, [&b"\x21\x00\x07TLSv1.3"[..], b"\x22\x00\x05alice"].concat(), "version and CN");
    assert_eq!(&got[header.len()..], connect);

    // v1 on a plain listener, with a client outside the route's network.
    let untrusted = TcpStream::connect(untrusting).await.expect("connect");
    let v1 = b"PROXY TCP4 203.0.113.9 198.51.100.1 40001 1883\r\n";
    let mut refused = untrusted;
    refused.write_all(v1).await.expect("send");
    refused.write_all(&connect).await.expect("send");
    assert_eq!(
        read_answer(&mut refused, &mut Vec::new()).await,
        b"",
        "a header from 127.0.0.1 is refused here"
    );
    assert!(far.nothing() && near.nothing());
}

#[tokio::test]
async fn a_v1_header_from_a_trusted_address_names_the_client_on_a_plain_listener() {
    let mut far = Recorder::start().await;
    let proxy = start(&format!(
        "listen = []\n[[listener]]\naddr = \"127.0.0.1:0\"\nproxy_protocol_from = [\"127.0.0.1\"]\n\
         [[route]]\nremote_addr = \"2001:db8::/32\"\nproxy_protocol = true\nupstreams = [{}]",
        far.upstream()
    ))
    .await;
    let connect = packet(&Connect::new(Protocol::V3_1_1, "v1"));
    let mut stream = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
    stream.write_all(b"PROXY TCP6 2001:db8::1 2001:db8::2 40002 1883\r\n").await.expect("header");
    stream.write_all(&connect).await.expect("send");
    assert_eq!(read_answer(&mut stream, &mut Vec::new()).await, V311_OK);
    drop(stream);
    let got = far.next().await;
    let header = ppp::v2::Header::try_from(got.as_slice()).expect("v2 upstream");
    let expected: (SocketAddr, SocketAddr) =
        ("[2001:db8::1]:40002".parse().expect("a"), "[2001:db8::2]:1883".parse().expect("a"));
    assert_eq!(header.addresses, expected.into());
    assert_eq!(header.tlvs().count(), 0, "no TLS fields for a plain client");
    assert_eq!(&got[header.len()..], connect);
}

/// Behind a trusted balancer, a client refused before its CONNECT (here a plain CONNECT on a
/// TLS listener) was logged under the balancer's address, though the PROXY header had named the
/// client: its log line names the client, and the balancer as `via`.
#[tokio::test]
async fn a_client_refused_at_the_edge_behind_a_balancer_is_logged_as_itself() {
    let (logs, _in_force) = crate::tests_ops::Captured::in_force();
    let pki = Pki::new("refused-via");
    let far = Recorder::start().await;
    let proxy = start(&format!(
        "listen = []\n[[listener]]\naddr = \"127.0.0.1:0\"\nproxy_protocol_from = [\"127.0.0.1\"]\n{}\n\
         [[route]]\nupstreams = [{}]",
        pki.tls(""),
        far.upstream()
    ))
    .await;
    let mut stream = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
    let balancer = stream.local_addr().expect("its address");
    stream.write_all(b"PROXY TCP4 203.0.113.9 198.51.100.1 40001 8883\r\n").await.expect("header");
    stream.write_all(&packet(&Connect::new(Protocol::V5, "in-the-clear"))).await.expect("send");
    assert_eq!(read_answer(&mut stream, &mut Vec::new()).await, b"", "closed");
    until_counted(&proxy.handle, r#"why="plain_on_tls""#).await;
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    let line = text.lines().find(|line| line.contains("plain-text MQTT CONNECT")).expect("logged");
    assert!(line.contains("peer=203.0.113.9:40001 transport=tls "), "{line}");
    assert!(line.contains(&format!("edge=via={balancer} ")), "{line}");
}

/// Waits until the proxy's metrics hold `series`, which its connection's end counts just after
/// the client has read it.
async fn until_counted(handle: &Handle, series: &str) {
    crate::tests_ops::metrics_when(&handle.metrics(), series, |text| text.contains(series)).await;
}

/// A connection from an address trusted for PROXY headers must start with one: the
/// specification forbids guessing whether a header is there, and a balancer that sent none
/// would pass as the client, its address routed, rate-limited and logged as the client's. It
/// was served as it was. An untrusted client of the same listener is still served without one.
#[tokio::test]
async fn a_trusted_address_that_sends_no_proxy_header_is_refused() {
    let mut far = Recorder::start().await;
    let proxy = start(&format!(
        "listen = []\n\
         [[listener]]\naddr = \"127.0.0.1:0\"\nproxy_protocol_from = [\"127.0.0.1\"]\n\
         [[listener]]\naddr = \"127.0.0.2:0\"\nproxy_protocol_from = [\"192.0.2.0/24\"]\n\
         [[route]]\nupstreams = [{}]",
        far.upstream()
    ))
    .await;
    let connect = packet(&Connect::new(Protocol::V5, "no-header"));
    let mut trusted = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
    trusted.write_all(&connect).await.expect("send");
    assert_eq!(read_answer(&mut trusted, &mut Vec::new()).await, b"", "closed without a word");
    until_counted(&proxy.handle, r#"why="proxy_header_missing""#).await;
    assert!(far.nothing(), "nothing went upstream");

    let mut untrusted = TcpStream::connect(proxy.addrs[1]).await.expect("connect");
    untrusted.write_all(&connect).await.expect("send");
    assert_eq!(read_answer(&mut untrusted, &mut Vec::new()).await, V5_OK, "a direct client needs none");
    drop(untrusted);
    assert_eq!(&far.next().await, &connect);
}

/// A direct client of a plain listener that takes PROXY headers from others has the connect
/// deadline for its first byte, as on any listener: it was held to the handshake deadline, and
/// cut as a late handshake it never owed. A header it sends is still refused as untrusted.
#[tokio::test]
async fn a_direct_client_of_a_proxy_listener_has_the_connect_deadline_for_its_first_byte() {
    let mut far = Recorder::start().await;
    let proxy = start(&format!(
        "listen = []\n\
         [[listener]]\naddr = \"127.0.0.2:0\"\nproxy_protocol_from = [\"192.0.2.0/24\"]\n\
         [[route]]\nupstreams = [{}]\n[limits]\nhandshake_deadline_ms = 200",
        far.upstream()
    ))
    .await;
    let connect = packet(&Connect::new(Protocol::V5, "late"));
    let mut late = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(400)).await;
    late.write_all(&connect).await.expect("send");
    assert_eq!(read_answer(&mut late, &mut Vec::new()).await, V5_OK, "served after the handshake deadline");
    drop(late);
    assert_eq!(&far.next().await, &connect);

    let mut header = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
    header.write_all(b"PROXY TCP4 203.0.113.9 198.51.100.1 40001 1883\r\n").await.expect("send");
    assert_eq!(read_answer(&mut header, &mut Vec::new()).await, b"", "closed without a word");
    until_counted(&proxy.handle, r#"why="proxy_header_untrusted""#).await;
    assert!(far.nothing(), "nothing went upstream");
}

/// A header that has not all come when the proxy looks is read to its end as it comes, and not
/// a byte past it; one that has is read in one call. Both name the client.
#[tokio::test]
async fn a_proxy_header_in_pieces_is_read_as_it_comes() {
    let mut far = Recorder::start().await;
    let proxy = start(&format!(
        "listen = []\n[[listener]]\naddr = \"127.0.0.1:0\"\nproxy_protocol_from = [\"127.0.0.1\"]\n\
         [[route]]\nremote_addr = \"203.0.113.0/24\"\nproxy_protocol = true\nupstreams = [{}]",
        far.upstream()
    ))
    .await;
    let connect = packet(&Connect::new(Protocol::V3_1_1, "pieces"));
    let v1 = b"PROXY TCP4 203.0.113.9 198.51.100.1 40001 1883\r\n";
    for cut in [v1.len(), 4, 20, v1.len() - 1] {
        let mut stream = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
        stream.write_all(&v1[..cut]).await.expect("send");
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.write_all(&[&v1[cut..], &connect[..]].concat()).await.expect("send");
        assert_eq!(read_answer(&mut stream, &mut Vec::new()).await, V311_OK, "cut at {cut}");
        drop(stream);
        let got = far.next().await;
        let header = ppp::v2::Header::try_from(got.as_slice()).expect("v2 upstream");
        let client: SocketAddr = "203.0.113.9:40001".parse().expect("address");
        assert_eq!(header.addresses, (client, "198.51.100.1:1883".parse().expect("address")).into());
        assert_eq!(&got[header.len()..], connect, "cut at {cut}");
    }
}

/// An IPv4 client of a dual-stack listener, which sees it as `::ffff:127.0.0.1`, is named to
/// the broker by its IPv4 address, in a TCP4 header, as it is to routes and keys. It went as
/// IPv6. (Bound to the mapped loopback address, which only IPv4 loopback clients reach.)
#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_goes_upstream_as_ipv4() {
    if let Err(e) = std::net::TcpListener::bind("[::ffff:127.0.0.1]:0") {
        eprintln!("skipped: no IPv6 socket on this host ({e})");
        return;
    }
    let mut far = Recorder::start().await;
    let proxy = start(&format!(
        "listen = [\"[::ffff:127.0.0.1]:0\"]\n[[route]]\nproxy_protocol = true\nupstreams = [{}]",
        far.upstream()
    ))
    .await;
    let port = proxy.addrs[0].port();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let connect = packet(&Connect::new(Protocol::V5, "mapped"));
    stream.write_all(&connect).await.expect("send");
    assert_eq!(read_answer(&mut stream, &mut Vec::new()).await, V5_OK);
    let client = stream.local_addr().expect("address");
    drop(stream);
    let got = far.next().await;
    let header = ppp::v2::Header::try_from(got.as_slice()).expect("v2 upstream");
    let proxy_v4: SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(header.addresses, (client, proxy_v4).into(), "TCP4, both addresses IPv4");
    assert_eq!(&got[header.len()..], connect);
}

/// A v2 header with a CRC32C TLV must match it, as HAProxy checks it; one that does not is
/// refused. It was not checked.
#[test]
fn a_proxy_v2_header_must_match_its_crc32c() {
    let client: SocketAddr = "203.0.113.7:40000".parse().expect("address");
    let frontend: SocketAddr = "198.51.100.1:8883".parse().expect("address");
    let command = ppp::v2::Version::Two | ppp::v2::Command::Proxy;
    let mut header = ppp::v2::Builder::with_addresses(command, ppp::v2::Protocol::Stream, (client, frontend))
        .write_tlv(ppp::v2::Type::NoOp, b"pad".as_slice())
        .expect("TLV")
        .write_tlv(ppp::v2::Type::CRC32C, [0u8; 4].as_slice())
        .expect("TLV")
        .build()
        .expect("header");
    // The CRC is the last four bytes, computed with them zero, independently of the proxy.
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&header);
    let at = header.len() - 4;
    header[at..].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(proxy_header::parse(&header), Ok(Some((client, frontend))));

    header[at] ^= 1;
    assert_eq!(proxy_header::parse(&header), Err("PROXY v2 header does not match its CRC32C".into()));
    header[at] ^= 1;
    header[20] ^= 1;
    assert!(proxy_header::parse(&header).is_err(), "an address changed after the CRC was taken");

    // The value must be four bytes.
    let short = ppp::v2::Builder::with_addresses(command, ppp::v2::Protocol::Stream, (client, frontend))
        .write_tlv(ppp::v2::Type::CRC32C, [0u8; 3].as_slice())
        .expect("TLV")
        .build()
        .expect("header");
    assert_eq!(proxy_header::parse(&short), Err("PROXY v2 CRC32C TLV not 4 bytes long".into()));
}

#[test]
fn proxy_header_lengths_are_known_without_reading_past_the_header() {
    use proxy_header::{Next, next};
    assert_eq!(next(b""), Ok(Next::More(1)));
    assert_eq!(next(b"PROXY TCP4 1.2.3.4"), Ok(Next::More(1)));
    assert_eq!(next(b"PROXY UNKNOWN\r\n"), Ok(Next::Whole(15)));
    assert_eq!(next(b"\r\n\r\n"), Ok(Next::More(12)));
    assert_eq!(next(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"), Ok(Next::Whole(28)));
    assert_eq!(next(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff"), Err("PROXY v2 header too long"));
    assert!(next(b"\x10\x0c").is_err(), "an MQTT CONNECT is no header");
    assert!(next(b"PROXX").is_err());
    assert!(next(&[b'P'; 200][..]).is_err());
    assert!(next(&[b"PROXY ".as_slice(), &[b'1'; 101]].concat()).is_err(), "v1 ends within 107 bytes");
    // Seen at once, as a look ahead sees it, a longer line is no more a header.
    let long = [b"PROXY ".as_slice(), &[b'1'; 101], b"\r\n"].concat();
    assert!(next(&long).is_err(), "a CRLF past 107 bytes ends no header");
    assert_eq!(next(&[&long[..100], b"\r\n"].concat()), Ok(Next::Whole(102)));
    assert_eq!(proxy_header::parse(b"PROXY UNKNOWN\r\n"), Ok(None));
    assert!(proxy_header::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nextra").is_err(), "length must agree");
}

/// A v2 header is buffered up to its 16 fixed bytes and 1 KiB of addresses and TLVs, and
/// refused from the first byte past that, before it is read.
#[test]
fn a_proxy_v2_header_is_taken_up_to_1040_bytes_and_refused_past() {
    use proxy_header::{Next, next};
    let fixed = |len: u16| [&proxy_header::V2_SIGNATURE[..], b"\x21\x11", &len.to_be_bytes()].concat();
    assert_eq!(next(&fixed(1024)), Ok(Next::Whole(1040)));
    assert_eq!(next(&fixed(1025)), Err("PROXY v2 header too long"));
}

/// A v2 PROXY header of a TCP client over IPv6 names that client and the address it reached,
/// as one over IPv4 does.
#[test]
fn a_proxy_v2_header_over_ipv6_names_the_client() {
    let client: SocketAddr = "[2001:db8::7]:40000".parse().expect("address");
    let frontend: SocketAddr = "[2001:db8::1]:8883".parse().expect("address");
    let command = ppp::v2::Version::Two | ppp::v2::Command::Proxy;
    let header = ppp::v2::Builder::with_addresses(command, ppp::v2::Protocol::Stream, (client, frontend))
        .build()
        .expect("header");
    assert_eq!(proxy_header::parse(&header), Ok(Some((client, frontend))));
}

/// A header is parsed only as a whole: bytes past the end of what it declares (a v2 header's
/// length, a v1 header's first CRLF) are refused, not dropped.
#[test]
fn a_proxy_header_with_bytes_past_its_end_is_refused() {
    let disagrees = Err("PROXY header length disagrees with its content".to_owned());
    let addresses = b"\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02";
    let v2 = [&proxy_header::V2_SIGNATURE[..], b"\x21\x11\x00\x0c", addresses].concat();
    assert!(proxy_header::parse(&v2).is_ok_and(|a| a.is_some()), "the header alone is taken");
    assert_eq!(proxy_header::parse(&[&v2[..], b"\x10"].concat()), disagrees, "v2 and a byte");
    let v1 = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    assert!(proxy_header::parse(v1).is_ok_and(|a| a.is_some()), "the header alone is taken");
    assert_eq!(proxy_header::parse(&[&v1[..], b"PROXY UNKNOWN\r\n"].concat()), disagrees, "v1 and a line");
}

/// Found by the `proxy_header` fuzz target: `ppp` takes a v1 line ended by a bare LF, which the
/// reader (rightly, by the spec) never measures as whole, so the two disagreed. The reader then
/// waited past the LF for a CRLF, until the handshake deadline; it refuses the line at the LF.
#[test]
fn a_proxy_v1_header_must_end_with_crlf() {
    let lf = b"PROXY TCP6 2001:db8::1 20:db8::2 50000 800 \n";
    assert_eq!(proxy_header::next(lf), Err("PROXY v1 header not ended by CRLF"));
    assert_eq!(
        proxy_header::next(&[&lf[..], b"\x10\x0c"].concat()),
        Err("PROXY v1 header not ended by CRLF")
    );
    assert_eq!(proxy_header::parse(lf), Err("PROXY v1 header not ended by CRLF".into()));
    assert!(
        proxy_header::parse(b"PROXY TCP6 2001:db8::1 20:db8::2 50000 800\r\n").is_ok_and(|a| a.is_some())
    );
}

#[test]
fn a_rewritten_connect_decodes_to_itself_in_every_version() {
    let mut will_v5 = Connect::new(Protocol::V5, "w");
    will_v5.will = Some(mqtt_connect::Will::new("last/words", b"gone"));
    will_v5.properties.receive_maximum = Some(10);
    let mut with_password = Connect::new(Protocol::V3_1_1, "p");
    (with_password.username, with_password.password) = (Some("x"), Some(&b"secret"[..]));
    for connect in [Connect::new(Protocol::V3_1, "old"), with_password, will_v5] {
        let rewritten = session::with_username(&connect, "CN=ünïcode").expect("encodes");
        let Ok(Status::Complete { packet, len }) = mqtt_connect::decode(&rewritten) else { panic!() };
        assert_eq!(len, rewritten.len());
        assert_eq!(packet.username, Some("CN=ünïcode"));
        assert_eq!(packet.password, connect.password, "the password as sent");
        assert_eq!(session::with_username(&packet, "CN=ünïcode").expect("again"), rewritten, "a fixed point");
    }
    assert!(
        session::with_username(&Connect::new(Protocol::V5, "c"), "nul\0").is_err(),
        "U+0000 is no user name"
    );
}

#[tokio::test]
async fn wss_is_the_websocket_listener_over_tls_with_the_certificate_as_identity() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let pki = Pki::new("wss");
    let mut broker = Recorder::start().await;
    let proxy = start(&config(
        &format!("websocket = \"/mqtt\"\n{}", pki.mtls("")),
        &format!("[[route]]\nidentity = \"username\"\nupstreams = [{}]", broker.upstream()),
    ))
    .await;
    let bob = pki.ca.issue("bob", Vec::new(), 10);
    let tcp = TcpStream::connect(proxy.addrs[1]).await.expect("connect");
    let name = ServerName::try_from("proxy.test").expect("server name");
    let tls = pki.client(Some(&bob)).connect(name, tcp).await.expect("handshake");
    let mut request = "wss://proxy.test/mqtt".into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "mqtt".parse().expect("header value"));
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls).await.expect("upgrade over TLS");

    let mut claim = Connect::new(Protocol::V5, "bobs-browser");
    claim.username = Some("alice");
    ws.send(Message::Binary(packet(&claim).into())).await.expect("send");
    let answer = tokio::time::timeout(PATIENCE, ws.next()).await.expect("in time");
    let Some(Ok(Message::Binary(ack))) = answer else { panic!("a binary frame: {answer:?}") };
    assert_eq!(&ack[..], V5_OK, "the broker's CONNACK, in a binary frame");
    ws.close(None).await.expect("close");
    // The close answered, TLS ends with its close_notify, which a strict client requires: the
    // proxy's WebSocket close left it out.
    while let Some(Ok(_)) = tokio::time::timeout(PATIENCE, ws.next()).await.expect("in time") {}
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, ws.into_inner().read_to_end(&mut rest)).await.expect("in time");
    assert!(read.is_ok(), "a TLS close_notify: {read:?}");

    // The broker stand-in reports a connection's bytes once it ends.
    let got = broker.next().await;
    let Ok(Status::Complete { packet: forwarded, .. }) = mqtt_connect::decode(&got) else {
        panic!("a whole CONNECT reached the broker: {got:x?}");
    };
    assert_eq!(forwarded.username, Some("bob"), "the certificate's name, over wss too");
    assert_eq!(forwarded.client_id, "bobs-browser");
}

/// A TLS setting that cannot stand names its listener, where several may have `tls`.
#[test]
fn a_tls_error_names_its_listener() {
    let pki = Pki::new("listener-error");
    let text = format!(
        "[[listener]]\naddr = \"127.0.0.2:0\"\n{}\n[[listener]]\naddr = \"127.0.0.3:0\"\n{}\n\
         [[route]]\nupstreams = [\"127.0.0.1:1883\"]",
        pki.tls(""),
        pki.tls(", client_auth = \"optional\""),
    );
    let error = Config::parse(&text).expect_err("client_auth without client_ca");
    assert!(error.starts_with("listener 127.0.0.3:0: tls: client_auth"), "{error}");
}

/// A revocation list file with no PEM CRL in it (the DER form most CAs publish, or the wrong
/// file) is refused at start, naming it, as NGINX's `ssl_crl` and mosquitto's `crlfile` refuse
/// it. It was taken as no list at all, and a revoked certificate was let in.
#[test]
fn a_crl_file_without_a_pem_crl_is_refused_not_taken_for_none() {
    let pki = Pki::new("crl-der");
    let der = pki.ca.crl_der(&[21]);
    let der_path = pki.dir.0.join("ca.crl");
    std::fs::write(&der_path, der).expect("write DER");
    let cert_only = pki.dir.write("certs.pem", &pki.ca.pem);
    for path in [der_path.display().to_string(), cert_only] {
        let text =
            config(&pki.mtls(&format!(", crl = [{path:?}]")), "[[route]]\nupstreams = [\"127.0.0.1:1883\"]");
        let error = Config::parse(&text).expect_err("a CRL file without a CRL");
        assert!(error.contains(&path) && error.contains("no PEM certificate revocation list"), "{error}");
    }
}

/// A CRL that does not parse was blamed on the `client_ca` file: rustls parses the lists as
/// it builds the verifier. The error names the CRL's file.
#[test]
fn a_crl_that_does_not_parse_is_named_not_the_ca() {
    let pki = Pki::new("crl-garbage");
    let garbage =
        pki.dir.write("garbage.crl", "-----BEGIN X509 CRL-----\nAAECAwQF\n-----END X509 CRL-----\n");
    let good = pki.dir.write("good.crl", &pki.ca.crl(&[21]));
    let text = config(
        &pki.mtls(&format!(", crl = [{good:?}, {garbage:?}]")),
        "[[route]]\nupstreams = [\"127.0.0.1:1883\"]",
    );
    let error = Config::parse(&text).expect_err("a CRL that does not parse");
    assert!(error.starts_with(&format!("listener 127.0.0.2:0: {garbage}: ")), "{error}");
}

/// A certificate or key file cut short was refused with the marker line it lacked as a list of
/// byte values (`missing section end marker: [67, 69, ...]`): the error says it in words.
#[test]
fn a_pem_file_cut_short_is_refused_in_words() {
    let pki = Pki::new("pem-cut");
    let cert = std::fs::read_to_string(&pki.server_cert).expect("read");
    let key = std::fs::read_to_string(&pki.server_key).expect("read");
    let cut_cert = pki.dir.write("cut.pem", cert.get(..100).expect("longer"));
    let cut_key = pki.dir.write("cut.key", key.get(..60).expect("longer"));
    for (file, tls, label) in [
        (&cut_cert, format!("tls = {{ cert = {cut_cert:?}, key = {:?} }}", pki.server_key), "CERTIFICATE"),
        (&cut_key, format!("tls = {{ cert = {:?}, key = {cut_key:?} }}", pki.server_cert), "PRIVATE KEY"),
    ] {
        let error =
            Config::parse(&config(&tls, "[[route]]\nupstreams = [\"127.0.0.1:1883\"]")).expect_err("cut");
        let words = format!("{file}: the file ends inside a {label} with no -----END {label}----- line");
        assert!(error.ends_with(&words), "{error}");
    }
}

/// A CRL past its next update was taken as if current, so a CRL no longer published went on
/// letting in what it did not list, without a word. It is enforced, as NGINX, mosquitto and
/// HAProxy (OpenSSL) enforce it: the clients it covers are refused, and a warning names the
/// file when it is read.
#[tokio::test]
async fn a_crl_past_its_next_update_refuses_the_clients_it_covers() {
    let (logs, _in_force) = crate::tests_ops::Captured::in_force();
    let pki = Pki::new("crl-stale");
    let mut broker = Recorder::start().await;
    let good = pki.ca.issue("good", Vec::new(), 20);
    let mut params = pki.ca.crl_params(&[21]);
    params.next_update = rcgen::date_time_ymd(2024, 6, 1);
    let stale =
        pki.dir.write("stale.crl", &params.signed_by(&pki.ca.issuer).expect("CRL").pem().expect("PEM"));
    let proxy = start(&config(
        &pki.mtls(&format!(", crl = [{stale:?}]")),
        &format!("[[route]]\nupstreams = [{}]", broker.upstream()),
    ))
    .await;
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    let warned = text.lines().filter(|line| line.contains("WARN") && line.contains("past its next update"));
    assert_eq!(warned.filter(|line| line.contains(&stale)).count(), 1, "{text}");
    let connect = packet(&Connect::new(Protocol::V5, "c"));
    let answer = tls_exchange(proxy.addrs[1], &pki.client(Some(&good)), "proxy.test", &connect).await;
    assert!(answer.refused(), "a certificate the stale list does not name");
    assert!(broker.nothing());
}

/// rustls checks the revocation of every certificate of a client's chain but its CA's, as
/// HAProxy and NGINX have OpenSSL do: with a root in `client_ca` and only its intermediate's
/// list in `crl`, every client under the intermediate was refused, and nothing said why but
/// rustls's `UnknownRevocationStatus`. A warning names the CA at start and the refusal says
/// what is missing; with the root's list too, the client is served and nothing is warned of.
#[tokio::test]
async fn a_client_ca_without_a_crl_of_its_own_is_warned_of_and_its_clients_told_why() {
    let (logs, _in_force) = crate::tests_ops::Captured::in_force();
    let pki = Pki::new("crl-chain");
    let mut broker = Recorder::start().await;
    let intermediate = pki.ca.intermediate("test intermediate", 30);
    let client = intermediate.issue("under", Vec::new(), 31);
    let its_list = pki.dir.write("intermediate.crl", &intermediate.crl(&[]));
    let route = format!("[[route]]\nupstreams = [{}]", broker.upstream());
    let proxy = start(&config(&pki.mtls(&format!(", crl = [{its_list:?}]")), &route)).await;
    let connect = packet(&Connect::new(Protocol::V5, "c"));
    let answer = tls_exchange(proxy.addrs[1], &pki.client(Some(&client)), "proxy.test", &connect).await;
    assert!(answer.refused(), "no list from the root for the intermediate");
    until_counted(&proxy.handle, r#"why="tls_handshake""#).await;
    let warned = "no revocation list in crl from this CA";
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    let warning = text.lines().find(|line| line.contains(warned)).expect("warned");
    assert!(warning.contains("ca=CN=test CA"), "{warning}");
    let refusal = text.lines().find(|line| line.contains("UnknownRevocationStatus (")).expect("told why");
    assert!(refusal.contains("crl has no list from a CA of the client's chain"), "{refusal}");

    let root_list = pki.dir.write("root.crl", &pki.ca.crl(&[]));
    let proxy = start(&config(&pki.mtls(&format!(", crl = [{its_list:?}, {root_list:?}]")), &route)).await;
    let answer = tls_exchange(proxy.addrs[1], &pki.client(Some(&client)), "proxy.test", &connect).await;
    assert_eq!(answer.bytes(), V5_OK, "a list from each CA of the chain");
    drop(answer);
    assert_eq!(broker.next().await, connect);
    let text = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    assert_eq!(text.matches(warned).count(), 1, "{text}");
}

/// A client that resets mid-handshake, or before the PROXY header its balancer owes (a TCP
/// check), was counted as a failed handshake or a failure: it is closed before a CONNECT.
#[tokio::test]
async fn a_reset_before_the_tls_handshake_or_proxy_header_ends_is_a_close() {
    let pki = Pki::new("reset");
    let proxy = start(&format!(
        "listen = []\n[[listener]]\naddr = \"127.0.0.1:0\"\n{}\n\
         [[listener]]\naddr = \"127.0.0.2:0\"\nproxy_protocol_from = [\"127.0.0.1\"]\n\
         [[route]]\nupstreams = [\"127.0.0.1:1\"]",
        pki.tls("")
    ))
    .await;
    let mut handshaking = TcpStream::connect(proxy.addrs[0]).await.expect("connect");
    handshaking.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").await.expect("send");
    let mut heading = TcpStream::connect(proxy.addrs[1]).await.expect("connect");
    heading.write_all(b"PROXY TCP4 203.0.113.9").await.expect("send");
    for stream in [handshaking, heading] {
        stream.set_zero_linger().expect("linger");
        drop(stream);
    }
    let closed = r#"mqtt_proxy_connections_ended_total{how="closed_before_connect",why="",code=""}"#;
    let ends = |text: &str| -> f64 {
        let lines = text.lines().filter(|line| line.starts_with("mqtt_proxy_connections_ended_total{"));
        lines.filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    let text =
        crate::tests_ops::metrics_when(&proxy.handle.metrics(), "both ended", |text| ends(text) >= 2.0).await;
    assert_eq!(crate::metrics::tests::series(&text, closed), 2.0, "{text}");
}

/// An ALPN protocol name is 1 to 255 bytes (RFC 7301 3.1); one outside that can match no
/// client's, and was taken, so that a listener with only such a name refused every client that
/// offered ALPN. It is refused at start, naming its listener.
#[test]
fn an_alpn_name_that_no_client_can_offer_is_refused_at_start() {
    let pki = Pki::new("alpn-name");
    let long = "x".repeat(256);
    for alpn in ["", long.as_str()] {
        let text = config(
            &pki.tls(&format!(", alpn = [\"mqtt\", {alpn:?}]")),
            "[[route]]\nupstreams = [\"127.0.0.1:1883\"]",
        );
        let error = Config::parse(&text).expect_err("an ALPN name of no length, or over 255 bytes");
        assert!(error.starts_with("listener 127.0.0.2:0: tls: alpn"), "{error}");
    }
    let text = config(
        &pki.tls(&format!(", alpn = [\"mqtt\", {:?}]", "x".repeat(255))),
        "[[route]]\nupstreams = [\"127.0.0.1:1883\"]",
    );
    assert!(Config::parse(&text).is_ok(), "255 bytes is the most");
}

/// A certificate file whose PEM block holds no certificate, and a key that is not the
/// certificate's: each error names the file at fault.
#[test]
fn a_bad_certificate_or_a_key_that_does_not_match_is_named_at_start() {
    let pki = Pki::new("cert-errors");
    let routes = "[[route]]\nupstreams = [\"127.0.0.1:1883\"]";
    let garbage =
        pki.dir.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n");
    let text = config(&format!("tls = {{ cert = {garbage:?}, key = {:?} }}", pki.server_key), routes);
    let error = Config::parse(&text).expect_err("no certificate in the block");
    assert!(error.starts_with(&format!("listener 127.0.0.2:0: {garbage}: certificate 1: ")), "{error}");
    let other_key = pki.dir.write("other.key", &KeyPair::generate().expect("key").serialize_pem());
    let text = config(&format!("tls = {{ cert = {:?}, key = {other_key:?} }}", pki.server_cert), routes);
    let error = Config::parse(&text).expect_err("a key that is not the certificate's");
    assert!(error.contains(&other_key), "{error}");
}

/// A certificate whose name cannot stand for its client is refused with 0x87 whatever
/// `without_certificate` says, as the README promises: a CN that is no text the proxy reads (a
/// BMPString here), an empty one, or one with a control character (U+0000 among them). The
/// unreadable one was taken for no name, so that `pass` forwarded the User Name the client
/// chose; the empty one and the one with U+0001 went to the broker as the User Name, the first
/// naming no one and the second a string a sender SHOULD NOT send (5.0 1.5.4), which mosquitto
/// refuses as malformed.
#[tokio::test]
async fn a_certificate_name_that_cannot_stand_for_the_client_is_refused_even_where_pass() {
    let pki = Pki::new("unfit-name");
    let mut broker = Recorder::start().await;
    let proxy = start(&config(
        &pki.mtls(", client_auth = \"optional\""),
        &format!(
            "[[route]]\nidentity = \"username\"\nwithout_certificate = \"pass\"\nupstreams = [{}]",
            broker.upstream()
        ),
    ))
    .await;
    let mut claim = Connect::new(Protocol::V5, "device");
    claim.username = Some("mallory");
    let bmp = DnValue::BmpString("alice".try_into().expect("BMPString"));
    let unfit = [
        ("a BMPString", bmp),
        ("empty", "".into()),
        ("U+0001", "al\u{1}ice".into()),
        ("U+0000", "al\0ice".into()),
    ];
    for (serial, (case, cn)) in (40..).zip(unfit) {
        let cert = pki.ca.issue(cn, Vec::new(), serial);
        let answer =
            tls_exchange(proxy.addrs[1], &pki.client(Some(&cert)), "proxy.test", &packet(&claim)).await;
        assert_eq!(answer.bytes(), [0x20, 3, 0, 0x87, 0], "{case}: not authorized");
    }
    assert!(broker.nothing(), "nothing reached the broker");
    let nameless = pki.ca.issue("x", vec![dns("device.example.com")], 50);
    let answer =
        tls_exchange(proxy.addrs[1], &pki.client(Some(&nameless)), "proxy.test", &packet(&claim)).await;
    assert_eq!(answer.bytes(), V5_OK, "a readable name is taken as before");
}

/// A v2 header `ppp` refuses is named as v2: `ppp`'s `HeaderResult::parse` tries v1 after any
/// complete v2 that fails, so a bad command byte was logged as "bad PROXY v1 header: Header
/// must start with 'PROXY'".
#[test]
fn a_bad_proxy_v2_header_is_named_as_v2() {
    let addresses = b"\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02";
    for (case, command_and_family) in
        [("command 2", b"\x22\x11"), ("version 1", b"\x11\x11"), ("family 4", b"\x21\x41")]
    {
        let header = [&proxy_header::V2_SIGNATURE[..], command_and_family, b"\x00\x0c", addresses].concat();
        let error = proxy_header::parse(&header).expect_err(case);
        assert!(error.starts_with("bad PROXY v2 header: "), "{case}: {error}");
    }
}

/// A v2 header whose TLVs do not fill its length exactly (the last one claims more bytes than
/// are left) is malformed, and refused, as HAProxy refuses it; it was taken.
#[test]
fn a_proxy_v2_header_with_a_tlv_past_its_end_is_refused() {
    let start = [&proxy_header::V2_SIGNATURE[..], b"\x21\x11"].concat();
    let addresses = b"\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02";
    let whole_tlv = [&start[..], b"\x00\x13", addresses, b"\x04\x00\x04abcd"].concat();
    assert!(proxy_header::parse(&whole_tlv).is_ok_and(|a| a.is_some()), "a whole TLV is taken");
    for (case, rest) in [("a TLV past the end", &b"\x00\x10"[..]), ("two bytes of a TLV header", b"\x00\x0e")]
    {
        let tlvs = b"\x04\x00\x04a";
        let len = usize::from(rest[1]) - addresses.len();
        let header = [&start[..], rest, addresses, &tlvs[..len]].concat();
        let error = proxy_header::parse(&header).expect_err(case);
        assert!(error.starts_with("bad PROXY v2 header: "), "{case}: {error}");
    }
}

/// A v2 header of a transport other than a stream (UDP, or unspecified) carries addresses the
/// specification has a receiver ignore, as its own does; they were taken for the client's.
#[test]
fn a_proxy_v2_header_of_no_stream_names_no_client() {
    let addresses = b"\x05\x05\x05\x10\x08\x08\x08\x08\x04\x57\x08\xae";
    for (family, client) in [(0x11, true), (0x12, false), (0x10, false)] {
        let header = [&proxy_header::V2_SIGNATURE[..], &[0x21, family, 0x00, 0x0c], addresses].concat();
        let parsed = proxy_header::parse(&header).expect("a header");
        assert_eq!(parsed.is_some(), client, "family and transport {family:#04x}: {parsed:?}");
    }
}

/// A network that does not parse is named as what it is, wherever it is given: one in
/// `proxy_protocol_from` was called a `remote_addr`, the route setting.
#[test]
fn a_bad_proxy_protocol_from_network_is_not_called_a_remote_addr() {
    let text = "[[listener]]\naddr = \"127.0.0.2:0\"\nproxy_protocol_from = [\"10.0.0.0/33\"]\n\
                [[route]]\nupstreams = [\"127.0.0.1:1883\"]";
    let error = Config::parse(text).expect_err("a prefix over 32 bits");
    assert_eq!(error, "line 3: \"10.0.0.0/33\" is not an address or CIDR");
    let error = "nonsense".parse::<config::Network>().expect_err("not a network");
    assert!(!error.contains("remote_addr"), "{error}");
}

/// A v2 LOCAL header (a balancer's own health check, addresses or not) and a PROXY one for a
/// family other than IP leave the connection's own addresses, as the specification (2.2) asks.
#[test]
fn a_v2_local_header_or_a_non_ip_family_leaves_the_connections_own_addresses() {
    let v2 = |rest: &[u8]| [&proxy_header::V2_SIGNATURE[..], rest].concat();
    let addresses = b"\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02";
    let unix = [&b"\x21\x31\x00\xd8"[..], &[b'/'; 216]].concat();
    for (case, header) in [
        ("LOCAL, UNSPEC", v2(b"\x20\x00\x00\x00")),
        ("LOCAL with addresses", v2(&[&b"\x20\x11\x00\x0c"[..], addresses].concat())),
        ("PROXY, UNSPEC", v2(b"\x21\x00\x00\x00")),
        ("PROXY, UNIX", v2(&unix)),
    ] {
        assert_eq!(proxy_header::next(&header), Ok(proxy_header::Next::Whole(header.len())), "{case}");
        assert_eq!(proxy_header::parse(&header), Ok(None), "{case}");
    }
}

/// A TLS 1.2 client is told apart from a TLS 1.3 one: the upstream's PROXY v2 header names its
/// version as HAProxy does, `TLSv1.2`, and a client without a certificate has only the SSL flag.
#[tokio::test]
async fn a_tls_1_2_client_is_named_tlsv1_2_in_the_upstreams_proxy_header() {
    let pki = Pki::new("tls12");
    let mut broker = Recorder::start().await;
    let route = format!("[[route]]\nproxy_protocol = true\nupstreams = [{}]", broker.upstream());
    let proxy = start(&config(&pki.tls(""), &route)).await;
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.der.clone()).expect("CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls12 = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connect = packet(&Connect::new(Protocol::V5, "old-tls"));
    let answer =
        tls_exchange(proxy.addrs[1], &TlsConnector::from(Arc::new(tls12)), "proxy.test", &connect).await;
    assert_eq!(answer.bytes(), V5_OK);
    drop(answer);
    let got = broker.next().await;
    let header = ppp::v2::Header::try_from(got.as_slice()).expect("a PROXY v2 header");
    let ssl = header.tlvs().filter_map(Result::ok).find(|t| t.kind == ppp::v2::Type::SSL as u8).expect("SSL");
    assert_eq!(&ssl.value[..], [&[0x01, 0, 0, 0, 0][..], b"\x21\x00\x07TLSv1.2"].concat(), "no certificate");
    assert_eq!(&got[header.len()..], connect);
}
