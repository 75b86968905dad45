//! `xmppd import --from ejabberd`: data made by the real ejabberd (24.12)
//! and exported with `ejabberdctl export_piefxis` arrives on xmppd intact:
//! passwords (SCRAM-SHA-256 keys, imported as they are), a roster item with
//! its name, group and subscription, and a vCard, as a slixmpp client that
//! logs in to xmppd with the old password sees them.
//!
//! The test runs a private ejabberd node (its own config, node name,
//! cookie, distribution port, c2s port, spool and log directories, all in a
//! temporary directory) and always stops it. It is skipped when ejabberdctl
//! is not installed, unless `XMPPD_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{RawClient, TestServer, free_port};

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Reports the test as skipped for `reason`, or fails it when
/// `XMPPD_REQUIRE_SERVICES=1`.
fn skip(reason: &str) {
    assert!(std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() != Ok("1"), "XMPPD_REQUIRE_SERVICES=1 but {reason}");
    eprintln!("SKIPPED: {reason}");
}

fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A private ejabberd node. Stopped (and killed as a last resort) on drop.
struct Ejabberd {
    ctl: PathBuf,
    dir: PathBuf,
    node: String,
    beam_pid: Option<u32>,
}

impl Ejabberd {
    /// Runs `ejabberdctl` with this node's directories and configuration.
    fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(&self.ctl)
            .arg("--config-dir")
            .arg(self.dir.join("etc"))
            .arg("--logs")
            .arg(self.dir.join("log"))
            .arg("--spool")
            .arg(self.dir.join("db"))
            .args(args)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if output.status.success() { Ok(text) } else { Err(format!("ejabberdctl {args:?}: {text}{}", self.log())) }
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("log/ejabberd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("\n--- ejabberd.log (tail) ---\n{}", tail.join("\n"))
    }

    /// The node's beam process (`-sname NODE`), if running.
    fn find_beam(&self) -> Option<u32> {
        let output =
            Command::new("pgrep").args(["-f", "--", &format!("beam.* -sname {}( |$)", self.node)]).output().ok()?;
        String::from_utf8_lossy(&output.stdout).lines().next()?.trim().parse().ok()
    }

