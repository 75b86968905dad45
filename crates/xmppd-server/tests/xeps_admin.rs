//! Account management against the real binary: in-band registration,
//! password change and account removal (XEP-0077), ad-hoc commands
//! (XEP-0050) and service administration (XEP-0133). Driven by the real
//! slixmpp client (`tests/interop/slixmpp_admin.py`) and, so that something
//! runs even without Python, by the raw test client.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, RawClient, TestServer, run_interop_script};

const REGISTRATION_ON: &str = "[modules.settings.register]\nallow_registration = true\n";

/// Runs the slixmpp script in `mode` and checks that it printed every line
/// of `expected`; skips (returns) when slixmpp is unavailable.
fn run_slixmpp(server: &TestServer, mode: &str, expected: &[&str]) {
    let port = server.starttls_port.to_string();
    let args = [port.as_str(), mode, PASSWORD];
    let Some(stdout) = run_interop_script(server, "slixmpp_admin.py", &args, &format!("slixmpp ({mode})")) else {
        return;
    };
    for line in expected {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn slixmpp_in_band_registration() {
    let server = TestServer::start_with_tables(REGISTRATION_ON, &[]);
    run_slixmpp(
        &server,
        "ibr",
        &[
            "registered newbie in band and logged in",
            "new account logs in again",
            "registration of an existing name refused: conflict",
        ],
    );
}

#[test]
fn slixmpp_in_band_registration_disabled() {
    let server = TestServer::start("", &[]);
    run_slixmpp(&server, "ibr-disabled", &["registration not offered when disabled"]);
}

#[test]
fn slixmpp_registration_rate_limit() {
    let server = TestServer::start_with_tables(&format!("{REGISTRATION_ON}registrations_per_ip_per_hour = 2\n"), &[]);
    run_slixmpp(&server, "ibr-limit", &["rate limit hit on the third registration: not-acceptable/wait"]);
}

#[test]
fn slixmpp_password_change_and_account_removal() {
    let server = TestServer::start("", &["alice", "bob"]);
    run_slixmpp(
        &server,
        "account",
        &[
            "password changed: new password logs in, old fails",
            "account removal answered with a result",
            "every session of the removed account closed with not-authorized",
            "removed account cannot log in",
        ],
    );
}

#[test]
fn slixmpp_service_administration() {
    let server = TestServer::start_with_server("", "admins = [\"admin@localhost\"]", &["admin", "bob"]);
    run_slixmpp(
        &server,
        "admin",
        &[
            "admin sees the service administration commands",
            "add-user: carol created and logs in",
            "add-user of an existing account: conflict",
            "change-user-password: new password logs in, old fails",
            "get-online-users-list and -num: 3 online",
            "delete-user: carol's session closed and login fails",
            "non-admin: no commands listed, execution forbidden",
            "cancelled command session is gone",
        ],
    );
}

/// STARTTLS, then SCRAM-SHA-256 with `password`; returns the outcome.
async fn try_login(port: u16, user: &str, password: &str) -> bool {
    let mut client = RawClient::connect(port).await;
    client.open_secure("localhost").await;
    client.scram_sha256(user, password).await;
    let outcome = client.expect("xmlns='urn:ietf:params:xml:ns:xmpp-sasl'").await;
    outcome.contains("<success")
}

const REGISTER_FEATURE: &str = "<register xmlns='http://jabber.org/features/iq-register'/>";

/// XEP-0077 §3.1 and §8 on the wire, before authentication.
#[tokio::test]
async fn raw_pre_auth_registration() {
    let server = TestServer::start_with_tables(REGISTRATION_ON, &["alice"]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.send(common::header("localhost")).await;
    let plain_features = client.expect("</stream:features>").await;
    assert!(!plain_features.contains("iq-register"), "offered before TLS: {plain_features}");
    client.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await;
    client.expect("<proceed").await;
    client.start_tls().await;
    client.send(common::header("localhost")).await;
    let features = client.expect("</stream:features>").await;
    assert!(features.contains(REGISTER_FEATURE), "{features}");

    let fields = client.iq("get", "r1", None, "<query xmlns='jabber:iq:register'/>").await;
    assert!(fields.contains("type='result'") && fields.contains("<username/><password/>"), "{fields}");
    let missing =
        client.iq("set", "r2", None, "<query xmlns='jabber:iq:register'><username>x</username></query>").await;
    assert!(missing.contains("<not-acceptable"), "{missing}");
    let empty = client
        .iq("set", "r3", None, "<query xmlns='jabber:iq:register'><username>x</username><password/></query>")
        .await;
    assert!(empty.contains("<not-acceptable"), "{empty}");
    let invalid = client
        .iq(
            "set",
            "r4",
            None,
            "<query xmlns='jabber:iq:register'><username>a@b</username><password>p</password></query>",
        )
        .await;
    assert!(invalid.contains("<not-acceptable"), "{invalid}");
    let taken = client
        .iq(
            "set",
            "r5",
            Some("localhost"),
            "<query xmlns='jabber:iq:register'><username>ALICE</username><password>p</password></query>",
        )
        .await;
    assert!(taken.contains("<conflict"), "{taken}");
    let remove = client.iq("set", "r6", None, "<query xmlns='jabber:iq:register'><remove/></query>").await;
    assert!(remove.contains("<unexpected-request"), "{remove}");
    let elsewhere = client
        .iq(
            "set",
            "r7",
            Some("example.test"),
            "<query xmlns='jabber:iq:register'><username>x</username><password>p</password></query>",
        )
        .await;
    assert!(elsewhere.contains("<service-unavailable"), "{elsewhere}");
    let created = client
        .iq(
            "set",
            "r8",
            None,
            "<query xmlns='jabber:iq:register'><username>Romeo</username><password>wherefore art</password></query>",
        )
        .await;
    assert_eq!(created, "<iq type='result' id='r8'/>");
    // The same stream goes on to authenticate with the new account.
    client.scram_sha256("romeo", "wherefore art").await;
    client.expect("<success").await;
    assert!(try_login(server.starttls_port, "romeo", "wherefore art").await);
    assert!(!try_login(server.starttls_port, "romeo", PASSWORD).await);
}

/// Registration off: not offered, and the pre-auth query is answered with
/// service-unavailable (XEP-0077 §3.1); other pre-auth stanzas still end
/// the stream with not-authorized (RFC 6120 §4.9.3.12).
#[tokio::test]
async fn raw_pre_auth_registration_disabled() {
    let server = TestServer::start("", &[]);
    let mut client = RawClient::connect(server.starttls_port).await;
    client.open_secure("localhost").await;
    let reply = client.iq("get", "r1", None, "<query xmlns='jabber:iq:register'/>").await;
    assert!(reply.contains("<service-unavailable"), "{reply}");
    client.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let closed = client.read_until_closed().await;
    assert!(closed.contains("<not-authorized"), "{closed}");

    let mut client = RawClient::connect(server.starttls_port).await;
    client.send(common::header("localhost")).await;
    client.expect("</stream:features>").await;
    client.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await;
    client.expect("<proceed").await;
    client.start_tls().await;
    client.send(common::header("localhost")).await;
    let features = client.expect("</stream:features>").await;
    assert!(!features.contains("iq-register"), "{features}");
}

/// XEP-0077 §3.2 with removal disabled, §3.3 edge cases, and the disco
/// feature (§10), after authentication.
#[tokio::test]
async fn raw_account_updates() {
    let server = TestServer::start_with_tables(
        "[modules.settings.register]\nallow_account_removal = false\n",
        &["alice", "bob"],
    );
    let mut alice = RawClient::connect(server.starttls_port).await;
    alice.login("alice", "localhost", Some("raw")).await;
    let info = alice.iq("get", "d1", Some("localhost"), "<query xmlns='http://jabber.org/protocol/disco#info'/>").await;
    assert!(info.contains("<feature var='jabber:iq:register'/>"), "{info}");
    assert!(info.contains("<feature var='http://jabber.org/protocol/commands'/>"), "{info}");
    let registered = alice.iq("get", "g1", None, "<query xmlns='jabber:iq:register'/>").await;
    assert!(registered.contains("<registered/><username>alice</username>"), "{registered}");
    let remove = alice.iq("set", "x1", None, "<query xmlns='jabber:iq:register'><remove/></query>").await;
    assert!(remove.contains("<not-allowed"), "{remove}");
    let not_alone = alice
        .iq("set", "x2", None, "<query xmlns='jabber:iq:register'><remove/><username>alice</username></query>")
        .await;
    assert!(not_alone.contains("<bad-request"), "{not_alone}");
    let others = alice
        .iq(
            "set",
            "x3",
            None,
            "<query xmlns='jabber:iq:register'><username>bob</username><password>mine now</password></query>",
        )
        .await;
    assert!(others.contains("<forbidden"), "{others}");
    let other_account = alice.iq("get", "x4", Some("bob@localhost"), "<query xmlns='jabber:iq:register'/>").await;
    assert!(other_account.contains("<forbidden"), "{other_account}");
    let empty = alice
        .iq("set", "x5", None, "<query xmlns='jabber:iq:register'><username>alice</username><password/></query>")
        .await;
    assert!(empty.contains("<bad-request"), "{empty}");
    assert!(try_login(server.starttls_port, "alice", PASSWORD).await, "an empty password changed the password");
    let changed = alice
        .iq(
            "set",
            "x6",
            Some("localhost"),
            "<query xmlns='jabber:iq:register'><username>alice</username><password>n3w</password></query>",
        )
        .await;
    assert!(changed.contains("type='result'"), "{changed}");
    assert!(try_login(server.starttls_port, "alice", "n3w").await);
    assert!(!try_login(server.starttls_port, "alice", PASSWORD).await);
    assert!(try_login(server.starttls_port, "bob", PASSWORD).await);
}

/// Ad-hoc commands without an admin: the list is empty, execution and
/// command info are forbidden, unknown nodes are item-not-found.
#[tokio::test]
async fn raw_commands_for_non_admins() {
    let server = TestServer::start_with_server("", "admins = [\"admin@localhost\"]", &["admin", "bob"]);
    let mut bob = RawClient::connect(server.starttls_port).await;
    bob.login("bob", "localhost", Some("raw")).await;
    let items = bob
        .iq(
            "get",
            "i1",
            Some("localhost"),
            "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>",
        )
        .await;
    assert!(items.contains("type='result'") && !items.contains("<item"), "{items}");
    let execute = bob.iq("set",
        "e1",
        Some("localhost"),
        "<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#add-user' action='execute'/>",
    )
    .await;
    assert!(execute.contains("<forbidden"), "{execute}");
    let unknown = bob
        .iq("set", "e2", Some("localhost"), "<command xmlns='http://jabber.org/protocol/commands' node='urn:nope'/>")
        .await;
    assert!(unknown.contains("<item-not-found"), "{unknown}");

    let mut admin = RawClient::connect(server.starttls_port).await;
    admin.login("admin", "localhost", Some("raw")).await;
    let items = admin
        .iq(
            "get",
            "i2",
            Some("localhost"),
            "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>",
        )
        .await;
    assert!(
        items.contains("<item jid='localhost' node='http://jabber.org/protocol/admin#add-user' name='Add a User'/>"),
        "{items}"
    );
    let stage1 = admin.iq("set",
        "e3",
        Some("localhost"),
        "<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#delete-user'/>",
    )
    .await;
    assert!(stage1.contains("status='executing'"), "{stage1}");
    assert!(stage1.contains("<actions execute='complete'><complete/></actions>"), "{stage1}");
    let start = stage1.find("sessionid='").unwrap() + "sessionid='".len();
    let sessionid = &stage1[start..start + stage1[start..].find('\'').unwrap()];
    let stolen = bob.iq("set",
        "e4",
        Some("localhost"),
        &format!(
            "<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#delete-user' sessionid='{sessionid}' action='cancel'/>"
        ),
    )
    .await;
    assert!(stolen.contains("<forbidden"), "{stolen}");
    let without_form = admin.iq("set",
        "e5",
        Some("localhost"),
        &format!(
            "<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#delete-user' sessionid='{sessionid}'/>"
        ),
    )
    .await;
    // XEP-0050 §4.6: the specific conditions.
    let bad_payload = "<bad-payload xmlns='http://jabber.org/protocol/commands'/>";
    assert!(without_form.contains("<bad-request") && without_form.contains(bad_payload), "{without_form}");
    let malformed = admin
        .iq(
            "set",
            "e6",
            Some("localhost"),
            "<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#delete-user' action='jump'/>",
        )
        .await;
    assert!(malformed.contains("<malformed-action xmlns='http://jabber.org/protocol/commands'/>"), "{malformed}");
    let expired = admin
        .iq(
            "set",
            "e7",
            Some("localhost"),
            "<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#delete-user' sessionid='no-such-session' action='cancel'/>",
        )
        .await;
    assert!(
        expired.contains("<not-allowed")
            && expired.contains("<session-expired xmlns='http://jabber.org/protocol/commands'/>"),
        "{expired}"
    );
}
