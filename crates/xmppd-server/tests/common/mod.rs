//! Test harness: runs the real `xmppd` binary on free ports in a temporary
//! data directory, and drives it with a raw XML client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

/// Path of the binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xmppd"))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running server. Killed on drop.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub starttls_port: u16,
    pub direct_tls_port: u16,
    child: Option<Child>,
}

pub const PASSWORD: &str = "pencil-Π-42";

impl TestServer {
    /// Starts a server with `extra` TOML appended to the `[c2s]` table, and
    /// the given accounts (all with [`PASSWORD`]).
    pub fn start(c2s_extra: &str, users: &[&str]) -> TestServer {
        TestServer::start_with_server(c2s_extra, "", users)
    }

    /// Like [`TestServer::start`], with `server_extra` TOML appended to the
    /// `[server]` table (e.g. `admins = [...]`).
    pub fn start_with_server(c2s_extra: &str, server_extra: &str, users: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let starttls_port = free_port();
        let direct_tls_port = free_port();
        let config = dir.path().join("xmppd.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
hosts = ["localhost", "example.test"]
data_dir = "{data}"
shutdown_grace_secs = 2
{server_extra}

[listen]
c2s = ["127.0.0.1:{starttls_port}"]
c2s_direct_tls = ["127.0.0.1:{direct_tls_port}"]

[log]
level = "info"

[c2s]
{c2s_extra}
"#,
                data = dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut server = TestServer { dir, config, starttls_port, direct_tls_port, child: None };
        if !users.is_empty() {
            let lines: String =
                users
                    .iter()
                    .map(|u| {
                        if u.contains('@') {
                            format!("{u} {PASSWORD}\n")
                        } else {
                            format!("{u}@localhost {PASSWORD}\n")
                        }
                    })
                    .collect();
            server.cli_stdin(&["user", "import"], &lines).expect("user import");
        }
        server.spawn();
        server
    }

    /// Starts a server with whole TOML `tables` (e.g.
    /// `[modules.settings.vcard]`) appended to the configuration.
    pub fn start_with_tables(tables: &str, users: &[&str]) -> TestServer {
        // The `[c2s]` extra text comes last in the file, so tables after it
        // are top-level tables of their own.
        TestServer::start(&format!("\n{tables}"), users)
    }

    fn spawn(&mut self) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("server.log")).unwrap();
        let child = Command::new(binary())
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    /// Stops the server with SIGTERM and starts it again on the same data.
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(status.success(), "exit status {status}");
        self.spawn();
    }

    /// Runs a CLI subcommand with `input` on standard input.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Result<String, String> {
        use std::io::Write as _;
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if output.status.success() { Ok(text) } else { Err(text) }
    }

    /// Runs a CLI subcommand against this server's config.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(binary()).arg("--config").arg(&self.config).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if output.status.success() { Ok(text) } else { Err(text) }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("xmppd exited early ({status}): {}", self.log());
            }
            let ready = std::net::TcpStream::connect(("127.0.0.1", self.starttls_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", self.direct_tls_port)).is_ok();
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("xmppd did not start listening: {}", self.log());
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        wait_for_exit(&mut child, Duration::from_secs(15)).unwrap_or_else(|| {
            child.kill().ok();
            panic!("xmppd did not exit after SIGTERM");
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// The exit status of `child` once it exits, or `None` if it still runs
/// after `limit`.
pub fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The opening of a client stream to `to`.
pub fn header(to: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>"
    )
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

/// A raw XML-over-TCP client.
pub struct RawClient {
    io: Io,
    /// Everything received since the last `take`.
    pub received: String,
    pub closed: bool,
    /// The last SCRAM server-first-message seen.
    pub server_first: String,
}

impl RawClient {
    pub async fn connect(port: u16) -> RawClient {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        RawClient { io: Io::Plain(tcp), received: String::new(), closed: false, server_first: String::new() }
    }

    pub async fn connect_direct_tls(port: u16) -> RawClient {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let tls = tls_connector(Some(b"xmpp-client")).connect("localhost".try_into().unwrap(), tcp).await.unwrap();
        RawClient { io: Io::Tls(Box::new(tls)), received: String::new(), closed: false, server_first: String::new() }
    }

    pub async fn send(&mut self, data: impl AsRef<[u8]>) {
        let result = match &mut self.io {
            Io::Plain(s) => s.write_all(data.as_ref()).await,
            Io::Tls(s) => match s.write_all(data.as_ref()).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            },
            Io::Gone => Err(io::Error::other("gone")),
        };
        if result.is_err() {
            self.closed = true;
        }
    }

    async fn read_some(&mut self, limit: Duration) -> bool {
        let mut buf = vec![0u8; 16384];
        let read = match &mut self.io {
            Io::Plain(s) => tokio::time::timeout(limit, s.read(&mut buf)).await,
            Io::Tls(s) => tokio::time::timeout(limit, s.read(&mut buf)).await,
            Io::Gone => return false,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.closed = true;
                false
            }
            Ok(Ok(n)) => {
                self.received.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
            Err(_) => false,
        }
    }

    /// Reads until `needle` has been received; panics on timeout.
    pub async fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.received.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.read_some(left).await && self.closed) {
                break;
            }
        }
        assert!(self.received.contains(needle), "expected {needle:?}, got {:?}", self.received);
        let end = self.received.find(needle).unwrap() + needle.len();
        let taken: String = self.received.drain(..end).collect();
        taken
    }

    /// Reads until the server closes the connection (or 10 s pass).
    pub async fn read_until_closed(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.closed && Instant::now() < deadline {
            self.read_some(deadline.saturating_duration_since(Instant::now())).await;
        }
        std::mem::take(&mut self.received)
    }

    /// Reads whatever arrives within `limit`.
    pub async fn read_for(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while !self.closed && Instant::now() < deadline {
            self.read_some(deadline.saturating_duration_since(Instant::now())).await;
        }
        std::mem::take(&mut self.received)
    }

    /// Sends one IQ (`to` omitted when `None`) and returns everything
    /// received up to the end of its reply, the reply included.
    pub async fn iq(&mut self, kind: &str, id: &str, to: Option<&str>, payload: &str) -> String {
        let to = to.map(|to| format!(" to='{to}'")).unwrap_or_default();
        self.send(format!("<iq type='{kind}' id='{id}'{to}>{payload}</iq>")).await;
        let mut reply = self.expect(&format!("id='{id}'")).await;
        reply.push_str(&self.expect(">").await);
        if !reply.ends_with("/>") {
            reply.push_str(&self.expect("</iq>").await);
        }
        reply
    }

    /// Upgrades the connection after `<proceed/>`.
    pub async fn start_tls(&mut self) {
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else { panic!("not plain") };
        let tls = tls_connector(None).connect("localhost".try_into().unwrap(), tcp).await.unwrap();
        self.io = Io::Tls(Box::new(tls));
    }

    /// tls-exporter channel binding of the current TLS session.
    pub fn tls_exporter(&self) -> Vec<u8> {
        let Io::Tls(tls) = &self.io else { panic!("not TLS") };
        tls.get_ref().1.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None).unwrap().to_vec()
    }

    /// Opens a stream, negotiates STARTTLS (when not already on TLS).
    pub async fn open_secure(&mut self, domain: &str) {
        self.send(header(domain)).await;
        if matches!(self.io, Io::Plain(_)) {
            self.expect("</stream:features>").await;
            self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await;
            self.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await;
            self.start_tls().await;
            self.send(header(domain)).await;
        }
        self.expect("</stream:features>").await;
    }

    /// Full login: STARTTLS (if needed), SCRAM-SHA-256, bind. Returns the
    /// bound full JID.
    pub async fn login(&mut self, user: &str, domain: &str, resource: Option<&str>) -> String {
        self.login_with(user, PASSWORD, domain, resource).await
    }

    /// [`RawClient::login`] with another password (SCRAM-SHA-256 over
    /// STARTTLS); panics unless the server answers `<success/>`.
    pub async fn login_with(&mut self, user: &str, password: &str, domain: &str, resource: Option<&str>) -> String {
        self.open_secure(domain).await;
        self.scram_sha256(user, password).await;
        let outcome = self.expect("</success>").await;
        assert!(outcome.contains("<success"), "{user}: {outcome}");
        self.send(header(domain)).await;
        self.expect("</stream:features>").await;
        self.bind(resource).await
    }

    pub async fn bind(&mut self, resource: Option<&str>) -> String {
        let resource = resource.map(|r| format!("<resource>{r}</resource>")).unwrap_or_default();
        self.send(format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{resource}</bind></iq>"
        ))
        .await;
        let reply = self.expect("</iq>").await;
        let start = reply.find("<jid>").expect("bind result") + 5;
        let end = reply.find("</jid>").unwrap();
        reply[start..end].to_owned()
    }

    /// Runs SCRAM-SHA-256 (RFC 7677) up to the server's outcome (not read).
    pub async fn scram_sha256(&mut self, user: &str, password: &str) {
        self.scram_sha256_with(user, password, None).await;
    }

    /// SCRAM-SHA-256-PLUS with `tls-exporter` channel binding (RFC 9266),
    /// using the exporter value this client computed for its TLS session.
    pub async fn scram_sha256_plus(&mut self, user: &str, password: &str) {
        let exporter = self.tls_exporter();
        self.scram_sha256_with(user, password, Some(exporter)).await;
    }

    /// SCRAM-SHA-256-PLUS with the given `tls-exporter` value.
    pub async fn scram_sha256_with_binding(&mut self, user: &str, password: &str, exporter: Vec<u8>) {
        self.scram_sha256_with(user, password, Some(exporter)).await;
    }

    async fn scram_sha256_with(&mut self, user: &str, password: &str, exporter: Option<Vec<u8>>) {
        let client_nonce = "rOprNGfwEbeRWgbNEkqO";
        let first_bare = format!("n={user},r={client_nonce}");
        let (mechanism, gs2_header) =
            if exporter.is_some() { ("SCRAM-SHA-256-PLUS", "p=tls-exporter,,") } else { ("SCRAM-SHA-256", "n,,") };
        let first = format!("{gs2_header}{first_bare}");
        self.send(format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{}</auth>",
            b64(first.as_bytes())
        ))
        .await;
        let challenge = self.expect("</challenge>").await;
        let open = challenge.find("<challenge").expect("a challenge");
        let start = open + challenge[open..].find('>').unwrap() + 1;
        let server_first = String::from_utf8(unb64(&challenge[start..challenge.len() - "</challenge>".len()])).unwrap();
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0u32;
        for attr in server_first.split(',') {
            match attr.split_at(2) {
                ("r=", v) => nonce = v,
                ("s=", v) => salt = unb64(v),
                ("i=", v) => iterations = v.parse().unwrap(),
                _ => {}
            }
        }
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac256(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let mut binding = gs2_header.as_bytes().to_vec();
        binding.extend_from_slice(exporter.as_deref().unwrap_or_default());
        let without_proof = format!("c={},r={nonce}", b64(&binding));
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let signature = hmac256(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(signature.iter()).map(|(a, b)| a ^ b).collect();
        let final_message = format!("{without_proof},p={}", b64(&proof));
        self.server_first = server_first.clone();
        self.send(format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            b64(final_message.as_bytes())
        ))
        .await;
    }
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn unb64(data: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(data.trim()).unwrap()
}

