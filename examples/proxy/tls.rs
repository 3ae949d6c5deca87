//! TLS at the edge: a listener's certificate, key and client-certificate policy read into a
//! rustls server config (again at each reload, so new handshakes use the new files and live
//! connections keep theirs), and what a finished handshake says about the client.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ProtocolVersion, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// A TLS listener's files and client-certificate policy, as `tls = { ... }` on a `[[listener]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// PEM: the server's certificate first, then its chain.
    pub cert: PathBuf,
    /// PEM: the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Protocols offered by ALPN, such as `["mqtt"]`, each 1 to 255 bytes; none by default. A
    /// client that offers ALPN without any of them is refused by the handshake.
    #[serde(default)]
    pub alpn: Vec<String>,
    /// PEM: the CAs that client certificates are verified against; asks clients for one.
    pub client_ca: Option<PathBuf>,
    /// Whether a client without a certificate is let in (`optional`) or refused by the
    /// handshake (`required`, the default once `client_ca` is set).
    pub client_auth: Option<ClientAuth>,
    /// PEM: certificate revocation lists checked with `client_ca`.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
    /// Built from the files above when the config is loaded.
    #[serde(skip)]
    pub server: Option<Arc<ServerConfig>>,
}

/// Whether a client certificate is needed.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    Optional,
    Required,
}

impl Settings {
    /// Reads the files into a server config: TLS 1.3 and 1.2 on ring, the key checked against
    /// the certificate. The error names the file and what is wrong with it, for one log line.
    pub fn arm(&mut self) -> Result<(), String> {
        if let Some(name) = self.alpn.iter().find(|p| !(1..=255).contains(&p.len())) {
            return Err(format!("tls: alpn has a name of {} bytes, not 1 to 255 (RFC 7301 3.1)", name.len()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = read_certs(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| at(&self.key, pem_error(e)))?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?;
        let builder = match &self.client_ca {
            None if self.client_auth.is_some() || !self.crl.is_empty() => {
                return Err("tls: client_auth and crl need client_ca".into());
            }
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                let anchors = read_certs(ca)?;
                for cert in anchors.iter().cloned() {
                    roots.add(cert).map_err(|e| at(ca, e))?;
                }
                let roots = Arc::new(roots);
                let mut crls = Vec::new();
                for path in &self.crl {
                    crls.push((path, read_crls(path)?));
                }
                if !crls.is_empty() {
                    warn_of_cas_without_crl(ca, &anchors, crls.iter().flat_map(|(_, list)| list));
                }
                // A CRL past its next update is enforced, as OpenSSL has NGINX, mosquitto and
                // HAProxy do: the clients it covers are refused, where rustls would go on
                // taking a list that no longer says what is revoked.
                let verifier = |crls: Vec<CertificateRevocationListDer<'static>>| {
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                        .with_crls(crls)
                        .enforce_revocation_expiration()
                };
                let all = verifier(crls.iter().flat_map(|(_, list)| list.iter().cloned()).collect());
                let all = match self.client_auth {
                    Some(ClientAuth::Optional) => all.allow_unauthenticated(),
                    Some(ClientAuth::Required) | None => all,
                };
                let built = all.build().map_err(|e| {
                    // CRLs are parsed here: the file of one that does not parse is named, not
                    // the CA's.
                    let crl = crls.iter().find(|(_, list)| verifier(list.clone()).build().is_err());
                    at(crl.map_or(ca.as_path(), |(path, _)| path.as_path()), e)
                })?;
                builder.with_client_cert_verifier(built)
            }
        };
        let mut server = builder.with_single_cert(certs, key).map_err(|e| at(&self.key, e))?;
        server.alpn_protocols = self.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        self.server = Some(Arc::new(server));
        Ok(())
    }
}

/// The certificates in `path`, each parsed, so that one that is not a certificate is named
/// with its file (as OpenSSL's PEM reader names it for NGINX) rather than found later, by
/// rustls, against the key.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = read_pem(path, "certificate")?;
    for (n, cert) in certs.iter().enumerate() {
        X509Certificate::from_der(cert).map_err(|e| at(path, format_args!("certificate {}: {e}", n + 1)))?;
    }
    Ok(certs)
}

