//! Gajim's protocol library against the real binary: nbxmpp (Debian's
//! `python3-nbxmpp`, the library Gajim is built on) logs in and makes the
//! requests Gajim makes after login — server and account discovery,
//! roster, carbons, blocking list, avatar publication with
//! publish-options, the vCard avatar, the OMEMO device list and bundle,
//! XEP-0402 bookmarks
//! (`tests/interop/nbxmpp_gajim.py`). Skipped when the system Python
//! cannot import nbxmpp, unless `XMPPD_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{PASSWORD, TestServer, interop_script};

/// The system Python, which Debian's nbxmpp (with PyGObject) lives in.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

fn nbxmpp_available() -> bool {
    let works = Command::new(SYSTEM_PYTHON).args(["-c", "import nbxmpp"]).output().is_ok_and(|o| o.status.success());
    if !works {
        if std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!(
                "nbxmpp is required (XMPPD_REQUIRE_SERVICES=1); apt-get install -t bookworm-backports python3-nbxmpp"
            );
        }
        eprintln!("SKIP: {SYSTEM_PYTHON} cannot import nbxmpp (apt-get install python3-nbxmpp)");
    }
    works
}

#[test]
fn gajim_library_login_sequence() {
    if !nbxmpp_available() {
        return;
    }
    let server = TestServer::start("", &["alice"]);
    let port = server.starttls_port.to_string();
    let output = Command::new(SYSTEM_PYTHON)
        .arg(interop_script("nbxmpp_gajim.py"))
        .args([port.as_str(), "alice", PASSWORD])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nbxmpp failed:\n{stdout}\n{stderr}\nserver log:\n{}", server.log());
    for step in [
        "server disco: carbons, blocking, ping",
        "account disco: PEP with publish-options",
        "roster received",
        "carbons enabled",
        "blocking list received",
        "avatar published and read back (XEP-0084, publish-options)",
        "vCard carries the PEP avatar (XEP-0398)",
        "OMEMO device list and bundle published and read back",
        "bookmarks stored and read back (XEP-0402)",
    ] {
        assert!(stdout.contains(step), "missing step `{step}`:\n{stdout}\n{stderr}");
    }
}
