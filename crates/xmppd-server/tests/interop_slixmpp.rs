//! Interop: the real slixmpp client (from PyPI) against the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestServer, run_interop_script};

fn run_slixmpp(server: &TestServer, port: u16, mode: &str, mechanism: &str) {
    let port = port.to_string();
    let args = [port.as_str(), mode, mechanism, "alice@localhost", "bob@localhost", PASSWORD];
    let what = format!("slixmpp ({mode}, {mechanism})");
    let Some(stdout) = run_interop_script(server, "slixmpp_chat.py", &args, &what) else { return };
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