/// The CRLs in `path`; a warning names the file if one is past its next update, whose clients
/// are then refused.
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let crls: Vec<CertificateRevocationListDer<'static>> = read_pem(path, "certificate revocation list")?;
    let now = x509_parser::time::ASN1Time::now();
    let expired = crls.iter().filter_map(|crl| x509_parser::parse_x509_crl(crl).ok()?.1.next_update());
    if let Some(next_update) = expired.filter(|next| *next < now).min() {
        tracing::warn!(
            crl = %path.display(),
            %next_update,
            "certificate revocation list past its next update: the client certificates it covers are refused"
        );
    }
    Ok(crls)
}

/// Warns of each CA in `client_ca` that no list in `crl` is from. rustls checks every
/// certificate of a client's chain but the CA's own, as HAProxy and NGINX have OpenSSL do
/// (`X509_V_FLAG_CRL_CHECK_ALL`), and refuses one whose status no list gives: with only an
/// intermediate's list, every client under the CA would be refused, and nothing would say why
/// until the first one was.
fn warn_of_cas_without_crl<'a>(
    ca: &Path,
    anchors: &[CertificateDer<'_>],
    crls: impl Iterator<Item = &'a CertificateRevocationListDer<'static>>,
) {
    let issuers = crls
        .filter_map(|crl| Some(x509_parser::parse_x509_crl(crl).ok()?.1.tbs_cert_list.issuer.as_raw()))
        .collect::<Vec<_>>();
    for anchor in anchors.iter().filter_map(|der| X509Certificate::from_der(der).ok()) {
        let subject = anchor.1.subject();
        if !issuers.contains(&subject.as_raw()) {
            tracing::warn!(
                client_ca = %ca.display(),
                ca = %subject,
                "no revocation list in crl from this CA: every certificate of a client's chain is checked, \
                 so the clients under it are refused (UnknownRevocationStatus)"
            );
        }
    }
}

/// Whether a handshake failed for a client certificate whose revocation status no list gives.
pub fn unknown_revocation(e: &io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownRevocationStatus))
    )
}

/// Every PEM item of one kind in `path`. A file with none is refused rather than taken for an
/// empty list, as NGINX and mosquitto refuse it: a CRL file in DER, the form CAs mostly publish,
/// would otherwise check nothing.
fn read_pem<T: PemObject>(path: &Path, kind: &str) -> Result<Vec<T>, String> {
    let items = T::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| at(path, pem_error(e)))?;
    if items.is_empty() {
        return Err(at(path, format_args!("no PEM {kind} in it")));
    }
    Ok(items)
}

/// A PEM reader's error in words: rustls-pki-types writes the marker line it missed, or the
/// one it could not read, as a list of byte values.
fn pem_error(e: pem::Error) -> String {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            let label = text(&end_marker);
            format!("the file ends inside a {label} with no -----END {label}----- line")
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("a BEGIN line that cannot be read: {:?}", text(&line))
        }
        e => e.to_string(),
    }
}

