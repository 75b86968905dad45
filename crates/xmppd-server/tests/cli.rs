//! The `xmppd` command line: zero-config start, config errors with key
//! paths, `xmppd check`.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::binary;

#[test]
fn bad_config_values_name_their_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[c2s]\nmax_stanza_bytes = \"big\"\n", "c2s.max_stanza_bytes"),
        ("[c2s]\nmax_stanza_byts = 1\n", "max_stanza_byts"),
        ("[listen]\nc2s = [\"localhost:x\"]\n", "listen.c2s[0]"),
        ("[server]\nhosts = [\"bad host\"]\n", "server.hosts[0]"),
        ("[c2s]\nmax_depth = 100000\n", "c2s.max_depth"),
        ("[storage]\nbackend = \"mysql\"\n", "storage.backend"),
        ("[c2s]\nresource_conflict = \"explode\"\n", "c2s.resource_conflict"),
        ("[tls]\ncertificate = \"/x.pem\"\n", "tls.key"),
    ];
    for (text, path) in cases {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, text).unwrap();
        let output = Command::new(binary()).arg("--config").arg(&config).arg("check").output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(path), "{text}: expected {path} in {stderr}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[c2s]\nmax_depth = 1\nmax_attributes = 1\n[auth]\nscram_iterations = 1\n").unwrap();
    let output = Command::new(binary()).arg("--config").arg(&config).arg("serve").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    for path in ["c2s.max_depth", "c2s.max_attributes", "auth.scram_iterations"] {
        assert!(stderr.contains(path), "{path} missing from {stderr}");
    }
}

#[test]
fn check_names_certificate_problems() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("xmppd.toml");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"{}\"\n[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            dir.path().join("data").display(),
            cert.display(),
            dir.path().join("missing-key.pem").display()
        ),
    )
    .unwrap();
    let output = Command::new(binary()).arg("--config").arg(&config).arg("check").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(stdout.contains("tls.certificate"), "{stdout}");
}

#[test]
fn check_accepts_the_generated_setup() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("xmppd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhosts = [\"localhost\", \"example.test\"]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let output = Command::new(binary()).arg("--config").arg(&config).arg("check").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
}