/// A TLS connector that accepts the server's self-signed certificate.
fn tls_connector(alpn: Option<&[u8]>) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    if let Some(alpn) = alpn {
        config.alpn_protocols = vec![alpn.to_vec()];
    }
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Python with slixmpp, or `None` (with a message) when unavailable.
/// With `XMPPD_REQUIRE_SERVICES=1` a missing interpreter fails the test.
pub fn slixmpp_python() -> Option<PathBuf> {
    let candidate = std::env::var_os("XMPPD_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let works = Command::new(&candidate).args(["-c", "import slixmpp"]).output().is_ok_and(|o| o.status.success());
    if works {
        return Some(candidate);
    }
    if std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!(
            "slixmpp is required (XMPPD_REQUIRE_SERVICES=1) but {} cannot import it; run ./test.sh",
            candidate.display()
        );
    }
    eprintln!("SKIP: slixmpp not available at {} (run ./test.sh to set up the venv)", candidate.display());
    None
}

/// The path of `tests/interop/<name>`.
pub fn interop_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop").join(name)
}

/// Runs the interop script `tests/interop/<script>` with `args` under the
/// slixmpp Python; returns its standard output, or `None` when slixmpp is
/// unavailable (the test then skips). Fails the test, naming `what`, with
/// the script's output and the server log when the script fails.
pub fn run_interop_script(server: &TestServer, script: &str, args: &[&str], what: &str) -> Option<String> {
    let python = slixmpp_python()?;
    let output = Command::new(python).arg(interop_script(script)).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{stderr}\nserver log:\n{}", server.log());
    Some(stdout)
}
