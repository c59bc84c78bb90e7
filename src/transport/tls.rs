//! TLS over any byte stream, with rustls (the `ring` crypto provider): which
//! servers to trust, client certificates for mutual TLS, and the mapping of
//! handshake failures to the distinct [`TransportError`] variants that say
//! *why* a TLS connection could not be made.
//!
//! [`TlsOptions`] gathers the settings and turns them into one
//! `rustls::ClientConfig`, built on first use and shared by every clone, so
//! reconnecting does not parse certificates again.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ResolvesClientCert};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::TransportError;

/// TLS settings (paho's `tls_set`): whom to trust, who we are, and how.
///
/// The default, [`TlsOptions::new`], verifies the server's certificate
/// against the Mozilla root certificates (compiled in from the
/// `webpki-roots` crate) and checks that it is valid for the host name or
/// IP address connected to; that is what public brokers such as HiveMQ
/// Cloud need. A broker with its own CA takes [`ca_file`](Self::ca_file);
/// a broker that wants a client certificate takes
/// [`client_cert_files`](Self::client_cert_files).
///
/// ```no_run
/// use plover::Client;
/// use plover::transport::TlsOptions;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new("sensor-17");
/// client.tls_set(
///     TlsOptions::new()
///         .ca_file("/etc/mosquitto/certs/ca.pem")?
///         .client_cert_files("sensor-17.crt", "sensor-17.key")?,
/// );
/// client.connect("broker.internal", 8883, 60).await?;
/// # Ok(()) }
/// ```
///
/// Every setter returns a new value; files are read and checked when the
/// setter is called, so a missing or malformed file is reported there and
/// not at connect time. The `rustls::ClientConfig` is built once, on the
/// first connect, and shared by the clones.
///
/// `Debug` shows what is configured but never key material.
#[derive(Clone)]
pub struct TlsOptions {
    /// A `ClientConfig` the user built ([`TlsOptions::from_rustls_config`]);
    /// the other settings are applied to a copy of it.
    base: Option<Arc<ClientConfig>>,
    /// The trusted roots; `None` for the default (the Mozilla roots, or the
    /// user config's own verifier).
    trust: Option<Arc<RootCertStore>>,
    /// Our certificate chain and key for mutual TLS.
    client_cert: Option<Arc<CertifiedKey>>,
    /// ALPN protocols to offer; `None` leaves the default (none, or the
    /// user config's).
    alpn: Option<Vec<Vec<u8>>>,
    /// [`TlsOptions::dangerous_disable_verification`] was called.
    no_verification: bool,
    /// [`TlsOptions::dangerous_skip_hostname_verification`] was called.
    no_hostname_check: bool,
    /// The config these settings make, built on first use and shared by
    /// clones. Every setter starts a fresh cache.
    built: Arc<OnceLock<Result<Arc<ClientConfig>, rustls::Error>>>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions::new()
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trust = match (&self.trust, &self.base) {
            (Some(roots), _) => format!("{} root certificates", roots.len()),
            (None, Some(_)) => "as the rustls config says".to_owned(),
            (None, None) => "Mozilla roots".to_owned(),
        };
        let alpn: Option<Vec<String>> = self.alpn.as_ref().map(|list| {
            list.iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        });
        f.debug_struct("TlsOptions")
            .field("trust", &trust)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|c| {
                    format!(
                        "chain of {} certificate(s), private key <redacted>",
                        c.cert.len()
                    )
                }),
            )
            .field("alpn", &alpn)
            .field("verify_server", &!self.no_verification)
            .field(
                "verify_hostname",
                &!(self.no_verification || self.no_hostname_check),
            )
            .field("rustls_config", &self.base.is_some())
            .finish()
    }
}

/// The ring provider, installed explicitly so that another crate in the
/// program enabling aws-lc-rs (and so making rustls's process-wide default
/// ambiguous) cannot break us.
fn ring_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The Mozilla roots, converted once per process.
fn mozilla_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore::from_iter(
                webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
            ))
        })
        .clone()
}

impl TlsOptions {
    /// Verify the server against the Mozilla root certificates, sending the
    /// host name connected to as SNI and checking the certificate is valid
    /// for it (or, for an IP address, that its subjectAltName lists it).
    ///
    /// This is what brokers with a certificate from a public CA need: HiveMQ
    /// Cloud's chain, for instance, ends in ISRG Root X1 (Let's Encrypt),
    /// one of the Mozilla roots.
    ///
    /// ```
    /// let tls = plover::transport::TlsOptions::new();
    /// assert!(format!("{tls:?}").contains("Mozilla roots"));
    /// ```
    pub fn new() -> Self {
        TlsOptions {
            base: None,
            trust: None,
            client_cert: None,
            alpn: None,
            no_verification: false,
            no_hostname_check: false,
            built: Arc::default(),
        }
    }

