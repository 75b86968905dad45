//! Interop: the real terminal client Profanity, driven in tmux, against the
//! real binary, with a slixmpp client on the other side (the scenario is in
//! tests/interop/profanity_tmux.py). Skips with a message when `profanity`
//! or `tmux` is not installed, unless `XMPPD_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, TestServer, interop_script, slixmpp_python, wait_for_exit};

/// Whether `program` runs (`program arg` exits with success).
fn installed(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
}

/// `true` when both programs are there; otherwise skips (or fails under
/// `XMPPD_REQUIRE_SERVICES=1`).
fn profanity_and_tmux() -> bool {
    let missing: Vec<&str> = [("profanity", "--version"), ("tmux", "-V")]
        .iter()
        .filter(|(p, a)| !installed(p, a))
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(" and ");
    if std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{what} required (XMPPD_REQUIRE_SERVICES=1) but not installed; apt-get install profanity tmux");
    }
    eprintln!("SKIP: {what} not installed (apt-get install profanity tmux)");
    false
}

/// Ends the script's private tmux server (and with it Profanity) whatever
/// happens to the test; the script does so itself on its normal exits.
struct TmuxGuard(PathBuf);

impl Drop for TmuxGuard {
    fn drop(&mut self) {
        if self.0.exists() {
            Command::new("tmux")
                .arg("-S")
                .arg(&self.0)
                .arg("kill-server")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok();
        }
    }
}

#[test]
fn profanity_subscription_and_chat() {
    if !profanity_and_tmux() {
        return;
    }
    let Some(python) = slixmpp_python() else { return };
    let server = TestServer::start("", &["alice", "bob"]);
    let work = server.dir.path().join("profanity");
    let _guard = TmuxGuard(work.join("tmux.sock"));
    let script = interop_script("profanity_tmux.py");
    let stdout_path = server.dir.path().join("profanity_tmux.out");
    let stderr_path = server.dir.path().join("profanity_tmux.err");

    let started = Instant::now();
    let mut child = Command::new(python)
        .arg(script)
        .args([&server.starttls_port.to_string(), PASSWORD])
        .arg(&work)
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    // The script bounds every wait itself; this only guards against a hang.
    let status = wait_for_exit(&mut child, Duration::from_secs(150));
    if status.is_none() {
        // SIGTERM first, so that the script cleans up after itself.
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().ok();
        std::thread::sleep(Duration::from_secs(5));
        child.kill().ok();
        child.wait().ok();
    }
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    eprintln!("profanity_tmux.py took {:.1?}:\n{stdout}", started.elapsed());
    assert!(
        status.is_some_and(|s| s.success()),
        "profanity_tmux.py failed ({status:?}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    for step in [
        "profanity: alice logged in over STARTTLS",
        "profanity: shows bob's subscription request",
        "slixmpp: bob received subscribed from alice",
        "slixmpp: bob received alice's presence",
        "slixmpp: bob received alice's message",
        "profanity: shows bob's reply",
    ] {
        assert!(stdout.contains(step), "missing step `{step}`:\n{stdout}");
    }
}