    fn beam_alive(&self) -> bool {
        self.beam_pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    fn wait_beam_gone(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.beam_alive() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }

    fn stop(&mut self) {
        if !self.beam_alive() {
            return;
        }
        self.ctl(&["stop"]).ok();
        if !self.wait_beam_gone(Duration::from_secs(20))
            && let Some(pid) = self.beam_pid
        {
            eprintln!("ejabberd node {} did not stop; killing beam {pid}", self.node);
            Command::new("kill").args(["-KILL", &pid.to_string()]).status().ok();
            self.wait_beam_gone(Duration::from_secs(5));
        }
        self.beam_pid = None;
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        if self.beam_pid.is_none() {
            // Started but never found (a failed start): look once more.
            self.beam_pid = self.find_beam();
        }
        self.stop();
    }
}

#[tokio::test]
async fn ejabberd_export_imports_passwords_roster_and_vcard() {
    let started = Instant::now();
    let Some(ctl) = find_program("ejabberdctl") else {
        skip("ejabberdctl is not installed (apt-get install ejabberd)");
        return;
    };
    // ejabberdctl only runs as root (it switches to the ejabberd user) or as
    // the ejabberd user itself.
    let me = current_user();
    if me != "root" && me != "ejabberd" {
        skip(&format!("ejabberdctl must run as root or as ejabberd, not as {me:?}"));
        return;
    }

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    for sub in ["etc", "log", "db", "export"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    let c2s_port = free_port();
    let dist_port = free_port();
    let unique = format!(
        "{}x{}",
        std::process::id(),
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000
    );
    let node = format!("xmppdtest{unique}@localhost");
    std::fs::write(dir.join("etc/inetrc"), "{lookup,[\"file\",\"native\"]}.\n{host,{127,0,0,1}, [\"localhost\"]}.\n")
        .unwrap();
    // ERL_DIST_PORT: the node listens for ejabberdctl on its own port and
    // neither uses nor stops the shared epmd.
    std::fs::write(
        dir.join("etc/ejabberdctl.cfg"),
        format!(
            "ERLANG_NODE={node}\nERL_DIST_PORT={dist_port}\n\
             ERL_OPTIONS=\"-setcookie xmppdtest{unique} -env ERL_CRASH_DUMP_BYTES 0\"\n"
        ),
    )
    .unwrap();
    // auth_scram_hash: sha256, so that the exported keys serve SCRAM-SHA-256
    // on xmppd (ejabberd's default is SHA-1).
    std::fs::write(
        dir.join("etc/ejabberd.yml"),
        format!(
            r#"loglevel: info
hosts:
  - localhost
listen:
  -
    port: {c2s_port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
default_db: mnesia
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
api_permissions:
  "console commands":
    from: ejabberd_ctl
    who: all
    what: "*"
modules:
  mod_admin_extra: {{}}
  mod_roster: {{}}
  mod_vcard: {{}}
"#
        ),
    )
    .unwrap();
    if me == "root" {
        // ejabberd runs as its own user: it needs the directories.
        let status = Command::new("chown").arg("-R").arg("ejabberd:ejabberd").arg(&dir).status().unwrap();
        assert!(status.success(), "chown -R ejabberd:ejabberd {}", dir.display());
    }

    let mut ejabberd = Ejabberd { ctl, dir: dir.clone(), node, beam_pid: None };
    ejabberd.ctl(&["start"]).unwrap();
    // Wait for the beam process to appear, so the guard can always stop it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ejabberd.beam_pid.is_none() && Instant::now() < deadline {
        ejabberd.beam_pid = ejabberd.find_beam();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ejabberd.beam_pid.is_some(), "no beam process for {}{}", ejabberd.node, ejabberd.log());
    ejabberd.ctl(&["started"]).unwrap();

    let accounts = [("romeo", "wherefore art thou"), ("juliet", "pässwörd 42")];
    for (user, password) in accounts {
        ejabberd.ctl(&["register", user, "localhost", password]).unwrap();
    }
    ejabberd
        .ctl(&["add_rosteritem", "romeo", "localhost", "juliet", "localhost", "Juliet C.", "Lovers", "both"])
        .unwrap();
    ejabberd.ctl(&["set_vcard", "romeo", "localhost", "FN", "Romeo Montague"]).unwrap();
    let export_dir = dir.join("export");
    ejabberd.ctl(&["export_piefxis", export_dir.to_str().unwrap()]).unwrap();
    ejabberd.stop();

    // export_piefxis writes DATE.xml (the <server-data/> of <xi:include/>s)
    // and DATE_HOST.xml per host.
    let files: Vec<PathBuf> = std::fs::read_dir(&export_dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    let main: Vec<&PathBuf> = files
        .iter()
        .filter(|path| std::fs::read_to_string(path).unwrap_or_default().contains("<server-data"))
        .collect();
    assert_eq!(main.len(), 1, "one main export file expected: {files:?}");
    let main = main[0].to_str().unwrap();

    let server = TestServer::start("", &[]);
    let report = server.cli(&["import", "--from", "ejabberd", main]).unwrap();
    assert!(report.contains("2 account(s) created, 0 already present, 0 skipped"), "{report}");
    let again = server.cli(&["import", "--from", "ejabberd", main]).unwrap();
    assert!(again.contains("0 account(s) created, 2 already present"), "{again}");

    // A slixmpp client logs in with the old passwords and sees the data.
    let port = server.starttls_port.to_string();
    let [(romeo, romeo_password), (juliet, juliet_password)] = accounts;
    let check = |args: &[&str]| common::run_interop_script(&server, "slixmpp_migrate.py", args, "slixmpp check");
    let expected = [
        "check",
        &port,
        romeo,
        romeo_password,
        "roster=juliet@localhost|both|Juliet C.|Lovers",
        "roster-count=1",
        "vcard-fn=Romeo Montague",
    ];
    if let Some(out) = check(&expected) {
        assert!(out.contains("ok: vcard-fn=Romeo Montague"), "{out}");
        // Juliet got no roster item from ejabberdctl (add_rosteritem
        // writes one side only).
        let out = check(&["check", &port, juliet, juliet_password, "roster-count=0"]).unwrap();
        assert!(out.contains("ok: roster-count=0"), "{out}");
        // A wrong password is refused, so the logins above proved the keys.
        let out = check(&["refused", &port, romeo, "wrong"]).unwrap();
        assert!(out.contains("ok: romeo refused"), "{out}");
    } else {
        // Without slixmpp: the logins with the project's raw client.
        for (user, password) in accounts {
            let mut client = RawClient::connect(server.starttls_port).await;
            client.login_with(user, password, "localhost", Some("imported")).await;
        }
    }

    drop(ejabberd);
    eprintln!("ejabberd migration test took {:?}", started.elapsed());
}
