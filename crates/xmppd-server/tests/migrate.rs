//! `xmppd export`: XEP-0227 (PIEFXIS) export of accounts, rosters,
//! subscription requests, vCards, private XML and offline messages, read
//! back with `xmppd_migrate::Reader`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{TestServer, binary};
use xmppd_migrate::{Password, Reader, ScramHash, Subscription, UserData};

/// (host, username).
type Account = (String, String);
/// One SCRAM credential: hash, iterations, salt, StoredKey, ServerKey.
type Credential = (ScramHash, u32, Vec<u8>, Vec<u8>, Vec<u8>);

/// Every user of an export file, keyed by (host, username), and the keys
/// in file order.
fn read_export(reader: Reader<'_>) -> (Vec<Account>, BTreeMap<Account, UserData>) {
    let mut order = Vec::new();
    let mut users = BTreeMap::new();
    for item in reader {
        let (host, user) = item.expect("a valid export");
        let key = (host.as_str().to_owned(), user.username.clone());
        order.push(key.clone());
        assert!(users.insert(key, user).is_none(), "a user exported twice");
    }
    (order, users)
}

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// The credentials the store holds for an account, for comparison.
async fn stored_credentials(server: &TestServer, host: &str, user: &str) -> Vec<Credential> {
    let config = xmppd_server::config_file::load(Some(&server.config)).unwrap();
    let stores = xmppd_server::storage::open(&config).await.unwrap();
    let mut all = Vec::new();
    for hash in [ScramHash::Sha1, ScramHash::Sha256, ScramHash::Sha512] {
        let stored = stores.auth.get_credential(host, user, hash.as_str()).await.unwrap().unwrap();
        all.push((hash, stored.iterations, stored.salt, stored.stored_key, stored.server_key));
    }
    all
}

fn exported_credentials(user: &UserData) -> Vec<Credential> {
    let Some(Password::Scram(entries)) = &user.password else { panic!("no SCRAM credentials: {user:?}") };
    entries
        .iter()
        .map(|e| (e.mechanism_hash, e.iterations, e.salt.clone(), e.stored_key.clone(), e.server_key.clone()))
        .collect()
}