fn at(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// What a finished handshake says about the client.
#[derive(Clone, Debug)]
pub struct Hello {
    /// The server name the client asked for (SNI), lower case.
    pub sni: Option<String>,
    /// As PROXY v2 and OpenSSL spell it: `TLSv1.3`.
    pub version: &'static str,
    /// The client's certificate, verified against `client_ca`, when it sent one.
    pub cert: Option<CertificateDer<'static>>,
}

impl Hello {
    pub fn of(stream: &TlsStream<TcpStream>) -> Self {
        let (_, conn) = stream.get_ref();
        Self {
            sni: conn.server_name().map(str::to_ascii_lowercase),
            version: match conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "TLS",
            },
            cert: conn.peer_certificates().and_then(|chain| chain.first()).map(|c| c.clone().into_owned()),
        }
    }

    /// The value of a PROXY v2 `PP2_TYPE_SSL` field, as HAProxy sends it: client flags (over
    /// SSL, and a certificate on this connection and session when there is one), the
    /// verification result (0: verified, or none sent), then the TLS version and the
    /// certificate's CN as sub-fields.
    pub fn proxy_v2_ssl(&self) -> Vec<u8> {
        const CLIENT_SSL: u8 = 0x01;
        const CLIENT_CERT_CONN: u8 = 0x02;
        const CLIENT_CERT_SESS: u8 = 0x04;
        const SUBTYPE_SSL_VERSION: u8 = 0x21;
        const SUBTYPE_SSL_CN: u8 = 0x22;
        let certified = if self.cert.is_some() { CLIENT_CERT_CONN | CLIENT_CERT_SESS } else { 0 };
        let mut value = vec![CLIENT_SSL | certified, 0, 0, 0, 0];
        let mut sub = |kind: u8, bytes: &[u8]| {
            if let Ok(len) = u16::try_from(bytes.len()) {
                value.push(kind);
                value.extend_from_slice(&len.to_be_bytes());
                value.extend_from_slice(bytes);
            }
        };
        sub(SUBTYPE_SSL_VERSION, self.version.as_bytes());
        if let Some(cn) = self.name(Source::Cn) {
            sub(SUBTYPE_SSL_CN, cn.as_bytes());
        }
        value
    }

    /// The certificate's name of this kind, for the log and the PROXY header: `None` without a
    /// certificate, a name of that kind, or one that can be read.
    pub fn name(&self, source: Source) -> Option<String> {
        self.lookup(source)?.ok()
    }

    /// The certificate's name of this kind as the client's User Name: `None` when there is no
    /// certificate or no name of that kind, and an error when there is one that cannot stand
    /// for the client, which is not to be taken for none.
    pub fn identity(&self, source: Source) -> Result<Option<String>, Unfit> {
        let Some(name) = self.lookup(source).transpose()? else { return Ok(None) };
        if name.is_empty() {
            return Err(Unfit::Empty);
        }
        // `char::is_control` is U+0000..U+001F and U+007F..U+009F, the standard's list.
        if name.chars().any(char::is_control) {
            return Err(Unfit::Control);
        }
        Ok(Some(name))
    }

    /// The name of this kind: `None` if there is none, an error if there is one that cannot be
    /// read as text.
    fn lookup(&self, source: Source) -> Option<Result<String, Unfit>> {
        let Ok((_, cert)) = X509Certificate::from_der(self.cert.as_deref()?) else {
            return Some(Err(Unfit::Unreadable));
        };
        if source == Source::Cn {
            let cn = cert.subject().iter_common_name().next()?;
            return Some(cn.as_str().map(str::to_owned).map_err(|_| Unfit::Unreadable));
        }
        let names = match cert.subject_alternative_name() {
            Ok(names) => names?,
            Err(_) => return Some(Err(Unfit::Unreadable)),
        };
        names.value.general_names.iter().find_map(|name| match (source, name) {
            (Source::SanDns, GeneralName::DNSName(s))
            | (Source::SanEmail, GeneralName::RFC822Name(s))
            | (Source::SanUri, GeneralName::URI(s)) => Some(Ok((*s).to_owned())),
            _ => None,
        })
    }
}

/// Why a certificate's name cannot stand for its client in the User Name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfit {
    /// Not text the proxy reads: a string type other than UTF8String, PrintableString,
    /// IA5String or NumericString (RFC 5280 4.1.2.6 asks CAs for the first two), bytes that are
    /// not UTF-8, or a certificate or SAN extension that does not parse.
    Unreadable,
    /// Empty: it names no one.
    Empty,
    /// A control character, U+0000 among them: an MQTT sender SHOULD NOT send one (5.0 1.5.4,
    /// 3.1.1 1.5.3), and mosquitto refuses it as malformed.
    Control,
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unreadable => "not readable as text",
            Self::Empty => "empty",
            Self::Control => "holds a control character",
        })
    }
}

/// Which name of the client's certificate stands for it.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The subject's Common Name.
    #[default]
    Cn,
    /// The first DNS name among the Subject Alternative Names.
    SanDns,
    /// The first e-mail address (rfc822Name) among them.
    SanEmail,
    /// The first URI among them.
    SanUri,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why a certificate's name cannot be the User Name, in the words the refusal is logged with.
    #[test]
    fn an_unfit_name_says_why_in_words() {
        let words = [Unfit::Unreadable, Unfit::Empty, Unfit::Control].map(|unfit| unfit.to_string());
        assert_eq!(words, ["not readable as text", "empty", "holds a control character"]);
    }
}