/// `xmppd serve` with no config: host localhost, data in ./data, a
/// self-signed certificate generated on first start and reused afterwards.
#[test]
fn serve_runs_without_any_config() {
    if std::net::TcpListener::bind("0.0.0.0:5222").is_err() || std::net::TcpListener::bind("0.0.0.0:5223").is_err() {
        eprintln!("SKIP: ports 5222/5223 are in use; cannot test the zero-config defaults");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        Command::new(binary())
            .arg("serve")
            .current_dir(dir.path())
            .env_remove("XMPPD_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_listening = |child: &mut std::process::Child| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect("127.0.0.1:5222").is_err() {
            assert!(child.try_wait().unwrap().is_none(), "xmppd exited");
            assert!(Instant::now() < deadline, "xmppd did not listen on 5222");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let stop = |child: &mut std::process::Child| {
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        assert!(child.wait().unwrap().success());
    };
    let mut child = start();
    wait_listening(&mut child);
    let cert = dir.path().join("data/tls/cert.pem");
    assert!(cert.exists() && dir.path().join("data/xmppd.sqlite3").exists());
    let first = std::fs::read(&cert).unwrap();
    stop(&mut child);
    let mut child = start();
    wait_listening(&mut child);
    assert_eq!(std::fs::read(&cert).unwrap(), first, "certificate regenerated");
    stop(&mut child);
}

/// The `<item …/>` elements of a roster result, in order.
fn roster_items(reply: &str) -> Vec<String> {
    reply.split("<item ").skip(1).map(|rest| rest.split('>').next().unwrap_or_default().to_owned()).collect()
}

/// Logs `user@localhost` in and returns its roster result (RFC 6121 §2.1.3).
async fn roster_of(server: &common::TestServer, user: &str) -> String {
    let mut client = common::RawClient::connect(server.starttls_port).await;
    client.login(user, "localhost", None).await;
    let reply = client.iq("get", "r", None, "<query xmlns='jabber:iq:roster'/>").await;
    assert!(reply.contains("type='result'") && reply.contains("id='r'"), "{reply}");
    reply
}

/// `xmppd roster import`: items land in the users' rosters (normalized,
/// subscription `both` by default, names with spaces), as a roster get after
/// login shows; importing again replaces items and bumps the version once.
#[tokio::test]
async fn roster_import_fills_rosters() {
    let server = common::TestServer::start("", &["alice", "bob", "carol"]);
    let input = "# a fan-out group\n\
                 \n\
                 alice@localhost bob@localhost\n\
                 Alice@LOCALHOST carol@localhost from  Carol C. \n\
                 alice@localhost juliet@example.net none\n\
                 bob@localhost alice@localhost both\n";
    let output = server.cli_stdin(&["roster", "import"], input).unwrap();
    assert!(output.contains("imported 4 roster item(s) for 2 user(s) on 1 host(s)"), "{output}");

    let reply = roster_of(&server, "alice").await;
    assert!(reply.contains("ver='1'"), "{reply}");
    assert_eq!(
        roster_items(&reply),
        [
            "jid='bob@localhost' subscription='both'/",
            "jid='carol@localhost' subscription='from' name='Carol C.'/",
            "jid='juliet@example.net' subscription='none'/",
        ],
        "{reply}"
    );
    let reply = roster_of(&server, "bob").await;
    assert_eq!(roster_items(&reply), ["jid='alice@localhost' subscription='both'/"], "{reply}");
    assert!(roster_items(&roster_of(&server, "carol").await).is_empty());

    // Again, with one item changed: replaced in place, version 2.
    let output = server.cli_stdin(&["roster", "import"], "alice@localhost bob@localhost to Bob\n").unwrap();
    assert!(output.contains("imported 1 roster item(s) for 1 user(s)"), "{output}");
    let reply = roster_of(&server, "alice").await;
    assert!(reply.contains("ver='2'"), "{reply}");
    let items = roster_items(&reply);
    assert_eq!(items.len(), 3, "{reply}");
    assert_eq!(items[0], "jid='bob@localhost' subscription='to' name='Bob'/", "{reply}");
}

/// Bad lines are all reported with their numbers, the exit status is
/// non-zero, and nothing is written, not even the good lines.
#[tokio::test]
async fn roster_import_refuses_bad_lines() {
    let server = common::TestServer::start("", &["alice", "bob"]);
    let input = "alice@localhost bob@localhost\n\
                 alice@localhost\n\
                 alice@localhost BOB@localhost from\n\
                 nobody@localhost alice@localhost\n\
                 alice@elsewhere bob@localhost\n\
                 alice@localhost bob@localhost/phone\n\
                 alice@localhost carol@localhost Carol\n\
                 # comment\n\
                 bob@localhost alice@localhost\n";
    let output = server.cli_stdin(&["roster", "import"], input).unwrap_err();
    for expected in [
        "line 2: missing contact",
        "line 3: alice@localhost has bob@localhost already (line 1)",
        "line 4: no account nobody@localhost",
        "line 5: `elsewhere` is not a configured host",
        "line 6: `bob@localhost/phone` is not a valid bare JID",
        "line 7: `Carol` is not a subscription",
        "6 bad line(s); nothing was imported",
    ] {
        assert!(output.contains(expected), "expected {expected:?} in {output}");
    }
    assert!(!output.contains("line 1:") && !output.contains("line 9:"), "{output}");
    for user in ["alice", "bob"] {
        let reply = roster_of(&server, user).await;
        assert!(roster_items(&reply).is_empty() && reply.contains("ver='0'"), "{user}: {reply}");
    }
}

/// `[modules] disabled` removes a module from the enabled list, and an
/// unknown name there is an error like in `enabled`.
#[test]
fn modules_can_be_disabled() {
    let server = common::TestServer::start("\n[modules]\ndisabled = [\"version\"]\n", &["romeo"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = common::RawClient::connect(server.starttls_port).await;
        client.login("romeo", "localhost", Some("d")).await;
        let reply = client.iq("get", "v1", Some("localhost"), "<query xmlns='jabber:iq:version'/>").await;
        assert!(reply.contains("<service-unavailable"), "{reply}");
        let reply = client.iq("get", "p1", Some("localhost"), "<ping xmlns='urn:xmpp:ping'/>").await;
        assert!(reply.contains("type='result'"), "{reply}");
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[modules]\ndisabled = [\"no_such_module\"]\n").unwrap();
    // The default data_dir is relative: run inside the temporary directory.
    let output = std::process::Command::new(common::binary())
        .args(["--config", config.to_str().unwrap(), "check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success() && text.contains("no_such_module"), "{text}");
}