/// Everything a user can have comes out of `xmppd export` as stored, and
/// reads back with the XEP-0227 reader.
#[tokio::test]
async fn export_writes_every_kind_of_data() {
    let server = TestServer::start("", &["alice", "bob", "carol", "dave@example.test"]);
    let output = server
        .cli_stdin(
            &["roster", "import"],
            "alice@localhost bob@localhost both Bob B.\nalice@localhost juliet@example.net to\n",
        )
        .unwrap();
    assert!(output.contains("imported 2 roster item(s)"), "{output}");

    let before = now_ms();
    let mut alice = common::RawClient::connect(server.starttls_port).await;
    alice.login("alice", "localhost", Some("desk")).await;
    let set = alice
        .iq(
            "set",
            "r1",
            None,
            "<query xmlns='jabber:iq:roster'><item jid='nurse@example.net' name='Nurse'>\
             <group>Staff</group><group>Verona</group></item></query>",
        )
        .await;
    assert!(set.contains("type='result'"), "{set}");
    let set =
        alice.iq("set", "v1", None, "<vCard xmlns='vcard-temp'><FN>Alice</FN><NICKNAME>al</NICKNAME></vCard>").await;
    assert!(set.contains("type='result'"), "{set}");
    let set = alice
        .iq(
            "set",
            "p1",
            None,
            "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color>red</color></prefs>\
             <notes xmlns='urn:example:notes' count='2'/></query>",
        )
        .await;
    assert!(set.contains("type='result'"), "{set}");
    // A pending-out to carol (pending-in for her, as she is offline), a
    // pre-approval of dave, an offline message to bob.
    alice.send("<presence type='subscribe' to='carol@localhost'><status>Hi Carol</status></presence>").await;
    alice.send("<presence type='subscribed' to='dave@example.test'/>").await;
    alice.send("<message to='bob@localhost' type='chat' id='m1'><body>Hello &amp; good night</body></message>").await;
    // Stanzas are handled in order: once this answers, the above are stored.
    let ping = alice.iq("get", "ping1", None, "<ping xmlns='urn:xmpp:ping'/>").await;
    assert!(ping.contains("type='result'"), "{ping}");
    let after = now_ms();

    let file = server.dir.path().join("export.xml");
    let output = server.cli(&["export", file.to_str().unwrap()]).unwrap();
    assert!(
        output.contains(
            "exported 4 account(s) on 2 host(s): 12 SCRAM credential(s), 5 roster item(s), \
             1 pending subscription request(s), 1 vCard(s), 2 private XML fragment(s), 1 offline message(s)"
        ),
        "{output}"
    );
    let (order, users) = read_export(Reader::open(&file).unwrap());
    let key = |host: &str, user: &str| (host.to_owned(), user.to_owned());
    assert_eq!(
        order,
        [key("localhost", "alice"), key("localhost", "bob"), key("localhost", "carol"), key("example.test", "dave")]
    );

    // Credentials: SCRAM-SHA-1/256/512 exactly as stored, at the configured
    // (default) iteration count; never a plaintext password.
    for (host, user) in &order {
        let exported = exported_credentials(&users[&key(host, user)]);
        assert_eq!(
            exported.iter().map(|c| c.0).collect::<Vec<_>>(),
            [ScramHash::Sha1, ScramHash::Sha256, ScramHash::Sha512]
        );
        assert!(exported.iter().all(|c| c.1 == 4096), "{user}");
        assert!(exported == stored_credentials(&server, host, user).await, "{user}@{host}: credentials differ");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("password="), "{text}");
    assert!(!text.contains(common::PASSWORD));

    // Alice: roster (imported, set by IQ, created by subscription stanzas),
    // vCard, private XML.
    let alice = &users[&key("localhost", "alice")];
    let roster: Vec<_> = alice
        .roster
        .iter()
        .map(|i| (i.jid.as_str(), i.name.as_deref(), i.subscription, i.ask, i.approved, i.groups.clone()))
        .collect();
    assert_eq!(
        roster,
        [
            ("bob@localhost", Some("Bob B."), Subscription::Both, false, false, vec![]),
            ("carol@localhost", None, Subscription::None, true, false, vec![]),
            ("dave@example.test", None, Subscription::None, false, true, vec![]),
            ("juliet@example.net", None, Subscription::To, false, false, vec![]),
            (
                "nurse@example.net",
                Some("Nurse"),
                Subscription::None,
                false,
                false,
                vec!["Staff".into(), "Verona".into()]
            ),
        ]
    );
    assert!(alice.pending_in.is_empty() && alice.offline.is_empty());
    let vcard = alice.vcard.as_ref().expect("alice's vCard");
    assert!(vcard.is("vCard", "vcard-temp"));
    assert_eq!(vcard.get_child("FN", "vcard-temp").map(|e| e.text()).as_deref(), Some("Alice"));
    assert_eq!(vcard.get_child("NICKNAME", "vcard-temp").map(|e| e.text()).as_deref(), Some("al"));
    let mut private: Vec<_> = alice.private.iter().map(|e| (e.name(), e.ns())).collect();
    private.sort_unstable();
    assert_eq!(private, [("notes", "urn:example:notes"), ("prefs", "urn:example:prefs")]);
    let prefs = alice.private.iter().find(|e| e.name() == "prefs").unwrap();
    assert_eq!(prefs.get_child("color", "urn:example:prefs").map(|e| e.text()).as_deref(), Some("red"));
    let notes = alice.private.iter().find(|e| e.name() == "notes").unwrap();
    assert_eq!(notes.attr("count"), Some("2"));

    // Bob: the offline message, with the stamp of when it was stored.
    let bob = &users[&key("localhost", "bob")];
    assert_eq!(bob.offline.len(), 1, "{bob:?}");
    let message = &bob.offline[0];
    let stamp = message.stamp.expect("a stamp").unix_ms();
    assert!((before - 1000..=after + 1000).contains(&stamp), "{stamp} not in {before}..{after}");
    let stanza = String::from_utf8(message.stanza.clone()).unwrap();
    assert!(stanza.contains("<body>Hello &amp; good night</body>"), "{stanza}");
    assert!(stanza.contains("from='alice@localhost/desk'") && stanza.contains("id='m1'"), "{stanza}");
    assert!(bob.roster.is_empty() && bob.vcard.is_none() && bob.private.is_empty());

    // Carol: alice's subscription request, status kept.
    let carol = &users[&key("localhost", "carol")];
    assert_eq!(carol.pending_in.len(), 1, "{carol:?}");
    assert_eq!(carol.pending_in[0].from.as_str(), "alice@localhost");
    assert_eq!(carol.pending_in[0].status.as_deref(), Some("Hi Carol"));

    // Dave, on the other host: only credentials.
    let dave = &users[&key("example.test", "dave")];
    assert!(dave.roster.is_empty() && dave.pending_in.is_empty() && dave.offline.is_empty() && dave.vcard.is_none());

    // The export only read: bob still gets his message.
    let mut bob = common::RawClient::connect(server.starttls_port).await;
    bob.login("bob", "localhost", None).await;
    bob.send("<presence/>").await;
    bob.expect("Hello &amp; good night").await;
}

/// `--host` exports one host; an unknown host is an error and leaves no
/// file; `-` writes to standard output and the summary to standard error.
#[tokio::test]
async fn export_host_filter_stdout_and_errors() {
    let server = TestServer::start("", &["alice", "dave@example.test", "erin@example.test"]);
    let file = server.dir.path().join("one-host.xml");
    let output = server.cli(&["export", "--host", "example.test", file.to_str().unwrap()]).unwrap();
    assert!(output.contains("exported 2 account(s) on 1 host(s)"), "{output}");
    let (order, _) = read_export(Reader::open(&file).unwrap());
    assert_eq!(order, [("example.test".to_owned(), "dave".to_owned()), ("example.test".to_owned(), "erin".to_owned())]);

    let missing = server.dir.path().join("missing.xml");
    let error = server.cli(&["export", "--host", "nowhere.test", missing.to_str().unwrap()]).unwrap_err();
    assert!(error.contains("`nowhere.test` is not a configured host"), "{error}");
    assert!(!Path::new(&missing).exists());

    let output = Command::new(binary()).arg("--config").arg(&server.config).args(["export", "-"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exported 3 account(s) on 2 host(s)"), "{stderr}");
    let (order, users) = read_export(Reader::new(output.stdout.as_slice()));
    assert_eq!(order.len(), 3, "{order:?}");
    assert!(users.values().all(|u| matches!(&u.password, Some(Password::Scram(e)) if e.len() == 3)));

    let help = Command::new(binary()).args(["export", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("a running server may change data during the export"), "{help}");
}