    /// Uses `config` as it is: cipher suites, protocol versions, verifier,
    /// client authentication, key logging, all yours. Build it with the
    /// rustls that plover re-exports as [`plover::transport::rustls`],
    /// so the versions match.
    ///
    /// The other setters still work on top of it, on a copy: [`alpn`]
    /// replaces its ALPN list, [`client_cert_pem`] its client certificate,
    /// [`ca_pem`] and [`add_ca_pem`] its certificate verifier (with
    /// `add_ca_*` adding to the Mozilla roots, since the config's own roots
    /// cannot be read back), [`dangerous_skip_hostname_verification`]
    /// checks the chain against those same roots but not the name, and
    /// [`dangerous_disable_verification`] turns verification off.
    ///
    /// [`plover::transport::rustls`]: crate::transport::rustls
    /// [`alpn`]: Self::alpn
    /// [`client_cert_pem`]: Self::client_cert_pem
    /// [`ca_pem`]: Self::ca_pem
    /// [`add_ca_pem`]: Self::add_ca_pem
    /// [`dangerous_disable_verification`]: Self::dangerous_disable_verification
    /// [`dangerous_skip_hostname_verification`]: Self::dangerous_skip_hostname_verification
    ///
    /// ```
    /// use std::sync::Arc;
    /// use plover::transport::{TlsOptions, rustls};
    ///
    /// // TLS 1.3 only, Mozilla roots.
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_protocol_versions(&[&rustls::version::TLS13])?
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let tls = TlsOptions::from_rustls_config(Arc::new(config));
    /// # Ok::<(), rustls::Error>(())
    /// ```
    pub fn from_rustls_config(config: Arc<ClientConfig>) -> Self {
        TlsOptions {
            base: Some(config),
            ..TlsOptions::new()
        }
    }

    /// Trust only the CA certificates in this PEM file (paho's
    /// `ca_certs`, mosquitto's `--cafile`): the Mozilla roots no longer
    /// count. Use it for a broker whose certificate your own CA signed.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), plover::transport::TlsError> {
    /// let tls = plover::transport::TlsOptions::new().ca_file("ca.crt")?;
    /// # Ok(()) }
    /// ```
    ///
    /// Fails if the file cannot be read or holds no usable certificate.
    pub fn ca_file(self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let path = path.as_ref();
        let pem = read(path)?;
        let certs = parse_certs(&pem, &path.display().to_string())?;
        self.with_roots(RootCertStore::empty(), certs, path.display().to_string())
    }

    /// Trust the CA certificates in this PEM file in addition to those
    /// trusted already (the Mozilla roots, unless [`ca_file`](Self::ca_file)
    /// or [`ca_pem`](Self::ca_pem) chose others).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), plover::transport::TlsError> {
    /// // Public brokers and the one at the office.
    /// let tls = plover::transport::TlsOptions::new().add_ca_file("office-ca.pem")?;
    /// # Ok(()) }
    /// ```
    pub fn add_ca_file(self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let path = path.as_ref();
        let pem = read(path)?;
        let certs = parse_certs(&pem, &path.display().to_string())?;
        let current = self.current_roots();
        self.with_roots(current, certs, path.display().to_string())
    }

    /// [`ca_file`](Self::ca_file) from PEM text in memory (one or more
    /// `-----BEGIN CERTIFICATE-----` sections; anything else is skipped).
    ///
    /// ```
    /// use plover::transport::{TlsError, TlsOptions};
    ///
    /// let err = TlsOptions::new().ca_pem(b"not a certificate").unwrap_err();
    /// assert!(matches!(err, TlsError::NoCertificate { .. }));
    /// ```
    pub fn ca_pem(self, pem: &[u8]) -> Result<Self, TlsError> {
        let certs = parse_certs(pem, CA_PEM)?;
        self.with_roots(RootCertStore::empty(), certs, CA_PEM.to_owned())
    }

    /// [`add_ca_file`](Self::add_ca_file) from PEM text in memory.
    pub fn add_ca_pem(self, pem: &[u8]) -> Result<Self, TlsError> {
        let certs = parse_certs(pem, CA_PEM)?;
        let current = self.current_roots();
        self.with_roots(current, certs, CA_PEM.to_owned())
    }

