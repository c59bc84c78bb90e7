//! TLS end to end against mosquitto's TLS listeners, with certificates made
//! at test time by rcgen: a CA, a server certificate it signed (for
//! `localhost` and 127.0.0.1, or for `localhost` only), a second CA that
//! signed nothing the broker knows, and client certificates from each.
//!
//! Each failure must come out as its own [`TransportError`] variant; where
//! the outcome depends on what mosquitto (OpenSSL) and rustls do rather
//! than on plover, the test pins what was observed and says why.
//!
//! Every wait is bounded; only 127.0.0.1 and `localhost` are used.

mod common;
mod pki;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Broker, TempDir, client_id, password_file, within};
use pki::{CLIENT_CN, ClientFiles, Pair, pki, tls_broker, tls_broker_with, write};
use plover::codec::ConnectReasonCode;
use plover::transport::rustls::pki_types::pem::PemObject;
use plover::transport::{TlsError, TlsOptions, TransportError, rustls};
use plover::{Client, ClientError, CloseReason, ProtocolVersion, QoS};

/// Upper bound for one step (a connect, an acknowledgement, a message).
const STEP: u64 = 10;

/// Generates `mod $scenario { v311, v5 }` tests calling `$scenario(version)`.
macro_rules! both_versions {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v311() {
                super::$scenario(plover::ProtocolVersion::V311).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v5() {
                super::$scenario(plover::ProtocolVersion::V5).await;
            }
        }
    )*};
}

/// Trust only the test CA.
fn trust_ca(files: &ClientFiles) -> TlsOptions {
    TlsOptions::new()
        .ca_file(files.path("ca.pem"))
        .expect("ca.pem loads")
}

fn anonymous_tls_broker(server: &Pair) -> Broker {
    tls_broker(server, "allow_anonymous true\n")
}

fn client(tag: &str, version: ProtocolVersion) -> Client {
    Client::builder(client_id(tag))
        .protocol(version)
        .automatic_reconnect(false)
        .connect_timeout(Duration::from_secs(STEP))
        .build()
}

/// Connects and expects a failure, which it returns.
async fn refused(client: &Client, host: &str, port: u16) -> ClientError {
    match within(
        "a TLS connect that must fail",
        STEP + 5,
        client.connect(host, port, 30),
    )
    .await
    {
        Ok(connack) => panic!("connected to {host}:{port} although it must fail: {connack:?}"),
        Err(e) => e,
    }
}

/// Subscribes and publishes at QoS 1 over `client`, checking the message
/// comes back.
async fn round_trip(client: &Client, topic: &str) {
    let mut messages = client.messages();
    within("subscribe", STEP, client.subscribe(topic, QoS::AtLeastOnce))
        .await
        .expect("subscribe over TLS");
    let ack = within(
        "publish",
        STEP,
        client.publish(topic, "over TLS", QoS::AtLeastOnce, false),
    )
    .await
    .expect("publish over TLS");
    within("PUBACK", STEP, ack).await.expect("PUBACK over TLS");
    let message = within("the message back", STEP, messages.recv())
        .await
        .expect("a message");
    assert_eq!(message.topic, topic);
    assert_eq!(message.payload, "over TLS");
    assert_eq!(message.qos, QoS::AtLeastOnce);
}

// ---------------------------------------------------------------------------
// 1. A trusted server, by name and by IP address.

both_versions!(trusted_by_name_and_by_address);

async fn trusted_by_name_and_by_address(version: ProtocolVersion) {
    let broker = anonymous_tls_broker(&pki().server);
    let files = ClientFiles::new();
    for host in ["localhost", "127.0.0.1"] {
        let c = client("tls-ok", version);
        c.tls_set(trust_ca(&files));
        let connack = within("TLS connect", STEP, c.connect(host, broker.port, 30))
            .await
            .unwrap_or_else(|e| panic!("TLS to {host}: {e}\n{}", broker.log()));
        assert_eq!(connack.reason_code, ConnectReasonCode::Success);
        round_trip(&c, &format!("tls/{host}")).await;
        within("disconnect", STEP, c.disconnect())
            .await
            .expect("disconnect");
    }
}

