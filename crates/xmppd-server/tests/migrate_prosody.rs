//! `xmppd import --from prosody`: accounts made by the real `prosodyctl`
//! keep their passwords on xmppd (Prosody stores SCRAM keys; they are
//! imported as they are), and a PEP node that Prosody's own `util.pubsub`
//! stored arrives with its configuration and item.
//!
//! [`prosody_daemon_round_trip`] runs a private Prosody 13 (its own
//! configuration, data directory, pid file and c2s port, in a temporary
//! directory, as a child process that is always stopped): slixmpp clients
//! make a roster, a vCard and a PEP nick on it through the protocol, and
//! after the import a slixmpp client sees them on xmppd. The tests are
//! skipped when Prosody is not installed, unless `XMPPD_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{RawClient, TestServer, free_port};

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

#[tokio::test]
async fn accounts_from_prosody_keep_their_passwords() {
    let Some(prosodyctl) = find_program("prosodyctl") else {
        assert!(
            std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "XMPPD_REQUIRE_SERVICES=1 but prosodyctl is not installed"
        );
        eprintln!("SKIPPED: prosodyctl not installed (apt-get install prosody)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prosody-data");
    std::fs::create_dir(&data).unwrap();
    let config = dir.path().join("prosody.cfg.lua");
    std::fs::write(
        &config,
        format!(
            "data_path = {:?}\npidfile = {:?}\nrun_as_root = true\nlog = {{ error = {:?} }}\n\
             VirtualHost \"localhost\"\nauthentication = \"internal_hashed\"\npassword_hash = \"SHA-256\"\n",
            data.display().to_string(),
            dir.path().join("prosody.pid").display().to_string(),
            dir.path().join("prosody.log").display().to_string(),
        ),
    )
    .unwrap();
    let accounts = [("romeo", "wherefore art thou"), ("juliet", "pässwörd 42")];
    register(&prosodyctl, &config, &accounts);

    // Roster, vCard and a PEP node written by Prosody's own storage
    // modules (what mod_roster, mod_vcard and mod_pep do), when Lua is
    // there.
    let populated = match (find_program("lua5.4"), prosody_source_dir(&prosodyctl)) {
        (Some(lua), Some(source)) => {
            let script = dir.path().join("populate.lua");
            std::fs::write(&script, POPULATE).unwrap();
            let output = Command::new(lua).arg(&script).arg(&source).arg(&data).output().unwrap();
            assert!(output.status.success(), "populate.lua: {}", String::from_utf8_lossy(&output.stderr));
            true
        }
        _ => {
            assert!(
                std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "XMPPD_REQUIRE_SERVICES=1 but lua5.4 is not installed"
            );
            eprintln!("lua5.4 not installed: roster and vCard not checked");
            false
        }
    };

    let server = TestServer::start("", &[]);
    let report = server.cli(&["import", "--from", "prosody", data.to_str().unwrap()]).unwrap();
    assert!(report.contains("2 account(s) created, 0 already present, 0 skipped"), "{report}");
    if populated {
        assert!(report.contains("1 PEP node(s), 1 PEP item(s)"), "{report}");
        let export = server.dir.path().join("export.xml");
        server.cli(&["export", export.to_str().unwrap()]).unwrap();
        let export = std::fs::read_to_string(export).unwrap();
        assert!(
            export
                .contains("<configure node='http://jabber.org/protocol/nick'><x xmlns='jabber:x:data' type='submit'>")
                && export.contains("<field var='pubsub#access_model'><value>open</value></field>"),
            "{export}"
        );
        assert!(
            export.contains(
                "<items node='http://jabber.org/protocol/nick'><item id='current' \
                 publisher='romeo@localhost/orchard'><nick xmlns='http://jabber.org/protocol/nick'>Romy</nick>\
                 </item></items>"
            ),
            "{export}"
        );
    }
    // Running it again changes nothing.
    let again = server.cli(&["import", "--from", "prosody", data.to_str().unwrap()]).unwrap();
    assert!(again.contains("0 account(s) created, 2 already present"), "{again}");

    for (user, password) in accounts {
        let mut client = RawClient::connect(server.starttls_port).await;
        let jid = client.login_with(user, password, "localhost", Some("imported")).await;
        assert_eq!(jid, format!("{user}@localhost/imported"));
        if populated && user == "romeo" {
            let roster = client.iq("get", "r1", None, "<query xmlns='jabber:iq:roster'/>").await;
            assert!(
                roster.contains("jid='juliet@localhost'")
                    && roster.contains("subscription='both'")
                    && roster.contains("<group>Lovers</group>"),
                "{roster}"
            );
            let vcard = client.iq("get", "v1", None, "<vCard xmlns='vcard-temp'/>").await;
            assert!(vcard.contains("<FN>Romeo Montague</FN>"), "{vcard}");
        }
    }
}

/// Prosody's sources (`CFG_SOURCEDIR` of prosodyctl), for the Lua script.
fn prosody_source_dir(prosodyctl: &std::path::Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(prosodyctl).ok()?;
    let line = text.lines().find(|line| line.starts_with("CFG_SOURCEDIR="))?;
    Some(PathBuf::from(line.split('\'').nth(1)?))
}

/// Stores romeo's roster and vCard through Prosody's datamanager and stanza
/// modules, and a PEP node with one item through `util.pubsub` with the
/// stores `mod_pep` gives it: the `pep` map (one key-value file) for nodes
/// and a `pep_<node>` archive for items, whose entries are what
/// `mod_storage_internal`'s `archive:append` writes (the preserialized
/// payload with `key`, `when`, `with` and the attribute `stamp`).
const POPULATE: &str = r#"
local source, data = arg[1], arg[2]
package.path = source .. "/../?.lua;" .. package.path
package.cpath = source .. "/../?.so;" .. package.cpath
local dm = require "prosody.util.datamanager"
local st = require "prosody.util.stanza"
local pubsub = require "prosody.util.pubsub"
local datetime = require "prosody.util.datetime"
dm.set_data_path(data)
assert(dm.store("romeo", "localhost", "roster", {
  [false] = { version = 2 },
  ["juliet@localhost"] = { subscription = "both", name = "Juliet", groups = { ["Lovers"] = true } },
}))
local vcard = st.stanza("vCard", { xmlns = "vcard-temp" }):text_tag("FN", "Romeo Montague")
assert(dm.store("romeo", "localhost", "vcard", st.preserialize(vcard)))

local nodes = {}
local nodestore = {}
function nodestore:get(node) return nodes[node] end
function nodestore:set(node, value) nodes[node] = value; return dm.store("romeo", "localhost", "pep", nodes) end
function nodestore:users() return pairs(nodes) end
local function itemstore(_, node)
  local store = {}
  function store:set(key, value)
    local payload = st.preserialize(st.clone(value.tags[1]))
    payload.key, payload.when, payload.with = key, os.time(), value.attr.publisher
    payload.attr.stamp = datetime.datetime(payload.when)
    return dm.list_append("romeo", "localhost", "pep_" .. node, payload)
  end
  function store:get() return nil end
  function store:items() return function() end end
  function store:head() return nil end
  function store:resize() return true end
  function store:clear() return true end
  return store
end
local service = pubsub.new({
  nodestore = nodestore,
  itemstore = itemstore,
  node_defaults = { max_items = 1, access_model = "presence", send_last_published_item = "on_sub_and_presence" },
})
local nick = "http://jabber.org/protocol/nick"
assert(service:create(nick, true, { access_model = "open" }))
local item = st.stanza("item", { id = "current", publisher = "romeo@localhost/orchard", xmlns = "http://jabber.org/protocol/pubsub" })
  :tag("nick", { xmlns = nick }):text("Romy"):up()
assert(service:publish(nick, true, "current", item))
"#;

/// Reports the test as skipped for `reason`, or fails it when
/// `XMPPD_REQUIRE_SERVICES=1`.
fn skip(reason: &str) {
    assert!(std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() != Ok("1"), "XMPPD_REQUIRE_SERVICES=1 but {reason}");
    eprintln!("SKIPPED: {reason}");
}

/// A private Prosody daemon, run in the foreground as a child process.
/// Stopped with SIGTERM (SIGKILL as a last resort) on drop.
struct Prosody {
    child: Option<Child>,
    log: PathBuf,
}

impl Prosody {
    fn start(prosody: &Path, config: &Path, log: PathBuf, port: u16) -> Prosody {
        let child = Command::new(prosody)
            .arg("--config")
            .arg(config)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut daemon = Prosody { child: Some(child), log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = daemon.child.as_mut().and_then(|child| child.try_wait().unwrap());
            assert!(exited.is_none(), "prosody exited with {exited:?}{}", daemon.log_tail());
            assert!(Instant::now() < deadline, "prosody does not listen on {port}{}", daemon.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!("\n--- prosody.log (tail) ---\n{}", lines[lines.len().saturating_sub(40)..].join("\n"))
    }

    /// Stops the daemon (SIGTERM, as `prosodyctl stop` does) and waits
    /// for it; returns whether it exited cleanly.
    fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().ok();
        match common::wait_for_exit(&mut child, Duration::from_secs(15)) {
            Some(status) => status.success(),
            None => {
                child.kill().ok();
                child.wait().ok();
                false
            }
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `tests/interop/slixmpp_migrate.py` with `args`; `None` when
/// slixmpp is not available (the test then skips). Fails the test with
/// the script's output and `log` when the script fails.
fn slixmpp_migrate(args: &[&str], log: impl FnOnce() -> String) -> Option<String> {
    let python = common::slixmpp_python()?;
    let output = Command::new(python).arg(common::interop_script("slixmpp_migrate.py")).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "slixmpp_migrate.py {args:?} failed:\n{stdout}\n{stderr}\n{}", log());
    Some(stdout)
}

/// Prosody 13 with accounts made by `prosodyctl register` and a roster,
/// a vCard and a PEP nick made by slixmpp clients over c2s; then
/// `xmppd import --from prosody` of its data directory, and a slixmpp
/// client logs in to xmppd with the old password and sees all of it.
#[tokio::test]
async fn prosody_daemon_round_trip() {
    let started = Instant::now();
    let (Some(prosody), Some(prosodyctl)) = (find_program("prosody"), find_program("prosodyctl")) else {
        skip("prosody is not installed (apt-get install prosody)");
        return;
    };
    if common::slixmpp_python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("localhost.crt"), dir.path().join("localhost.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let port = free_port();
    let log = dir.path().join("prosody.log");
    let config = dir.path().join("prosody.cfg.lua");
    // Only the modules the test needs; presence, message, iq, offline and
    // c2s are loaded by Prosody itself, s2s (which would listen on 5269)
    // is not. SCRAM-SHA-256 keys (password_hash), as xmppd keeps them.
    std::fs::write(
        &config,
        format!(
            r#"data_path = {data:?}
pidfile = {pid:?}
run_as_root = true
log = {{ info = {log:?} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "vcard4", "vcard_legacy", "private", "pep" }}
modules_disabled = {{ "s2s", "s2s_auth_certs" }}
storage = "internal"
authentication = "internal_hashed"
password_hash = "SHA-256"
c2s_require_encryption = true
ssl = {{ certificate = {cert:?}, key = {key:?} }}
VirtualHost "localhost"
"#,
            data = data.display().to_string(),
            pid = dir.path().join("prosody.pid").display().to_string(),
            log = log.display().to_string(),
            cert = cert.display().to_string(),
            key = key.display().to_string(),
        ),
    )
    .unwrap();
    let accounts = [("romeo", "wherefore art thou"), ("juliet", "pässwörd 42")];
    register(&prosodyctl, &config, &accounts);

    let mut daemon = Prosody::start(&prosody, &config, log, port);
    let [(romeo, romeo_password), (juliet, juliet_password)] = accounts;
    let port_text = port.to_string();
    let setup = [
        "prosody-setup",
        &port_text,
        romeo,
        romeo_password,
        juliet,
        juliet_password,
        "Juliet C.",
        "Lovers",
        "Romeo Montague",
        "Romy",
    ];
    slixmpp_migrate(&setup, || daemon.log_tail()).unwrap();
    assert!(daemon.stop(), "prosody did not stop cleanly{}", daemon.log_tail());

    let server = TestServer::start("", &[]);
    let data_arg = data.to_str().unwrap();
    let report = server.cli(&["import", "--from", "prosody", data_arg]).unwrap();
    // mod_vcard_legacy keeps the vCard as a vCard4 PEP node (XEP-0292)
    // and its photo as XEP-0084 avatar nodes: four PEP nodes (nick,
    // vcard4, avatar data and metadata), from which the vcard-temp is
    // built.
    assert!(
        report.contains("2 account(s) created, 0 already present, 0 skipped")
            && report.contains("2 roster item(s)")
            && report.contains("1 vCard(s)")
            && report.contains("4 PEP node(s), 4 PEP item(s)"),
        "{report}"
    );
    let again = server.cli(&["import", "--from", "prosody", data_arg]).unwrap();
    assert!(again.contains("0 account(s) created, 2 already present"), "{again}");

    let xmppd_port = server.starttls_port.to_string();
    let check = |user: &str, password: &str, expected: &[&str]| {
        let mut args = vec!["check", xmppd_port.as_str(), user, password];
        args.extend_from_slice(expected);
        slixmpp_migrate(&args, || server.log()).unwrap()
    };
    let out = check(
        romeo,
        romeo_password,
        &[
            "roster=juliet@localhost|both|Juliet C.|Lovers",
            "roster-count=1",
            "vcard-fn=Romeo Montague",
            "vcard-photo=setup",
            "nick=Romy",
        ],
    );
    assert!(out.contains("ok: nick=Romy"), "{out}");
    let out = check(juliet, juliet_password, &["roster=romeo@localhost|both||", "roster-count=1"]);
    assert!(out.contains("ok: roster-count=1"), "{out}");
    let out = slixmpp_migrate(&["refused", &xmppd_port, romeo, "wrong"], || server.log()).unwrap();
    assert!(out.contains("ok: romeo refused"), "{out}");
    eprintln!("prosody round trip took {:?}", started.elapsed());
}

/// Creates the accounts with the real `prosodyctl register`, against the
/// data dir of `config`.
fn register(prosodyctl: &std::path::Path, config: &std::path::Path, accounts: &[(&str, &str)]) {
    for (user, password) in accounts {
        let output = Command::new(prosodyctl)
            .arg("--config")
            .arg(config)
            .args(["register", user, "localhost", password])
            .output()
            .unwrap();
        assert!(output.status.success(), "prosodyctl register {user}: {}", String::from_utf8_lossy(&output.stderr));
    }
}