    /// Present this certificate (mutual TLS): `cert` is a PEM file with our
    /// certificate first and any intermediates after it, `key` the PEM
    /// private key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1
    /// `EC PRIVATE KEY`; encrypted keys are not supported). mosquitto's
    /// `--cert` and `--key`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), plover::transport::TlsError> {
    /// let tls = plover::transport::TlsOptions::new()
    ///     .ca_file("ca.crt")?
    ///     .client_cert_files("client.crt", "client.key")?;
    /// # Ok(()) }
    /// ```
    ///
    /// Fails if a file cannot be read, holds no certificate or no key, or
    /// if the key does not belong to the certificate.
    pub fn client_cert_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        self.with_client_cert(
            &cert_pem,
            &key_pem,
            &cert.display().to_string(),
            &key.display().to_string(),
        )
    }

    /// [`client_cert_files`](Self::client_cert_files) from PEM text in
    /// memory.
    pub fn client_cert_pem(self, cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        self.with_client_cert(cert_chain, key, CLIENT_CERT_PEM, KEY_PEM)
    }

    /// Offer these ALPN protocols, most preferred first (for example
    /// `b"mqtt"`, or `b"x-amzn-mqtt-ca"` for AWS IoT on port 443).
    ///
    /// ```
    /// let tls = plover::transport::TlsOptions::new().alpn(&[b"mqtt"]);
    /// assert!(format!("{tls:?}").contains("mqtt"));
    /// ```
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = Some(protocols.iter().map(|p| p.to_vec()).collect());
        self.changed()
    }

    /// Accept any certificate the server presents: no chain, no expiry,
    /// no host name check. The connection is still encrypted, but anyone
    /// on the path can pretend to be the broker and read everything,
    /// passwords included. For a test broker with a self-signed
    /// certificate at most; [`ca_file`](Self::ca_file) with that
    /// certificate is the safe way. Every connect logs a
    /// `tracing::warn!` saying verification is off.
    ///
    /// mosquitto's `--insecure` goes less far: that is
    /// [`dangerous_skip_hostname_verification`](Self::dangerous_skip_hostname_verification).
    pub fn dangerous_disable_verification(mut self) -> Self {
        self.no_verification = true;
        self.changed()
    }

    /// Accept a certificate that is not valid for the host name (or IP
    /// address) connected to, as long as everything else checks out: it
    /// must chain to a trusted CA, be within its validity period and be
    /// meant for a server. This is mosquitto's `--insecure` and paho's
    /// `tls_insecure_set(True)`.
    ///
    /// Anyone holding *any* certificate from a trusted CA can then pose as
    /// the broker: with the Mozilla roots that is anyone with a domain
    /// name, so use it only with [`ca_file`](Self::ca_file) naming a
    /// private CA, for a broker reached by an address its certificate does
    /// not list. Adding that address to the certificate is the safe way.
    /// Every connect logs a `tracing::warn!` saying the name is not
    /// checked.
    ///
    /// The chain is checked against the roots these options trust; on a
    /// [`from_rustls_config`](Self::from_rustls_config) config without
    /// `ca_*` setters those are the Mozilla roots, since the config's own
    /// cannot be read back.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), plover::transport::TlsError> {
    /// // A test broker reached by an address its certificate does not list.
    /// let tls = plover::transport::TlsOptions::new()
    ///     .ca_file("test-ca.pem")?
    ///     .dangerous_skip_hostname_verification();
    /// # Ok(()) }
    /// ```
    pub fn dangerous_skip_hostname_verification(mut self) -> Self {
        self.no_hostname_check = true;
        self.changed()
    }

    /// The `rustls::ClientConfig` these options make, built on the first
    /// call and cached (clones share it).
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        self.built
            .get_or_init(|| self.build())
            .clone()
            .map_err(TlsError::Rustls)
    }

    /// A setter changed the settings: whatever was built is stale.
    fn changed(mut self) -> Self {
        self.built = Arc::default();
        self
    }

    fn provider(&self) -> Arc<CryptoProvider> {
        match &self.base {
            Some(config) => config.crypto_provider().clone(),
            None => ring_provider(),
        }
    }

    /// The roots `add_ca_*` adds to.
    fn current_roots(&self) -> RootCertStore {
        match &self.trust {
            Some(roots) => (**roots).clone(),
            None => (*mozilla_roots()).clone(),
        }
    }

    fn with_roots(
        mut self,
        mut roots: RootCertStore,
        certs: Vec<CertificateDer<'static>>,
        origin: String,
    ) -> Result<Self, TlsError> {
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::BadCertificate {
                origin: origin.clone(),
                reason: e.to_string(),
            })?;
        }
        self.trust = Some(Arc::new(roots));
        Ok(self.changed())
    }

    fn with_client_cert(
        mut self,
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_origin: &str,
        key_origin: &str,
    ) -> Result<Self, TlsError> {
        let chain = parse_certs(cert_pem, cert_origin)?;
        let key = parse_key(key_pem, key_origin)?;
        let certified =
            CertifiedKey::from_der(chain, key, &self.provider()).map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => TlsError::InvalidPrivateKey {
                    origin: key_origin.to_owned(),
                    reason: format!("it does not belong to the certificate in {cert_origin}"),
                },
                rustls::Error::InvalidCertificate(why) => TlsError::BadCertificate {
                    origin: cert_origin.to_owned(),
                    reason: why.to_string(),
                },
                other => TlsError::InvalidPrivateKey {
                    origin: key_origin.to_owned(),
                    reason: other.to_string(),
                },
            })?;
        self.client_cert = Some(Arc::new(certified));
        Ok(self.changed())
    }

    /// Makes the `ClientConfig`: the user's (copied only when a setter
    /// changes it) or one of our own.
    fn build(&self) -> Result<Arc<ClientConfig>, rustls::Error> {
        let provider = self.provider();
        let mut config = match &self.base {
            Some(base) => {
                let untouched = self.trust.is_none()
                    && self.client_cert.is_none()
                    && self.alpn.is_none()
                    && !self.no_verification
                    && !self.no_hostname_check;
                if untouched {
                    return Ok(base.clone());
                }
                let mut config = (**base).clone();
                if let Some(roots) = &self.trust {
                    let verifier = WebPkiServerVerifier::builder_with_provider(
                        roots.clone(),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                    config.dangerous().set_certificate_verifier(verifier);
                }
                config
            }
            None => {
                let roots = self.trust.clone().unwrap_or_else(mozilla_roots);
                ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
        };
        if let Some(certified) = &self.client_cert {
            config.client_auth_cert_resolver = Arc::new(SingleCertAndKey::from(certified.clone()));
        }
        if let Some(alpn) = &self.alpn {
            config.alpn_protocols = alpn.clone();
        }
        if self.no_hostname_check {
            let roots = self.trust.clone().unwrap_or_else(mozilla_roots);
            let chain_only = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            config
                .dangerous()
                .set_certificate_verifier(Arc::new(AnyNameFromTrustedCa(chain_only)));
        }
        // Last, so that it wins over everything above.
        if self.no_verification {
            config
                .dangerous()
                .set_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)));
        }
        Ok(Arc::new(config))
    }
}

