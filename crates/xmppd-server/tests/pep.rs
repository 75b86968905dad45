//! XEP-0163 Personal Eventing Protocol, checked with real slixmpp clients
//! (their own XEP-0115 caps and XEP-0163 interests) against the real
//! binary (scenarios in tests/interop/slixmpp_pep.py).
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestServer, run_interop_script};

const USERS: &[&str] = &["alice", "bob", "carol"];

#[test]
fn pep_publish_notify_access_and_owner_use_cases() {
    let server = TestServer::start("", USERS);
    let port = server.starttls_port.to_string();
    let args = [port.as_str(), "pep", PASSWORD];
    let Some(stdout) = run_interop_script(&server, "slixmpp_pep.py", &args, "scenario pep") else { return };
    for step in [
        "disco: pep identity and publish-options",
        "publish: contact and own resource notified, stranger not",
        "retrieve: subscriber reads, stranger refused, only the owner publishes",
        "last published item sent on presence",
        "publish-options: open node for strangers, precondition-not-met on mismatch",
        "whitelist node: owner only",
        "disco#items: nodes as each requester may see them",
        "configure: form read and max_items lowered",
        "retract and delete: notified, then gone",
    ] {
        assert!(stdout.contains(step), "missing step `{step}`:\n{stdout}");
    }
}
