//! The small server XEPs against the real binary: software version
//! (XEP-0092), entity time (XEP-0202), private XML storage (XEP-0049),
//! vcard-temp (XEP-0054), disco extensions and contact addresses
//! (XEP-0128, XEP-0157), server uptime (XEP-0012) and message carbons
//! (XEP-0280). Driven by the real
//! slixmpp client (`tests/interop/slixmpp_xeps.py`) and, so that something
//! runs even without Python, by the raw test client.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{PASSWORD, RawClient, TestServer, binary, free_port, run_interop_script, wait_for_exit};

/// Module settings of the main scenario (the script checks these values).
const FULL_TABLES: &str = r#"
[modules.settings.contact_addresses]
admin = ["xmpp:admin@localhost", "mailto:admin@example.org"]
status = ["https://status.example.org"]

[modules.settings.private]
max_bytes = 4096

[modules.settings.vcard]
max_bytes = 4096
"#;

/// Runs the slixmpp script in `mode`; returns its standard output, or
/// `None` when slixmpp is unavailable (the test then skips).
fn run_slixmpp(server: &TestServer, mode: &str) -> Option<String> {
    let port = server.starttls_port.to_string();
    let args = [port.as_str(), mode, "alice@localhost", "bob@localhost", PASSWORD];
    run_interop_script(server, "slixmpp_xeps.py", &args, &format!("slixmpp ({mode})"))
}

