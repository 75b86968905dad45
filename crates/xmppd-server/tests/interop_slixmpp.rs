//! Interop: the real slixmpp client (from PyPI) against the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{PASSWORD, TestServer, slixmpp_python};

fn run_slixmpp(server: &TestServer, port: u16, mode: &str, mechanism: &str) {
    let Some(python) = slixmpp_python() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/slixmpp_chat.py");
    let output = Command::new(python)
        .arg(script)
        .args([&port.to_string(), mode, mechanism, "alice@localhost", "bob@localhost", PASSWORD])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "slixmpp ({mode}, {mechanism}) failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    // The mechanism actually used is the one requested.
    assert!(stdout.contains(&format!("authenticated with {mechanism}")), "{stdout}");
    assert!(stdout.contains("client-to-client ping ok"), "{stdout}");
}

#[test]
fn slixmpp_starttls_scram_sha256() {
    let server = TestServer::start("", &["alice", "bob"]);
    run_slixmpp(&server, server.starttls_port, "starttls", "SCRAM-SHA-256");
}

#[test]
fn slixmpp_direct_tls_scram_sha1_plus() {
    let server = TestServer::start("", &["alice", "bob"]);
    run_slixmpp(&server, server.direct_tls_port, "direct", "SCRAM-SHA-1-PLUS");
}

#[test]
fn slixmpp_starttls_scram_sha1_plus() {
    let server = TestServer::start("", &["alice", "bob"]);
    run_slixmpp(&server, server.starttls_port, "starttls", "SCRAM-SHA-1-PLUS");
}