const CA_PEM: &str = "the CA PEM data";
const CLIENT_CERT_PEM: &str = "the client certificate PEM data";
const KEY_PEM: &str = "the private key PEM data";

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

/// What went wrong in PEM text, without quoting it: a key file's bytes
/// must never end up in an error message or a log.
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line".to_owned(),
        pem::Error::Base64Decode(_) => "invalid base64 in a PEM section".to_owned(),
        pem::Error::Io(e) => e.to_string(),
        pem::Error::SectionTooLarge => "a PEM section is too large".to_owned(),
        _ => "unreadable PEM".to_owned(),
    }
}

fn parse_certs(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            origin: origin.to_owned(),
            reason: pem_problem(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            origin: origin.to_owned(),
        });
    }
    Ok(certs)
}

fn parse_key(pem: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let encrypted = |marker: &[u8]| pem.windows(marker.len()).any(|w| w == marker);
            if encrypted(b"ENCRYPTED PRIVATE KEY") || encrypted(b"Proc-Type: 4,ENCRYPTED") {
                Err(TlsError::InvalidPrivateKey {
                    origin: origin.to_owned(),
                    reason: "encrypted private keys are not supported; decrypt it first \
                             (e.g. `openssl pkey -in KEY -out PLAIN_KEY`)"
                        .to_owned(),
                })
            } else {
                Err(TlsError::NoPrivateKey {
                    origin: origin.to_owned(),
                })
            }
        }
        Err(e) => Err(TlsError::InvalidPrivateKey {
            origin: origin.to_owned(),
            reason: pem_problem(&e),
        }),
    }
}