#[test]
fn slixmpp_small_xeps() {
    let server = TestServer::start_with_tables(FULL_TABLES, &["alice", "bob"]);
    let Some(stdout) = run_slixmpp(&server, "full") else { return };
    for line in [
        &format!("version ok: xmppd {} os=-", env!("CARGO_PKG_VERSION")),
        "time ok: ",
        "private storage roundtrip ok",
        "private storage of another user refused",
        "private storage limits ok",
        "vcard set by alice, read by bob ok",
        "vcard refusals ok",
        "disco features and contact addresses ok",
        "server uptime ok",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn slixmpp_version_shows_os_when_configured() {
    let server = TestServer::start_with_tables("[modules.settings.version]\nhide_os = false\n", &["alice"]);
    let Some(stdout) = run_slixmpp(&server, "show-os") else { return };
    assert!(stdout.contains("version ok: xmppd"), "{stdout}");
    assert!(!stdout.contains("os=-"), "{stdout}");
}

#[test]
fn slixmpp_version_can_be_hidden() {
    let server = TestServer::start_with_tables("[modules.settings.version]\nhide_version = true\n", &["alice"]);
    let Some(stdout) = run_slixmpp(&server, "hide-version") else { return };
    assert!(stdout.contains("version hidden ok"), "{stdout}");
}

/// The same protocols with the raw client: exact payloads on the wire.
#[tokio::test]
async fn raw_client_small_xeps() {
    let server = TestServer::start_with_tables(FULL_TABLES, &["alice", "bob"]);
    let mut alice = RawClient::connect(server.starttls_port).await;
    alice.login("alice", "localhost", Some("raw")).await;

    let version = alice.iq("get", "v1", Some("localhost"), "<query xmlns='jabber:iq:version'/>").await;
    assert!(version.contains("<name>xmppd</name>"), "{version}");
    assert!(version.contains(&format!("<version>{}</version>", env!("CARGO_PKG_VERSION"))), "{version}");
    assert!(!version.contains("<os>"), "{version}");

    let time = alice.iq("get", "t1", Some("localhost"), "<time xmlns='urn:xmpp:time'/>").await;
    assert!(time.contains("<tzo>+00:00</tzo>"), "{time}");
    let utc_start = time.find("<utc>").expect("a utc element") + 5;
    let utc = &time[utc_start..utc_start + 24];
    assert!(utc.ends_with('Z') && utc.as_bytes()[10] == b'T' && utc.as_bytes()[19] == b'.', "{utc}");

    let last = alice.iq("get", "l1", Some("localhost"), "<query xmlns='jabber:iq:last'/>").await;
    assert!(last.contains("<query xmlns='jabber:iq:last' seconds='"), "{last}");

    // Private XML storage without 'to': the sender's own account.
    let stored = alice
        .iq(
            "set",
            "p1",
            None,
            "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color>red</color></prefs></query>",
        )
        .await;
    assert!(stored.contains("type='result'"), "{stored}");
    let fetched = alice
        .iq(
            "get",
            "p2",
            Some("alice@localhost"),
            "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>",
        )
        .await;
    assert!(fetched.contains("<prefs xmlns='urn:example:prefs'><color>red</color></prefs>"), "{fetched}");
    let other = alice
        .iq(
            "get",
            "p3",
            Some("bob@localhost"),
            "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>",
        )
        .await;
    assert!(other.contains("type='error'") && other.contains("<forbidden"), "{other}");
    let empty = alice.iq("get", "p4", None, "<query xmlns='jabber:iq:private'/>").await;
    assert!(empty.contains("<not-acceptable"), "{empty}");

    // vcard-temp: own empty vCard, then set and read back.
    let none = alice.iq("get", "c1", None, "<vCard xmlns='vcard-temp'/>").await;
    assert!(none.contains("type='result'") && none.contains("<vCard xmlns='vcard-temp'/>"), "{none}");
    let set = alice.iq("set", "c2", None, "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>").await;
    assert!(set.contains("type='result'"), "{set}");
    let bobs = alice.iq("get", "c3", Some("bob@localhost"), "<vCard xmlns='vcard-temp'/>").await;
    assert!(bobs.contains("<service-unavailable"), "{bobs}");

    // disco#info: features of each module and the XEP-0157 form.
    let info = alice.iq("get", "d1", Some("localhost"), "<query xmlns='http://jabber.org/protocol/disco#info'/>").await;
    for feature in ["jabber:iq:version", "urn:xmpp:time", "vcard-temp", "jabber:iq:last"] {
        assert!(info.contains(&format!("<feature var='{feature}'/>")), "{feature} missing: {info}");
    }
    assert!(info.contains("<x xmlns='jabber:x:data' type='result'>"), "{info}");
    assert!(info.contains("<value>http://jabber.org/network/serverinfo</value>"), "{info}");
    assert!(info.contains("<field var='admin-addresses' type='list-multi'>"), "{info}");
    assert!(!info.contains("abuse-addresses"), "unconfigured field published: {info}");

    let mut bob = RawClient::connect(server.starttls_port).await;
    bob.login("bob", "localhost", Some("raw")).await;
    let card = bob.iq("get", "c4", Some("alice@localhost"), "<vCard xmlns='vcard-temp'/>").await;
    assert!(card.contains("<FN>Alice</FN>"), "{card}");
    let forged = bob.iq("set", "c5", Some("alice@localhost"), "<vCard xmlns='vcard-temp'><FN>Bob</FN></vCard>").await;
    assert!(forged.contains("<forbidden"), "{forged}");
}

/// Module configuration errors stop the server before it listens, naming
/// the module and the offending value.
#[test]
fn bad_contact_address_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("xmppd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"{}\"\n[listen]\nc2s = [\"127.0.0.1:{}\"]\nc2s_direct_tls = [\"127.0.0.1:{}\"]\n\
             [modules.settings.contact_addresses]\nabuse = [\"abuse@example.org\"]\n",
            dir.path().join("data").display(),
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = wait_for_exit(&mut child, Duration::from_secs(30)) else {
        child.kill().ok();
        panic!("xmppd started despite a bad contact address");
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success());
    assert!(stderr.contains("contact_addresses") && stderr.contains("abuse@example.org"), "{stderr}");
}

/// XEP-0280 Message Carbons with real slixmpp clients
/// (`tests/interop/slixmpp_carbons.py`).
#[test]
fn slixmpp_message_carbons() {
    let server = TestServer::start("", &["alice", "bob"]);
    let port = server.starttls_port.to_string();
    let args = [port.as_str(), PASSWORD];
    let Some(stdout) = run_interop_script(&server, "slixmpp_carbons.py", &args, "slixmpp (carbons)") else { return };
    for step in [
        "carbons enabled",
        "received carbon to the other device",
        "sent carbon to the other device",
        "private and headline messages not copied",
        "disabled: no more copies",
    ] {
        assert!(stdout.contains(step), "missing step `{step}`:\n{stdout}");
    }
}