// ---------------------------------------------------------------------------
// 2. A server whose CA we do not trust.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_is_untrusted() {
    let broker = anonymous_tls_broker(&pki().server);
    let files = ClientFiles::new();
    let cases = [
        ("the Mozilla roots", TlsOptions::new()),
        (
            "an unrelated CA",
            TlsOptions::new()
                .ca_file(files.path("other-ca.pem"))
                .unwrap(),
        ),
        (
            "the Mozilla roots plus an unrelated CA",
            TlsOptions::new()
                .add_ca_file(files.path("other-ca.pem"))
                .unwrap(),
        ),
    ];
    for (what, options) in cases {
        for host in ["localhost", "127.0.0.1"] {
            let c = client("tls-untrusted", ProtocolVersion::V311);
            c.tls_set(options.clone());
            match refused(&c, host, broker.port).await {
                ClientError::Transport(TransportError::UntrustedCertificate(why)) => {
                    // rustls's words for a chain to no trusted root.
                    assert_eq!(why, "UnknownIssuer", "{what}, {host}");
                }
                other => panic!("{what}, {host}: expected UntrustedCertificate, got {other:?}"),
            }
        }
    }
    // The same through a URL: mqtts:// without tls_set means the Mozilla
    // roots.
    let c = client("tls-untrusted-url", ProtocolVersion::V5);
    let e = within(
        "connect_url",
        STEP,
        c.connect_url(&format!("mqtts://localhost:{}", broker.port), 30),
    )
    .await
    .expect_err("an untrusted server");
    assert!(
        matches!(
            e,
            ClientError::Transport(TransportError::UntrustedCertificate(_))
        ),
        "{e:?}"
    );
    // And the message says what happened.
    assert_eq!(
        e.to_string(),
        "cannot connect: the server's certificate is not trusted: UnknownIssuer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_ca_is_trusted_alongside_the_mozilla_roots() {
    let broker = anonymous_tls_broker(&pki().server);
    let files = ClientFiles::new();
    let c = client("tls-add-ca", ProtocolVersion::V311);
    c.tls_set(TlsOptions::new().add_ca_file(files.path("ca.pem")).unwrap());
    within("TLS connect", STEP, c.connect("localhost", broker.port, 30))
        .await
        .expect("our CA added to the Mozilla roots is trusted");
    let _ = within("disconnect", STEP, c.disconnect()).await;
    // From memory too.
    let c = client("tls-ca-pem", ProtocolVersion::V311);
    c.tls_set(TlsOptions::new().ca_pem(pki().ca.as_bytes()).unwrap());
    within("TLS connect", STEP, c.connect("127.0.0.1", broker.port, 30))
        .await
        .expect("ca_pem");
    let _ = within("disconnect", STEP, c.disconnect()).await;
}

// ---------------------------------------------------------------------------
// 3. A certificate for another name.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_name_is_a_hostname_mismatch() {
    let broker = anonymous_tls_broker(&pki().server_name_only);
    let files = ClientFiles::new();
    let c = client("tls-mismatch", ProtocolVersion::V5);
    c.tls_set(trust_ca(&files));
    match refused(&c, "127.0.0.1", broker.port).await {
        ClientError::Transport(TransportError::HostnameMismatch { host }) => {
            assert_eq!(host, "127.0.0.1");
        }
        other => panic!("expected HostnameMismatch, got {other:?}"),
    }
    // The certificate itself is fine for the name it has.
    let c = client("tls-match", ProtocolVersion::V5);
    c.tls_set(trust_ca(&files));
    within("TLS connect", STEP, c.connect("localhost", broker.port, 30))
        .await
        .expect("localhost matches the certificate");
    let _ = within("disconnect", STEP, c.disconnect()).await;
}

// ---------------------------------------------------------------------------
// 4. Mutual TLS.

fn mutual_tls_broker() -> Broker {
    // No password file: the certificate is the credential, and its CN
    // becomes the user name.
    tls_broker(
        &pki().server,
        "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n",
    )
}

both_versions!(mutual_tls_with_the_right_certificate);

