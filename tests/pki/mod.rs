//! Certificates made at test time with rcgen, shared by the TLS tests
//! (`tests/tls.rs`, `tests/examples_cli.rs`): a CA, server certificates it
//! signed, a second CA nothing trusts, and client certificates from each.
//! Also a mosquitto TLS listener using them.
#![allow(dead_code)] // each test binary uses a different part of it

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::common::{Broker, TempDir};

/// The common name of [`Pki::client`], which mosquitto's
/// `use_identity_as_username` turns into the user name.
pub const CLIENT_CN: &str = "plover-tls-client";

/// A certificate and its private key, PEM.
pub struct Pair {
    pub cert: String,
    pub key: String,
}

/// Everything the tests trust, present or refuse; made once per test
/// binary (key generation is the slow part).
pub struct Pki {
    /// The CA the brokers use (`cafile`).
    pub ca: String,
    /// A CA nothing here trusts.
    pub other_ca: String,
    /// Signed by `ca`, for `localhost` and 127.0.0.1.
    pub server: Pair,
    /// Signed by `ca`, for `localhost` only.
    pub server_name_only: Pair,
    /// Signed by `other_ca`, for `localhost` and 127.0.0.1.
    pub server_other_ca: Pair,
    /// Client certificate signed by `ca`, CN [`CLIENT_CN`].
    pub client: Pair,
    /// Client certificate signed by `other_ca`.
    pub client_other_ca: Pair,
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn make_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-sign the CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn make_leaf(ca: &Ca, names: &[&str], cn: &str, purpose: ExtendedKeyUsagePurpose) -> Pair {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, &ca.issuer).expect("sign the leaf");
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// The certificates, made on first use.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = make_ca("plover test CA");
        let other = make_ca("plover unrelated CA");
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let client = ExtendedKeyUsagePurpose::ClientAuth;
        Pki {
            server: make_leaf(
                &ca,
                &["localhost", "127.0.0.1"],
                "localhost",
                server.clone(),
            ),
            server_name_only: make_leaf(&ca, &["localhost"], "localhost", server.clone()),
            server_other_ca: make_leaf(&other, &["localhost", "127.0.0.1"], "localhost", server),
            client: make_leaf(&ca, &[], CLIENT_CN, client.clone()),
            client_other_ca: make_leaf(&other, &[], "intruder", client),
            ca: ca.pem,
            other_ca: other.pem,
        }
    })
}

/// Writes `content` to `dir/name` and returns the path as text.
pub fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write a PEM file");
    path.display().to_string()
}

/// The files a client needs, in a directory of their own: `ca.pem`,
/// `other-ca.pem`, `client.crt`/`client.key` (signed by the CA) and
/// `intruder.crt`/`intruder.key` (signed by the other CA).
pub struct ClientFiles {
    pub dir: TempDir,
}

impl ClientFiles {
    pub fn new() -> ClientFiles {
        let files = ClientFiles {
            dir: TempDir::new("tls-client"),
        };
        let p = pki();
        let d = files.dir.path();
        write(d, "ca.pem", &p.ca);
        write(d, "other-ca.pem", &p.other_ca);
        write(d, "client.crt", &p.client.cert);
        write(d, "client.key", &p.client.key);
        write(d, "intruder.crt", &p.client_other_ca.cert);
        write(d, "intruder.key", &p.client_other_ca.key);
        files
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The path as text, for command lines.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A mosquitto whose listener speaks TLS, presenting `server`, trusting
/// the test CA for client certificates, with `extra` configuration lines
/// (`{dir}` is the broker's directory). `prepare` may put more files
/// there (a password file, say).
pub fn tls_broker_with(server: &Pair, extra: &str, prepare: impl FnOnce(&Path)) -> Broker {
    let (cert, key, ca) = (server.cert.clone(), server.key.clone(), pki().ca.clone());
    Broker::start_with_files(
        &format!(
            "cafile {{dir}}/ca.pem\ncertfile {{dir}}/server.crt\nkeyfile {{dir}}/server.key\n{extra}"
        ),
        move |dir| {
            write(dir, "ca.pem", &ca);
            write(dir, "server.crt", &cert);
            write(dir, "server.key", &key);
            prepare(dir);
        },
    )
}

/// [`tls_broker_with`] without extra files.
pub fn tls_broker(server: &Pair, extra: &str) -> Broker {
    tls_broker_with(server, extra, |_| {})
}
