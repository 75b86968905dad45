//! RFC 6121 instant messaging and presence, and XEP-0160 offline storage,
//! checked with the real slixmpp client against the real binary
//! (scenarios in tests/interop/slixmpp_im.py).
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestServer, run_interop_script};

const USERS: &[&str] = &["alice", "bob", "carol"];

/// Runs one scenario and checks that each of `steps` was reported.
fn scenario(server: &TestServer, name: &str, steps: &[&str]) {
    let port = server.starttls_port.to_string();
    let args = [port.as_str(), name, PASSWORD];
    let Some(stdout) = run_interop_script(server, "slixmpp_im.py", &args, &format!("scenario {name}")) else { return };
    for step in steps {
        assert!(stdout.contains(step), "scenario {name}: missing step `{step}`:\n{stdout}");
    }
}

#[test]
fn subscription_state_machine_walk() {
    let server = TestServer::start("", USERS);
    scenario(
        &server,
        "subscription",
        &[
            "step 1: subscribe",
            "step 2: subscribed",
            "step 3: mutual",
            "step 4: broadcast",
            "step 5: unsubscribe",
            "step 6: unsubscribed",
            "step 7: unsolicited subscribed",
            "step 8: pre-approval",
            "step 9: removal",
            "step 10: stored request redelivered",
        ],
    );
}

#[test]
fn presence_probes_priorities_directed_and_abrupt_loss() {
    let server = TestServer::start("", USERS);
    scenario(
        &server,
        "presence",
        &[
            "initial presence: probe answered",
            "bare JID message to highest priority",
            "abrupt disconnect announced unavailable",
            "directed presence followed by unavailable",
            "probe from a non-subscriber reveals nothing",
            "probe of an offline contact: unavailable with delay",
        ],
    );
}

#[test]
fn roster_versioning_and_errors() {
    let server = TestServer::start("", USERS);
    scenario(
        &server,
        "rosterver",
        &[
            "unchanged version: empty result",
            "stale version: full roster",
            "older version: empty result and interim pushes",
            "roster errors ok",
        ],
    );
}

#[test]
fn offline_messages_with_delay() {
    let server = TestServer::start("", USERS);
    scenario(&server, "offline", &["delivered with delay stamps", "removed after delivery"]);
}

#[test]
fn offline_quota_answers_resource_constraint() {
    let server = TestServer::start("\n[modules.settings.offline]\nmax_messages_per_user = 3\n", USERS);
    scenario(&server, "offline-quota", &["over quota: resource-constraint", "the stored three arrive in order"]);
}

#[test]
fn blocking_hides_presence_and_bounces_messages() {
    let server = TestServer::start("", USERS);
    scenario(
        &server,
        "blocking",
        &[
            "blocked: push sent, contact saw unavailable",
            "inbound: message bounced, presence hidden",
            "outbound: not-acceptable with <blocked/>",
            "unblocked: presence and messages flow again",
        ],
    );
}

#[test]
fn last_activity_of_accounts() {
    let server = TestServer::start("", USERS);
    scenario(
        &server,
        "last",
        &["online user: 0 seconds", "offline user: seconds and status", "non-subscriber: forbidden"],
    );
}
