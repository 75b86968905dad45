//! XEP-0163 Personal Eventing Protocol, checked with real slixmpp clients
//! (their own XEP-0115 caps and XEP-0163 interests) against the real
//! binary (scenarios in tests/interop/slixmpp_pep.py).
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestServer, run_interop_script};

const USERS: &[&str] = &["alice", "bob", "carol"];

/// Runs one scenario and checks that each of `steps` was reported.
fn scenario(name: &str, steps: &[&str]) {
    let server = TestServer::start("", USERS);
    let port = server.starttls_port.to_string();
    let args = [port.as_str(), name, PASSWORD];
    let Some(stdout) = run_interop_script(&server, "slixmpp_pep.py", &args, &format!("scenario {name}")) else {
        return;
    };
    for step in steps {
        assert!(stdout.contains(step), "scenario {name}: missing step `{step}`:\n{stdout}");
    }
}

#[test]
fn avatar_conversion_between_pep_and_vcard() {
    scenario(
        "avatar",
        &[
            "disco: pep-vcard-conversion announced",
            "PEP avatar copied into the vCard",
            "presence carries the avatar hash",
            "vCard avatar published to PEP and announced in presence",
            "avatar withdrawn from PEP and vCard",
        ],
    );
}

#[test]
fn pep_publish_notify_access_and_owner_use_cases() {
    scenario(
        "pep",
        &[
            "disco: pep identity and publish-options",
            "publish: contact and own resource notified, stranger not",
            "retrieve: subscriber reads, stranger refused, only the owner publishes",
            "last published item sent on presence",
            "publish-options: open node for strangers, precondition-not-met on mismatch",
            "whitelist node: owner only",
            "disco#items: nodes as each requester may see them",
            "configure: form read and max_items lowered",
            "new subscriber gets the last item",
            "retract and delete: notified, then gone",
        ],
    );
}
