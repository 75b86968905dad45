//! Smoke test: the real `xmppd-bench` binary against the real `xmppd`
//! binary on loopback, a few seconds per scenario.
//!
//! `xmppd` is a binary of another package, which cargo builds only when
//! that package is part of the build: run `cargo test --workspace`, or
//! `cargo test -p xmppd-server -p xmppd-bench`, or build it first with
//! `cargo build -p xmppd-server`. `XMPPD_BIN` overrides the path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ACCOUNTS: u32 = 20;
const PASSWORD: &str = "bench-password";
/// Users of the fanout scenario, bench0.. (fewer than [`ACCOUNTS`]).
const FANOUT_USERS: u32 = 6;
/// Members per fanout roster group: each has the other two as contacts.
const FANOUT_GROUP: u32 = 3;

fn bench_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xmppd-bench"))
}

/// The `xmppd` binary of the same build profile, next to ours.
fn xmppd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("XMPPD_BIN") {
        return PathBuf::from(path);
    }
    let path = bench_binary().with_file_name("xmppd");
    assert!(
        path.exists(),
        "{} does not exist: the smoke test needs the xmppd server binary. Build it with \
         `cargo build -p xmppd-server` (same profile), or run `cargo test --workspace` / \
         `cargo test -p xmppd-server -p xmppd-bench`, or point XMPPD_BIN at it.",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `xmppd {what} import` with `lines` on standard input.
fn import(config: &std::path::Path, what: &str, lines: &str) {
    let mut import = Command::new(xmppd_binary())
        .arg("--config")
        .arg(config)
        .args([what, "import"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let output = import.wait_with_output().unwrap();
    assert!(output.status.success(), "{what} import: {}", String::from_utf8_lossy(&output.stderr));
}

/// A running xmppd with accounts bench0..bench19, and rosters for the
/// fanout scenario (see [`FANOUT_USERS`]). Killed on drop.
struct Server {
    dir: tempfile::TempDir,
    starttls_port: u16,
    direct_tls_port: u16,
    child: Option<Child>,
}

impl Server {
    fn start() -> Server {
        Server::start_with("")
    }

    /// Like [`Server::start`], with `extra` appended to the configuration.
    fn start_with(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (starttls_port, direct_tls_port) = (free_port(), free_port());
        let config = dir.path().join("xmppd.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nhosts = [\"localhost\"]\ndata_dir = \"{}\"\nshutdown_grace_secs = 1\n\n\
                 [listen]\nc2s = [\"127.0.0.1:{starttls_port}\"]\nc2s_direct_tls = [\"127.0.0.1:{direct_tls_port}\"]\n\n\
                 [log]\nlevel = \"warn\"\n\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let lines: String = (0..ACCOUNTS).map(|i| format!("bench{i}@localhost {PASSWORD}\n")).collect();
        import(&config, "user", &lines);
        // The fanout rosters: bench0..bench5 in groups of 3, each member
        // with the other two (subscription both by default).
        let lines: String = (0..FANOUT_USERS)
            .flat_map(|user| {
                let start = user / FANOUT_GROUP * FANOUT_GROUP;
                (start..start + FANOUT_GROUP)
                    .filter(move |contact| *contact != user)
                    .map(move |contact| format!("bench{user}@localhost bench{contact}@localhost\n"))
            })
            .collect();
        import(&config, "roster", &lines);

        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(xmppd_binary())
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Server { dir, starttls_port, direct_tls_port, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("xmppd exited early ({status}): {}", server.log());
            }
            let up = [starttls_port, direct_tls_port]
                .iter()
                .all(|port| std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if up {
                return server;
            }
            assert!(Instant::now() < deadline, "xmppd did not start: {}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// Runs the bench against the STARTTLS port; returns the exit code, the
/// parsed JSON line and stderr.
fn bench(server: &Server, args: &[&str]) -> (i32, Value, String) {
    bench_on(server, server.starttls_port, args)
}

/// Runs the bench against `port`.
fn bench_on(server: &Server, port: u16, args: &[&str]) -> (i32, Value, String) {
    let output = Command::new(bench_binary())
        .args(args)
        .args(["--port", &port.to_string(), "--server-pid", &server.pid().to_string()])
        .args(["--label", "xmppd", "--max-seconds", "30"])
        .env("XMPPD_BENCH_PASSWORD", PASSWORD)
        .env("XMPPD_BENCH_CONNECT_CONCURRENCY", "10")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one JSON line expected on stdout, got {stdout:?}; stderr: {stderr}");
    let json: Value = serde_json::from_str(lines[0]).unwrap();
    (output.status.code().unwrap_or(-1), json, stderr)
}

fn number(json: &Value, key: &str) -> f64 {
    json[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {json}"))
}

fn assert_ok(code: i32, json: &Value, stderr: &str, server: &Server) {
    assert_eq!(code, 0, "json: {json}\nstderr: {stderr}\nserver log: {}", server.log());
    assert_eq!(json["ok"], true, "{json}");
    assert_eq!(json["error"], Value::Null, "{json}");
    assert_eq!(json["errors"], 0, "{json}");
    assert_eq!(json["label"], "xmppd");
    assert!(number(json, "server_rss_before_kb") > 0.0, "{json}");
    assert!(stderr.contains(": ok"), "human summary missing: {stderr}");
}

#[test]
fn scenarios_against_xmppd() {
    let server = Server::start();

    // idle: every session is up and RSS per session is reported.
    let json_out = server.dir.path().join("results.jsonl");
    let json_out_arg = json_out.to_str().unwrap();
    let (code, json, stderr) =
        bench(&server, &["idle", "--sessions", "20", "--hold-seconds", "0.5", "--json-out", json_out_arg]);
    assert_ok(code, &json, &stderr, &server);
    assert_eq!(json["scenario"], "idle");
    assert_eq!(json["sessions_up"], 20, "{json}");
    assert!(json["rss_per_session_kb"].is_number(), "{json}");
    assert!(number(&json, "server_rss_after_kb") > 0.0);
    let appended = std::fs::read_to_string(&json_out).unwrap();
    let appended: Value = serde_json::from_str(appended.trim()).unwrap();
    assert_eq!(appended, json, "--json-out appends the same line");

    // login: all logins complete, CPU per login is measured.
    let (code, json, stderr) = bench(&server, &["login", "--logins", "30", "--concurrency", "5", "--accounts", "10"]);
    assert_ok(code, &json, &stderr, &server);
    assert_eq!(json["completed"], 30, "{json}");
    assert!(number(&json, "cpu_ms_per_login") > 0.0, "{json}");
    assert!(number(&json, "logins_per_s") > 0.0, "{json}");
    assert!(number(&json, "p99_ms") >= number(&json, "p50_ms"), "{json}");

    // msg at a fixed rate: the offered load is sent and all of it arrives.
    let (code, json, stderr) = bench(&server, &["msg", "--pairs", "10", "--rate", "100", "--duration", "2"]);
    assert_ok(code, &json, &stderr, &server);
    let (sent, delivered) = (number(&json, "sent"), number(&json, "delivered"));
    assert!((150.0..=230.0).contains(&sent), "about 2 s × 100/s expected: {json}");
    assert_eq!(sent, delivered, "{json}");
    assert_eq!(json["lost"], 0);
    assert!((50.0..=150.0).contains(&number(&json, "throughput")), "{json}");
    assert!(number(&json, "p999_ms") >= number(&json, "p50_ms") && number(&json, "p50_ms") > 0.0, "{json}");
    assert!(number(&json, "cpu_s_per_1k") > 0.0, "{json}");

    // msg at saturation over direct TLS with SCRAM-SHA-256.
    let (code, json, stderr) = bench_on(
        &server,
        server.direct_tls_port,
        &[
            "msg",
            "--pairs",
            "5",
            "--rate",
            "0",
            "--duration",
            "1",
            "--window",
            "4",
            "--mechanism",
            "SCRAM-SHA-256",
            "--tls",
            "direct",
        ],
    );
    assert_ok(code, &json, &stderr, &server);
    assert_eq!(
        (json["tls"].as_str(), json["mechanism"].as_str(), json["window"].as_u64()),
        (Some("direct"), Some("SCRAM-SHA-256"), Some(4))
    );
    assert!(number(&json, "delivered") > 50.0, "{json}");
    assert_eq!(json["lost"], 0, "{json}");

    // A wrong password is a setup failure with the SASL condition.
    let output = Command::new(bench_binary())
        .args(["login", "--logins", "2", "--concurrency", "1", "--accounts", "1", "--password", "wrong"])
        .args(["--port", &server.starttls_port.to_string(), "--max-seconds", "20"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert!(json["error"].as_str().unwrap().contains("not-authorized"), "{json}");

    // fanout: bench0..bench5 in groups of 3 with each other in their
    // rosters (provisioned with `xmppd roster import`); every user sees its
    // contacts online, then presence updates reach them.
    let (users, contacts) = (FANOUT_USERS.to_string(), (FANOUT_GROUP - 1).to_string());
    let (code, json, stderr) = bench(
        &server,
        &["fanout", "--users", &users, "--contacts", &contacts, "--user-prefix", "bench", "--duration", "1"],
    );
    assert_ok(code, &json, &stderr, &server);
    assert_eq!(json["scenario"], "fanout");
    assert_eq!((json["users"].as_u64(), json["contacts"].as_u64()), (Some(6), Some(2)), "{json}");
    let (sent, delivered) = (number(&json, "sent"), number(&json, "delivered"));
    assert!(sent > 0.0 && delivered > 0.0, "{json}");
    // Each update goes to the sender's two contacts; the drain waits for
    // all of them.
    assert!(delivered <= 2.0 * sent, "{json}");
    assert!(number(&json, "deliveries_per_s") > 0.0, "{json}");
    assert!(number(&json, "p99_ms") >= number(&json, "p50_ms"), "{json}");
    assert!(number(&json, "cpu_s_per_1k") > 0.0, "{json}");
}

/// offline: bench0..bench1 send to bench2..bench5 while they are offline;
/// the messages are stored (XEP-0160) and read back with `<delay/>`. With
/// a quota of 5 per user, 8 per recipient is refused with
/// resource-constraint, and the next run drains what that one left.
#[test]
fn offline_storage_against_xmppd() {
    let server = Server::start_with("[modules.settings.offline]\nmax_messages_per_user = 5\n");
    let offline = |per_recipient: &str| {
        let args = ["offline", "--senders", "2", "--recipients", "4", "--per-recipient", per_recipient];
        bench(&server, &[&args[..], &["--concurrency", "3"]].concat())
    };

    let (code, json, stderr) = offline("5");
    assert_ok(code, &json, &stderr, &server);
    assert_eq!(json["scenario"], "offline");
    for (key, value) in
        [("sent", 20), ("stored", 20), ("bounced", 0), ("delivered", 20), ("without_delay", 0), ("unexpected", 0)]
    {
        assert_eq!(json[key], value, "{key}: {json}");
    }
    for key in ["store_msgs_per_s", "store_cpu_s_per_1k", "read_msgs_per_s", "read_cpu_s_per_1k"] {
        assert!(number(&json, key) > 0.0, "{key}: {json}");
    }
    assert!(number(&json, "baseline_login_cpu_ms") > 0.0, "{json}");
    assert!(json["read_net_cpu_s_per_1k"].is_number(), "{json}");
    assert!(stderr.contains("store: 20 of 20") && stderr.contains("read: 20 delivered"), "{stderr}");

    // Over the quota: 5 of 8 stored per recipient, 3 refused; a failure
    // that says why.
    let (code, json, stderr) = offline("8");
    assert_eq!(code, 1, "{json}\n{stderr}");
    assert_eq!(json["ok"], false);
    assert_eq!((json["stored"].as_u64(), json["bounced"].as_u64()), (Some(20), Some(12)), "{json}");
    assert!(json["error"].as_str().unwrap().contains("resource-constraint"), "{json}");
    assert!(json.get("delivered").is_none(), "no read phase after a refusal: {json}");

    // The 20 messages left behind are drained, not counted.
    let (code, json, stderr) = offline("5");
    assert_ok(code, &json, &stderr, &server);
    assert_eq!((json["stale"].as_u64(), json["delivered"].as_u64()), (Some(20), Some(20)), "{json}");
}

/// Non-loopback targets are refused before any connection (exit 2).
#[test]
fn refuses_targets_off_loopback() {
    for host in ["10.0.0.1", "192.168.1.10", "0.0.0.0"] {
        let output =
            Command::new(bench_binary()).args(["idle", "--host", host, "--max-seconds", "5"]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{host}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("only loopback targets"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
    let output = Command::new(bench_binary())
        .args(["idle", "--max-seconds", "5"])
        .env("XMPPD_BENCH_HOST", "8.8.8.8")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "the environment variable is checked too");
}