async fn mutual_tls_with_the_right_certificate(version: ProtocolVersion) {
    let broker = mutual_tls_broker();
    let files = ClientFiles::new();
    let c = client("tls-mutual", version);
    c.tls_set(
        trust_ca(&files)
            .client_cert_files(files.path("client.crt"), files.path("client.key"))
            .expect("the client certificate loads"),
    );
    within(
        "mutual TLS connect",
        STEP,
        c.connect("localhost", broker.port, 30),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", broker.log()));
    round_trip(&c, "tls/mutual").await;
    // mosquitto took the certificate's CN as our user name.
    broker.wait_for_log(&format!("u'{CLIENT_CN}'"), STEP).await;
    let _ = within("disconnect", STEP, c.disconnect()).await;

    // The same from PEM in memory.
    let c = client("tls-mutual-pem", version);
    c.tls_set(
        trust_ca(&files)
            .client_cert_pem(pki().client.cert.as_bytes(), pki().client.key.as_bytes())
            .unwrap(),
    );
    within(
        "mutual TLS connect",
        STEP,
        c.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .expect("client_cert_pem");
    let _ = within("disconnect", STEP, c.disconnect()).await;
}

/// With TLS 1.3 (what rustls and mosquitto agree on) the server checks our
/// certificate only after our side of the handshake is complete, so its
/// verdict, a fatal alert, arrives as the first read after we sent
/// CONNECT, where it would look like any lost connection. The handshake
/// knew the server asked for a certificate we did not have, and the
/// connect's error says so. (The TLS 1.2 test below shows the
/// handshake-time error with its explanation.)
fn assert_missing_certificate_named(e: &ClientError, what: &str) {
    // (A certificate we did present and the broker refused is another
    // matter: the handshake cannot tell, so that stays a closed connection;
    // see `assert_closed_before_connack`.)
    match e {
        ClientError::Transport(TransportError::Tls(why)) => assert!(
            why.contains("asked for a client certificate"),
            "{what}: the error should name the missing certificate: {why}"
        ),
        other => panic!("{what}: expected a TLS transport error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_without_a_certificate_is_refused() {
    let broker = mutual_tls_broker();
    let files = ClientFiles::new();
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let c = client("tls-no-cert", version);
        c.tls_set(trust_ca(&files));
        let e = refused(&c, "localhost", broker.port).await;
        assert_missing_certificate_named(&e, "TLS 1.3 without a client certificate");
    }
    broker
        .wait_for_log("peer did not return a certificate", STEP)
        .await;
}

/// What the handshake learned (the server asked for a certificate, we had
/// none) stays with the stream: the read that fails before CONNACK says
/// so, and the event loop logs it. Current thread, for the capturing
/// subscriber (see section 6).
#[tokio::test]
async fn a_missing_client_certificate_is_named_in_the_log() {
    let broker = mutual_tls_broker();
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let c = client("tls-no-cert-log", ProtocolVersion::V5);
    c.tls_set(trust_ca(&ClientFiles::new()));
    let e = refused(&c, "localhost", broker.port).await;
    assert_missing_certificate_named(&e, "TLS 1.3 without a client certificate");
    let text = capture.text();
    let warning = text
        .lines()
        .find(|l| l.starts_with("WARN") && l.contains("before CONNACK"))
        .unwrap_or_else(|| panic!("no warning about the failed connection:\n{text}"));
    assert!(
        warning.contains("asked for a client certificate and none was configured"),
        "{warning}"
    );
}

/// A broker that refused the certificate we presented closes the
/// connection before CONNACK, which is all the client can see.
fn assert_closed_before_connack(e: &ClientError, what: &str) {
    assert!(
        matches!(
            e,
            ClientError::ConnectionClosed(CloseReason::ConnectionLost)
        ),
        "{what}: expected the connection to close before CONNACK, got {e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_certificate_from_another_ca_is_refused() {
    let broker = mutual_tls_broker();
    let files = ClientFiles::new();
    let c = client("tls-intruder", ProtocolVersion::V5);
    c.tls_set(
        trust_ca(&files)
            .client_cert_files(files.path("intruder.crt"), files.path("intruder.key"))
            .unwrap(),
    );
    let e = refused(&c, "localhost", broker.port).await;
    assert_closed_before_connack(&e, "TLS 1.3 with a certificate from another CA");
    broker.wait_for_log("certificate verify failed", STEP).await;
}

/// A TLS 1.2-only rustls config, trusting our CA, from the re-exported
/// rustls: in TLS 1.2 the server's verdict on our certificate comes
/// before the handshake completes, so it is a handshake error.
fn tls12_only(with_cert: bool) -> TlsOptions {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pki().ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots);
    let config = builder.with_no_client_auth();
    let options = TlsOptions::from_rustls_config(Arc::new(config));
    if with_cert {
        options
            .client_cert_pem(
                pki().client_other_ca.cert.as_bytes(),
                pki().client_other_ca.key.as_bytes(),
            )
            .unwrap()
    } else {
        options
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refusals_during_a_tls12_handshake_say_why() {
    let broker = mutual_tls_broker();
    let c = client("tls12-no-cert", ProtocolVersion::V311);
    c.tls_set(tls12_only(false));
    match refused(&c, "localhost", broker.port).await {
        ClientError::Transport(TransportError::Tls(message)) => {
            assert!(
                message.contains("requires a client certificate and none was configured"),
                "{message}"
            );
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    let c = client("tls12-intruder", ProtocolVersion::V311);
    c.tls_set(tls12_only(true));
    match refused(&c, "localhost", broker.port).await {
        ClientError::Transport(TransportError::Tls(message)) => {
            assert!(
                message.contains("rejected our client certificate"),
                "{message}"
            );
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_up_front() {
    let p = pki();
    let err = TlsOptions::new()
        .client_cert_pem(p.client.cert.as_bytes(), p.client_other_ca.key.as_bytes())
        .unwrap_err();
    assert!(
        matches!(&err, TlsError::InvalidPrivateKey { reason, .. } if reason.contains("does not belong")),
        "{err:?}"
    );
    let err = TlsOptions::new()
        .client_cert_pem(p.client.cert.as_bytes(), p.client.cert.as_bytes())
        .unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
    let err = TlsOptions::new()
        .client_cert_pem(p.client.key.as_bytes(), p.client.key.as_bytes())
        .unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------
// 5. User name and password over TLS.

both_versions!(password_over_tls);

async fn password_over_tls(version: ProtocolVersion) {
    let broker = tls_broker_with(
        &pki().server,
        "allow_anonymous false\npassword_file {dir}/passwords\n",
        |dir| {
            password_file(dir, "alice", "tls secret");
        },
    );
    let files = ClientFiles::new();

    let c = client("tls-password", version);
    c.tls_set(trust_ca(&files));
    c.username_pw_set("alice", Some("tls secret")).unwrap();
    within("connect", STEP, c.connect("localhost", broker.port, 30))
        .await
        .expect("the right password over TLS");
    round_trip(&c, "tls/password").await;
    let _ = within("disconnect", STEP, c.disconnect()).await;

    let c = client("tls-wrong-password", version);
    c.tls_set(trust_ca(&files));
    c.username_pw_set("alice", Some("wrong")).unwrap();
    match refused(&c, "localhost", broker.port).await {
        ClientError::ConnectionRefused { reason, .. } => {
            // mosquitto 2.0 says "not authorised" for a wrong password
            // (3.1.1 return code 5, 5.0 reason 0x87).
            assert_eq!(reason, ConnectReasonCode::NotAuthorized, "{version:?}");
        }
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 6. Verification off.

/// A `tracing` subscriber that writes every event and span field into a
/// shared string, so a test can read what plover logged (tracing-subscriber
/// is not a dependency; this is all the tests need of it).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Capture {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    fn append(&self, level: &tracing::Level, target: &str, record: impl FnOnce(&mut Fields<'_>)) {
        let mut line = String::new();
        let _ = write!(line, "{level} {target}:");
        record(&mut Fields(&mut line));
        line.push('\n');
        self.0.lock().unwrap().push_str(&line);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let meta = span.metadata();
        self.append(meta.level(), meta.target(), |f| span.record(f));
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.append(&tracing::Level::TRACE, "span", |f| values.record(f));
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        self.append(meta.level(), meta.target(), |f| event.record(f));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// A current-thread runtime: the capturing subscriber is this thread's
// default, and every task of the test (the event loop's too) runs here.
#[tokio::test]
async fn disabled_verification_connects_and_warns_every_time() {
    let broker = anonymous_tls_broker(&pki().server_other_ca);
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let insecure = TlsOptions::new().dangerous_disable_verification();
    for round in 1..=2 {
        let c = client("tls-insecure", ProtocolVersion::V5);
        c.tls_set(insecure.clone());
        // Even by IP address with a certificate from an unknown CA.
        within(
            "insecure connect",
            STEP,
            c.connect("127.0.0.1", broker.port, 30),
        )
        .await
        .expect("no verification: any certificate is accepted");
        round_trip(&c, "tls/insecure").await;
        within("disconnect", STEP, c.disconnect()).await.unwrap();
        let warnings = capture
            .text()
            .lines()
            .filter(|l| l.starts_with("WARN") && l.contains("verification is disabled"))
            .count();
        assert_eq!(
            warnings,
            round,
            "one warning per connect:\n{}",
            capture.text()
        );
    }
    // And without it, the same server is refused.
    let c = client("tls-secure", ProtocolVersion::V5);
    c.tls_set(trust_ca(&ClientFiles::new()));
    assert!(matches!(
        refused(&c, "127.0.0.1", broker.port).await,
        ClientError::Transport(TransportError::UntrustedCertificate(_))
    ));
}

/// mosquitto's `--insecure`: a certificate for another name passes when a
/// trusted CA signed it; one from an unknown CA is still refused. Current
/// thread, for the capturing subscriber (see above).
#[tokio::test]
async fn skipping_the_host_name_check_still_needs_a_trusted_ca() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let files = ClientFiles::new();
    let lenient = trust_ca(&files).dangerous_skip_hostname_verification();

    // Signed by our CA, for `localhost` only, reached as 127.0.0.1.
    let broker = anonymous_tls_broker(&pki().server_name_only);
    let c = client("tls-any-name", ProtocolVersion::V5);
    c.tls_set(lenient.clone());
    within(
        "connect without the name check",
        STEP,
        c.connect("127.0.0.1", broker.port, 30),
    )
    .await
    .unwrap_or_else(|e| panic!("a trusted certificate for another name: {e}"));
    round_trip(&c, "tls/any-name").await;
    within("disconnect", STEP, c.disconnect()).await.unwrap();
    assert!(
        capture
            .text()
            .lines()
            .any(|l| l.starts_with("WARN") && l.contains("host name verification is disabled")),
        "a warning at connect:\n{}",
        capture.text()
    );

    // Signed by a CA nobody here trusts, by name and by address: refused
    // as before, with or without the Mozilla roots.
    let broker = anonymous_tls_broker(&pki().server_other_ca);
    let mozilla = TlsOptions::new().dangerous_skip_hostname_verification();
    for (what, options) in [("our CA", &lenient), ("the Mozilla roots", &mozilla)] {
        for host in ["localhost", "127.0.0.1"] {
            let c = client("tls-any-name-untrusted", ProtocolVersion::V311);
            c.tls_set(options.clone());
            match refused(&c, host, broker.port).await {
                ClientError::Transport(TransportError::UntrustedCertificate(why)) => {
                    assert_eq!(why, "UnknownIssuer", "{what}, {host}");
                }
                other => panic!("{what}, {host}: expected UntrustedCertificate, got {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 7. URLs and timeouts.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_url_with_credentials_and_our_ca() {
    let broker = tls_broker_with(
        &pki().server,
        "allow_anonymous false\npassword_file {dir}/passwords\n",
        |dir| {
            password_file(dir, "bob", "url pass");
        },
    );
    let files = ClientFiles::new();
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let c = client("tls-url", version);
        c.tls_set(trust_ca(&files));
        within(
            "connect_url",
            STEP,
            c.connect_url(
                &format!("mqtts://bob:url%20pass@localhost:{}", broker.port),
                30,
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{version:?}: {e}\n{}", broker.log()));
        round_trip(&c, "tls/url").await;
        let _ = within("disconnect", STEP, c.disconnect()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_the_handshake_times_out() {
    // Accepts TCP connections and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let c = Client::builder(client_id("tls-silent"))
        .automatic_reconnect(false)
        .connect_timeout(Duration::from_secs(1))
        .build();
    c.tls_set(TlsOptions::new());
    let started = Instant::now();
    let e = within(
        "a handshake that times out",
        STEP,
        c.connect("127.0.0.1", port, 30),
    )
    .await
    .expect_err("nobody answers");
    let took = started.elapsed();
    match e {
        ClientError::Transport(TransportError::TlsHandshakeTimeout { host }) => {
            assert_eq!(host, "127.0.0.1");
        }
        other => panic!("expected TlsHandshakeTimeout, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plain_listener_says_so() {
    let broker = Broker::start();
    let c = client("tls-to-plain", ProtocolVersion::V311);
    c.tls_set(TlsOptions::new());
    match refused(&c, "127.0.0.1", broker.port).await {
        // mosquitto reads our ClientHello as a malformed CONNECT and hangs
        // up.
        ClientError::Transport(TransportError::Tls(message)) => {
            assert!(message.contains("does this port speak TLS?"), "{message}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn unreadable_and_malformed_files_are_reported_with_their_path() {
    let dir = TempDir::new("tls-bad-files");
    let missing = dir.path().join("missing.pem");
    match TlsOptions::new().ca_file(&missing) {
        Err(TlsError::ReadFile { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    let empty = write(dir.path(), "empty.pem", "");
    let err = TlsOptions::new().ca_file(&empty).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("no certificate found in {empty}"));
    // The error reaches connect's callers as a transport error.
    let err = TransportError::from(err);
    assert!(matches!(err, TransportError::TlsConfig(_)));
}

// ---------------------------------------------------------------------------
// 8. Secrets stay secret.

#[tokio::test]
async fn the_password_and_key_never_show() {
    const PASSWORD: &str = "hunter2-very-secret";
    let broker = tls_broker_with(
        &pki().server,
        "allow_anonymous false\npassword_file {dir}/passwords\n",
        |dir| {
            password_file(dir, "carol", PASSWORD);
        },
    );
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let files = ClientFiles::new();
    let options = trust_ca(&files)
        .client_cert_files(files.path("client.crt"), files.path("client.key"))
        .unwrap();
    // The private key's base64 body, to look for.
    let key_body: String = pki()
        .client
        .key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut shown = vec![format!("{options:?}")];

    let c = client("tls-secret", ProtocolVersion::V5);
    c.tls_set(options.clone());
    c.username_pw_set("carol", Some(PASSWORD)).unwrap();
    shown.push(format!("{c:?}"));
    within("connect", STEP, c.connect("localhost", broker.port, 30))
        .await
        .expect("the right password");
    shown.push(format!("{c:?}"));
    round_trip(&c, "tls/secret").await;
    within("disconnect", STEP, c.disconnect()).await.unwrap();

    // A refusal's error, Debug and Display, and one through a URL.
    let c = client("tls-secret-wrong", ProtocolVersion::V311);
    c.tls_set(options);
    let e = within(
        "connect_url",
        STEP,
        c.connect_url(
            &format!("mqtts://carol:{PASSWORD}x@localhost:{}", broker.port),
            30,
        ),
    )
    .await
    .expect_err("a wrong password");
    shown.push(format!("{e:?} {e}"));
    shown.push(format!("{c:?}"));
    let url: plover::transport::BrokerUrl = format!("mqtts://carol:{PASSWORD}@localhost")
        .parse()
        .unwrap();
    shown.push(format!("{url:?} {url}"));
    shown.push(capture.text());

    for text in &shown {
        assert!(!text.contains(PASSWORD), "the password shows in: {text}");
        assert!(!text.contains(&key_body[..40]), "the key shows in: {text}");
    }
    // The capture did see the connection (so its silence means something).
    assert!(!capture.text().is_empty());
}