/// Why TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// PEM text (a file or bytes) without any `CERTIFICATE` section.
    #[error("no certificate found in {origin}")]
    NoCertificate {
        /// The file name, or which PEM argument.
        origin: String,
    },
    /// A certificate that cannot be parsed or used.
    #[error("bad certificate in {origin}: {reason}")]
    BadCertificate {
        /// The file name, or which PEM argument.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// PEM text without a private key.
    #[error("no private key found in {origin}")]
    NoPrivateKey {
        /// The file name, or which PEM argument.
        origin: String,
    },
    /// A private key that cannot be used: malformed, of an unsupported
    /// kind, encrypted, or not the certificate's.
    #[error("invalid private key in {origin}: {reason}")]
    InvalidPrivateKey {
        /// The file name, or which PEM argument.
        origin: String,
        /// What is wrong with it (never the key itself).
        reason: String,
    },
    /// A host that cannot be a TLS server name (neither a DNS name nor an
    /// IP address).
    #[error("{host:?} is not a valid TLS server name")]
    InvalidServerName {
        /// The host as given.
        host: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration error: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The verifier behind [`TlsOptions::dangerous_disable_verification`]: any
/// certificate passes, but the handshake signatures are still checked, so
/// the server at least holds the key of the certificate it showed.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The verifier behind [`TlsOptions::dangerous_skip_hostname_verification`]:
/// rustls's own WebPKI verifier, with one failure forgiven.
///
/// Why forgiving `NotValidForName` is enough, and safe: the WebPKI verifier
/// checks the chain (trust anchor, signatures, validity period, server
/// usage, revocation) first and the name last, so this error means the
/// rest has passed. Any other error, an unknown issuer included, stands.
/// The inner verifier is always one we built, so that order is known.
#[derive(Debug)]
struct AnyNameFromTrustedCa(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyNameFromTrustedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

/// Wraps the configured client certificate resolver for one handshake to
/// learn whether the server asked for a certificate and whether we had
/// one: a TLS 1.2 server that wants one and gets none just says
/// "handshake failure", and this is how the error can say more.
#[derive(Debug)]
struct ClientAuthProbe {
    inner: Arc<dyn ResolvesClientCert>,
    asked: AtomicBool,
    sent: AtomicBool,
}

impl ResolvesClientCert for ClientAuthProbe {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        let found = self.inner.resolve(root_hint_subjects, sigschemes);
        self.sent.store(found.is_some(), Ordering::Relaxed);
        found
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// What the connect path is told when a connection that the server asked
/// a client certificate for, and got none, fails before the server sent a
/// byte.
const NO_CLIENT_CERT: &str = "the broker asked for a client certificate and none was \
                              configured (TlsOptions::client_cert_files)";

/// A TLS stream that remembers whether the server asked for a client
/// certificate that we did not have.
///
/// With TLS 1.3 the server judges our (missing) certificate only after our
/// side of the handshake is complete, so its refusal, a fatal alert or just
/// a closed connection, comes as the first read after CONNECT went out,
/// where it would look like any lost connection. The handshake knew
/// better; this keeps that knowledge: while nothing has been received, a
/// failed read or write, or the end of the stream, becomes an
/// `io::Error` whose inner error is a [`TransportError::Tls`] saying so.
/// Once the server has sent anything (a CONNACK), it has accepted us and
/// the stream is passed through untouched.
pub(crate) struct TlsTransport<T> {
    inner: T,
    /// The server asked for a client certificate and we sent none.
    missing_client_cert: bool,
    /// Some application data has been read.
    received: bool,
}

impl<T> TlsTransport<T> {
    fn new(inner: T, missing_client_cert: bool) -> Self {
        TlsTransport {
            inner,
            missing_client_cert,
            received: false,
        }
    }

    /// Whether failures are still to be explained.
    fn explaining(&self) -> bool {
        self.missing_client_cert && !self.received
    }
}

/// `cause`, explained: the server wanted a certificate we did not have.
fn no_client_cert_error(cause: Option<io::Error>) -> io::Error {
    let (kind, detail) = match cause {
        Some(e) => (e.kind(), e.to_string()),
        None => (
            io::ErrorKind::UnexpectedEof,
            "the connection was closed".to_owned(),
        ),
    };
    io::Error::new(
        kind,
        TransportError::Tls(format!(
            "{NO_CLIENT_CERT}, and the connection failed before the broker answered: {detail}"
        )),
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for TlsTransport<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let explaining = self.explaining();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.received = true;
                Poll::Ready(Ok(()))
            }
            // End of stream (nothing read into a buffer with room).
            Poll::Ready(Ok(())) if explaining && buf.remaining() > 0 => {
                Poll::Ready(Err(no_client_cert_error(None)))
            }
            Poll::Ready(Err(e)) if explaining => Poll::Ready(Err(no_client_cert_error(Some(e)))),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TlsTransport<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let explaining = self.explaining();
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Err(e)) if explaining => Poll::Ready(Err(no_client_cert_error(Some(e)))),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let explaining = self.explaining();
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) if explaining => Poll::Ready(Err(no_client_cert_error(Some(e)))),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let explaining = self.explaining();
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Err(e)) if explaining => Poll::Ready(Err(no_client_cert_error(Some(e)))),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Runs the TLS handshake over `stream` for `host` (a DNS name, sent as
/// SNI, or an IP address, matched against the certificate's IP SANs),
/// giving up after `timeout` with [`TransportError::TlsHandshakeTimeout`].
///
/// Cancel safety: dropping the future abandons the handshake and the
/// stream.
pub(crate) async fn connect<S>(
    stream: S,
    host: &str,
    options: &TlsOptions,
    timeout: Duration,
) -> Result<TlsTransport<TlsStream<S>>, TransportError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let config = options.client_config()?;
    let name = ServerName::try_from(host.to_owned()).map_err(|_| TlsError::InvalidServerName {
        host: host.to_owned(),
    })?;
    if options.no_verification {
        tracing::warn!(
            host,
            "TLS certificate verification is disabled (dangerous_disable_verification): \
             the server's identity is not checked"
        );
    } else if options.no_hostname_check {
        tracing::warn!(
            host,
            "TLS host name verification is disabled (dangerous_skip_hostname_verification): \
             any certificate from a trusted CA is accepted, whatever name it is for"
        );
    }
    // A shallow copy of the cached config (its parts are shared) with the
    // probe around the client certificate resolver.
    let probe = Arc::new(ClientAuthProbe {
        inner: config.client_auth_cert_resolver.clone(),
        asked: AtomicBool::new(false),
        sent: AtomicBool::new(false),
    });
    let mut per_connection = (*config).clone();
    per_connection.client_auth_cert_resolver = probe.clone();
    let connector = TlsConnector::from(Arc::new(per_connection));
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(TransportError::TlsHandshakeTimeout {
            host: host.to_owned(),
        }),
        Ok(Ok(stream)) => {
            tracing::debug!(host, "TLS handshake complete");
            // Under TLS 1.3 the verdict on a missing certificate is still
            // to come; remember that it may be one.
            let missing =
                probe.asked.load(Ordering::Relaxed) && !probe.sent.load(Ordering::Relaxed);
            if missing {
                tracing::debug!(
                    host,
                    "the server asked for a client certificate; we have none"
                );
            }
            Ok(TlsTransport::new(stream, missing))
        }
        Ok(Err(e)) => Err(handshake_error(
            e,
            host,
            probe.asked.load(Ordering::Relaxed),
            probe.sent.load(Ordering::Relaxed),
        )),
    }
}

/// Sorts a failed handshake into the variant that says why.
fn handshake_error(e: io::Error, host: &str, asked: bool, sent: bool) -> TransportError {
    let no_cert = "the server requires a client certificate and none was configured \
                   (TlsOptions::client_cert_files)";
    let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => {
                if asked && !sent {
                    TransportError::Tls(format!("{no_cert}; the server closed the connection"))
                } else {
                    TransportError::Tls(format!(
                        "the server closed the connection during the handshake \
                         (does this port speak TLS?): {e}"
                    ))
                }
            }
            _ => TransportError::Io(e),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => TransportError::HostnameMismatch {
            host: host.to_owned(),
        },
        rustls::Error::InvalidCertificate(why) => {
            TransportError::UntrustedCertificate(why.to_string())
        }
        rustls::Error::AlertReceived(alert) if asked && !sent => {
            TransportError::Tls(format!("{no_cert} (received fatal alert: {alert:?})"))
        }
        rustls::Error::AlertReceived(alert @ AlertDescription::CertificateRequired) => {
            TransportError::Tls(format!("{no_cert} (received fatal alert: {alert:?})"))
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied),
        ) if sent => TransportError::Tls(format!(
            "the server rejected our client certificate (received fatal alert: {alert:?})"
        )),
        other => TransportError::Tls(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_keys_and_says_what_is_set() {
        let tls = TlsOptions::new()
            .alpn(&[b"mqtt"])
            .dangerous_disable_verification();
        let text = format!("{tls:?}");
        assert!(text.contains("Mozilla roots"), "{text}");
        assert!(text.contains("verify_server: false"), "{text}");
        assert!(text.contains("\"mqtt\""), "{text}");
    }

    #[test]
    fn skipping_the_name_check_forgives_nothing_else() {
        let tls = TlsOptions::new().dangerous_skip_hostname_verification();
        let text = format!("{tls:?}");
        assert!(text.contains("verify_server: true"), "{text}");
        assert!(text.contains("verify_hostname: false"), "{text}");
        let verifier =
            WebPkiServerVerifier::builder_with_provider(mozilla_roots(), ring_provider())
                .build()
                .unwrap();
        let lenient = AnyNameFromTrustedCa(verifier);
        let name = ServerName::try_from("broker.example").unwrap();
        // Not a certificate at all: still refused, with the inner error.
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let e = lenient
            .verify_server_cert(&garbage, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(matches!(e, rustls::Error::InvalidCertificate(_)), "{e:?}");
        // And the config really carries it (built without error).
        assert!(tls.client_config().is_ok());
    }

    /// The knowledge kept from the handshake, on a stream whose peer
    /// hangs up: explained while nothing has arrived, untouched after.
    #[tokio::test]
    async fn a_missing_client_certificate_explains_an_early_hang_up() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let inner_message = |e: &io::Error| match e.get_ref().and_then(|e| e.downcast_ref()) {
            Some(TransportError::Tls(m)) => m.clone(),
            other => panic!("expected a TransportError::Tls inside, got {other:?}"),
        };
        // Closed before a byte arrived.
        let (ours, theirs) = tokio::io::duplex(64);
        drop(theirs);
        let mut stream = TlsTransport::new(ours, true);
        let e = stream.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let message = inner_message(&e);
        assert!(message.contains(NO_CLIENT_CERT), "{message}");
        assert!(message.contains("closed"), "{message}");

        // Once the server has said something, it accepted us: its later
        // hang-up is an ordinary end of stream.
        let (ours, mut theirs) = tokio::io::duplex(64);
        theirs.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
        drop(theirs);
        let mut stream = TlsTransport::new(ours, true);
        let mut connack = Vec::new();
        stream.read_to_end(&mut connack).await.unwrap();
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);

        // Without the probe's finding, nothing changes.
        let (ours, theirs) = tokio::io::duplex(64);
        drop(theirs);
        let mut stream = TlsTransport::new(ours, false);
        assert_eq!(stream.read(&mut [0; 8]).await.unwrap(), 0);
    }

    #[test]
    fn the_config_is_built_once_and_shared_by_clones() {
        let tls = TlsOptions::new();
        let copy = tls.clone();
        let a = tls.client_config().unwrap();
        let b = copy.client_config().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        // A setter makes a new one.
        let c = copy.alpn(&[b"mqtt"]).client_config().unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn a_users_config_is_used_as_it_is() {
        let config = TlsOptions::new().client_config().unwrap();
        let tls = TlsOptions::from_rustls_config(config.clone());
        assert!(Arc::ptr_eq(&tls.client_config().unwrap(), &config));
        let with_alpn = tls.alpn(&[b"x-amzn-mqtt-ca"]).client_config().unwrap();
        assert_eq!(with_alpn.alpn_protocols, [b"x-amzn-mqtt-ca".to_vec()]);
    }

    #[test]
    fn pem_errors_are_specific() {
        assert!(matches!(
            TlsOptions::new().ca_pem(b""),
            Err(TlsError::NoCertificate { .. })
        ));
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            TlsOptions::new().ca_pem(bad),
            Err(TlsError::BadCertificate { .. })
        ));
        // Well-formed PEM, but not a certificate inside.
        let junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            TlsOptions::new().ca_pem(junk),
            Err(TlsError::BadCertificate { .. })
        ));
        let encrypted =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(
            parse_key(encrypted, KEY_PEM),
            Err(TlsError::InvalidPrivateKey { reason, .. }) if reason.contains("encrypted")
        ));
        assert!(matches!(
            parse_key(b"nothing here", KEY_PEM),
            Err(TlsError::NoPrivateKey { .. })
        ));
    }

    /// Throwaway keys made with `openssl ecparam -genkey -noout` (SEC1) and
    /// `openssl genrsa -traditional 1024` (PKCS#1), for parsing only.
    const SEC1_KEY: &[u8] = b"-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICj6ViSvlpCMSKf7C0Ia5ykKKt3w+CW/kiiVKHTtrWAPoAoGCCqGSM49
AwEHoUQDQgAE0hXk+sjONGGSkjiZRZkZfkZS/9jFCgR5ECriC9gMgdricvfMfSqE
vr5nzoYddQRmAOYWAYRmIPkJLpdGCKFChQ==
-----END EC PRIVATE KEY-----
";
    const PKCS1_KEY: &[u8] = b"-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDSWVbaKinSzXeOmg3/WrQA2I57YPLcF91nAGZ0YEEjm/fZgPbR
UxAFpfuPuuWsT5siPaq7aRssOO5mhUUQYvyx6e+gfvnOMqsorL14BwQ7YcPpdtSZ
joNl7s1RH8t9Wa4h6V5vRrXPkUCXy+WmCAFgYlphtCj3nqs7rGEpxxZR8wIDAQAB
AoGBAKgEbHd+zkFvlVv2ec/KJ5W1ZLnwSoy7E0I+85dpex5yapr1hDDXZCje1/2K
kAH+5C+JimKAJhBAuUxyjyPzrVsLn6MrzwOfJxPk8gvgsgymN6nSf1cV3xla+D7m
sDS8t0ewum0jlGL5NJqzI2DlH9H/ReDLo15Aj7YoDNuyTzXhAkEA+M0sEMpL44HA
KRARHXsHUuvNJMv1oiptiGaIQjl/WT82Nk45q7GnEWVeilxYwF1oGELyCKw4+C33
soVylrSBnQJBANhvW0b0TKlJl2cluFo9QmoswKor9eEq1CmEw1q6fLJED0gXXBex
cKxXTVPG5op6cgE+2iKYiEAda8PapBTiVM8CQFRPMl9+LbkqfrNrfmE/D3xJ63pM
ozAQsI1IMWQ/l6fmg7hjSaeky7hZYXABWxHUlTGjfeDye1ueOBGGpw3qnQECQQCC
79tosaMvRzYxUMCW1zi2wxxL1wyJjD+OXqNQ4EFQF5ynIHq2WsKvgKFnbY1LeYg+
+Kc/BshnAWWQt1VMzSBBAkEAke4ZyooMAPaQZyscwbTH5xU7OfqT3q/IlzitSiOb
Cb6RZU+5YG29UzIVePu5N6Qz/349aGdNPlVYlojfdZ1Jfg==
-----END RSA PRIVATE KEY-----
";

    #[test]
    fn sec1_and_pkcs1_keys_are_read() {
        assert!(matches!(
            parse_key(SEC1_KEY, KEY_PEM),
            Ok(PrivateKeyDer::Sec1(_))
        ));
        assert!(matches!(
            parse_key(PKCS1_KEY, KEY_PEM),
            Ok(PrivateKeyDer::Pkcs1(_))
        ));
        // And ring can sign with the SEC1 one.
        let key = parse_key(SEC1_KEY, KEY_PEM).unwrap();
        assert!(ring_provider().key_provider.load_private_key(key).is_ok());
    }

    #[test]
    fn unreadable_files_name_the_path() {
        let err = TlsOptions::new()
            .ca_file("/nonexistent/plover/ca.pem")
            .unwrap_err();
        assert!(matches!(&err, TlsError::ReadFile { path, .. } if path.ends_with("ca.pem")));
        assert!(
            err.to_string().contains("/nonexistent/plover/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn handshake_errors_map_to_their_variants() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        assert!(matches!(
            handshake_error(
                wrap(CertificateError::UnknownIssuer.into()),
                "h",
                false,
                false
            ),
            TransportError::UntrustedCertificate(_)
        ));
        assert!(matches!(
            handshake_error(
                wrap(CertificateError::NotValidForName.into()),
                "h",
                false,
                false
            ),
            TransportError::HostnameMismatch { host } if host == "h"
        ));
        let alert = wrap(rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure,
        ));
        match handshake_error(alert, "h", true, false) {
            TransportError::Tls(m) => assert!(m.contains("requires a client certificate"), "{m}"),
            other => panic!("{other:?}"),
        }
        let alert = wrap(rustls::Error::AlertReceived(AlertDescription::UnknownCA));
        match handshake_error(alert, "h", true, true) {
            TransportError::Tls(m) => assert!(m.contains("rejected our client certificate"), "{m}"),
            other => panic!("{other:?}"),
        }
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert!(matches!(
            handshake_error(eof, "h", false, false),
            TransportError::Tls(m) if m.contains("closed the connection")
        ));
    }
}
