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
use xmppd_storage::{AccessModel, AccountImport, ImportOutcome, ImportedNode, NodeConfig, PubsubItem};

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

/// Fills `server` (accounts alice, bob, carol, dave@example.test) with
/// every kind of data the export writes.
async fn fill(server: &TestServer) {
    let output = server
        .cli_stdin(
            &["roster", "import"],
            "alice@localhost bob@localhost both Bob B.\nalice@localhost juliet@example.net to\n",
        )
        .unwrap();
    assert!(output.contains("imported 2 roster item(s)"), "{output}");
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
    let set = alice.iq("set", "v1", None, "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>").await;
    assert!(set.contains("type='result'"), "{set}");
    let set = alice
        .iq(
            "set",
            "p1",
            None,
            "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color>red</color></prefs></query>",
        )
        .await;
    assert!(set.contains("type='result'"), "{set}");
    alice.send("<presence type='subscribe' to='carol@localhost'><status>Hi Carol</status></presence>").await;
    alice.send("<presence type='subscribed' to='dave@example.test'/>").await;
    alice.send("<message to='bob@localhost' type='chat' id='m1'><body>Hello &amp; good night</body></message>").await;
    let ping = alice.iq("get", "ping1", None, "<ping xmlns='urn:xmpp:ping'/>").await;
    assert!(ping.contains("type='result'"), "{ping}");
    fill_pep(server).await;
}

/// Adds the account erin@localhost (no password) with a PEP node whose
/// configuration is not the default and two items (XEP-0227 §4.10),
/// written to the store.
async fn fill_pep(server: &TestServer) {
    let config = xmppd_server::config_file::load(Some(&server.config)).unwrap();
    let stores = xmppd_server::storage::open(&config).await.unwrap();
    let node = NodeConfig {
        access_model: AccessModel::Whitelist,
        max_items: Some(10),
        title: Some("Bookmarks & more".into()),
        roster_groups_allowed: vec!["Staff".into()],
        notify_config: true,
        ..NodeConfig::default()
    };
    let items = [("orchard@conference.example", "The Orchard", 1_000), ("play@x", "&lt;Play&gt;", 2_000)]
        .into_iter()
        .map(|(id, name, published_ms)| PubsubItem {
            id: id.into(),
            publisher: Some("erin@localhost/desk".into()),
            published_ms,
            payload: format!(
                "<conference xmlns='urn:xmpp:bookmarks:1' name='{name}' autojoin='1'><nick>Al</nick></conference>"
            )
            .into_bytes(),
        })
        .collect();
    let erin = AccountImport {
        username: "erin".into(),
        pep: vec![ImportedNode { name: "urn:xmpp:bookmarks:1".into(), config: node, items }],
        ..AccountImport::default()
    };
    assert_eq!(stores.auth.import_account("localhost", &erin).await.unwrap(), ImportOutcome::Created);
}

/// `xmppd export` into a file of `server`'s directory; returns its path.
fn export_to(server: &TestServer, name: &str) -> std::path::PathBuf {
    let file = server.dir.path().join(name);
    server.cli(&["export", file.to_str().unwrap()]).unwrap();
    file
}

fn listed_accounts(server: &TestServer) -> String {
    server.cli(&["user", "list"]).unwrap()
}

/// Export, import into a fresh data directory, export again: the two files
/// are byte-identical, and a user logs in on the new server with the
/// password of the old one. A second import changes nothing.
#[tokio::test]
async fn import_round_trip_and_idempotence() {
    let old = TestServer::start("", &["alice", "bob", "carol", "dave@example.test"]);
    fill(&old).await;
    let a = export_to(&old, "a.xml");

    let new = TestServer::start("", &[]);
    assert_eq!(listed_accounts(&new), "");
    let output = new.cli(&["import", a.to_str().unwrap()]).unwrap();
    assert!(
        output.contains(
            "5 account(s) created, 0 already present, 0 skipped; 12 SCRAM credential(s), 5 roster item(s), \
             1 pending subscription request(s), 1 vCard(s), 1 private XML fragment(s), 1 offline message(s), \
             1 PEP node(s), 2 PEP item(s)"
        ),
        "{output}"
    );
    let b = export_to(&new, "b.xml");
    let (a_text, b_text) = (std::fs::read_to_string(&a).unwrap(), std::fs::read_to_string(&b).unwrap());
    assert!(a_text == b_text, "exports differ:\n{a_text}\n---\n{b_text}");
    // The PEP node arrived with its configuration and its items in order.
    assert!(a_text.contains("<value>whitelist</value>") && a_text.contains("<value>Staff</value>"), "{a_text}");
    let orchard = a_text.find("<item id='orchard@conference.example'").unwrap();
    assert!(orchard < a_text.find("<item id='play@x' publisher='erin@localhost/desk'>").unwrap(), "{a_text}");
    let config = xmppd_server::config_file::load(Some(&new.config)).unwrap();
    let pubsub = xmppd_server::storage::open(&config).await.unwrap().pubsub;
    let node = pubsub.node("localhost", "erin", "urn:xmpp:bookmarks:1").await.unwrap().unwrap();
    assert_eq!((node.access_model, node.max_items, node.notify_config), (AccessModel::Whitelist, Some(10), true));
    assert_eq!(node.title.as_deref(), Some("Bookmarks & more"));
    let items = pubsub.items("localhost", "erin", "urn:xmpp:bookmarks:1", None).await.unwrap();
    let ids: Vec<&str> = items.iter().map(|item| item.id.as_str()).collect();
    assert_eq!(ids, ["play@x", "orchard@conference.example"], "newest first");

    // The old password works on the new server (SCRAM-SHA-256 with the
    // imported keys), and the imported data is served: to a slixmpp
    // client, or to the project's raw client when slixmpp is missing.
    let port = new.starttls_port.to_string();
    let expected = [
        "check",
        &port,
        "alice",
        common::PASSWORD,
        "roster=nurse@example.net|none|Nurse|Staff,Verona",
        "roster=bob@localhost|both|Bob B.|",
        "vcard-fn=Alice",
    ];
    if let Some(out) = common::run_interop_script(&new, "slixmpp_migrate.py", &expected, "slixmpp check") {
        assert!(out.contains("ok: vcard-fn=Alice"), "{out}");
    } else {
        let mut alice = common::RawClient::connect(new.starttls_port).await;
        alice.login("alice", "localhost", Some("laptop")).await;
        let roster = alice.iq("get", "r1", None, "<query xmlns='jabber:iq:roster'/>").await;
        assert!(roster.contains("nurse@example.net") && roster.contains("<group>Verona</group>"), "{roster}");
        let vcard = alice.iq("get", "v1", None, "<vCard xmlns='vcard-temp'/>").await;
        assert!(vcard.contains("<FN>Alice</FN>"), "{vcard}");
    }
    let mut bob = common::RawClient::connect(new.starttls_port).await;
    bob.login("bob", "localhost", None).await;
    bob.send("<presence/>").await;
    bob.expect("Hello &amp; good night").await;

    // Idempotence, on a third server: the second run finds every account.
    let third = TestServer::start("", &[]);
    third.cli(&["import", a.to_str().unwrap()]).unwrap();
    let c1 = std::fs::read(export_to(&third, "c1.xml")).unwrap();
    let output = third.cli(&["import", a.to_str().unwrap()]).unwrap();
    assert!(output.contains("0 account(s) created, 5 already present, 0 skipped"), "{output}");
    let c2 = std::fs::read(export_to(&third, "c2.xml")).unwrap();
    assert!(c1 == c2, "a second import changed the data");
    assert_eq!(c1, a_text.as_bytes());
}

/// A truncated file, and a file with a DTD or an entity: refused with the
/// line and column, and nothing is written, not even the users before the
/// problem.
#[tokio::test]
async fn import_refuses_malformed_files_and_writes_nothing() {
    let old = TestServer::start("", &["alice", "bob", "carol", "dave@example.test"]);
    let a = std::fs::read_to_string(export_to(&old, "a.xml")).unwrap();
    let new = TestServer::start("", &[]);

    // Cut inside the last user: the users before it are complete.
    let mut cut = a.rfind("<user ").unwrap() + 20;
    while !a.is_char_boundary(cut) {
        cut += 1;
    }
    let truncated = new.dir.path().join("truncated.xml");
    std::fs::write(&truncated, &a[..cut]).unwrap();
    let error = new.cli(&["import", truncated.to_str().unwrap()]).unwrap_err();
    let prefix = format!("error: {}:", truncated.display());
    assert!(error.contains(&prefix), "{error}");
    let position = error.split(&prefix).nth(1).unwrap();
    let mut parts = position.splitn(3, ':');
    assert!(parts.next().unwrap().parse::<u64>().is_ok(), "no line: {error}");
    assert!(parts.next().unwrap().parse::<u64>().is_ok(), "no column: {error}");
    assert!(error.contains("unexpected end of file"), "{error}");
    assert_eq!(listed_accounts(&new), "");

    let dtd = new.dir.path().join("dtd.xml");
    std::fs::write(
        &dtd,
        "<?xml version='1.0'?>\n<!DOCTYPE server-data [<!ENTITY pw 'secret'>]>\n\
         <server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='eve' password='&pw;'/></host>\
         </server-data>\n",
    )
    .unwrap();
    let error = new.cli(&["import", dtd.to_str().unwrap()]).unwrap_err();
    assert!(error.contains(&format!("{}:2:", dtd.display())), "{error}");
    assert!(error.contains("restricted XML parser"), "{error}");
    assert_eq!(listed_accounts(&new), "");

    let entity = new.dir.path().join("entity.xml");
    std::fs::write(
        &entity,
        "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='localhost'>\n<user name='mallory' password='x'/>\n\
         <user name='eve' password='&amp;&pw;'/>\n</host>\n</server-data>\n",
    )
    .unwrap();
    let error = new.cli(&["import", entity.to_str().unwrap()]).unwrap_err();
    assert!(error.contains(&format!("{}:4:", entity.display())), "{error}");
    assert_eq!(listed_accounts(&new), "");
}

/// Duplicate accounts, an invalid JID in a roster and a host that is not
/// served: those users are skipped and listed with their location, the
/// others are imported (a plaintext password becomes SCRAM credentials
/// that work), and the exit status is non-zero.
#[tokio::test]
async fn import_skips_bad_records_and_imports_the_rest() {
    let server = TestServer::start("", &[]);
    let file = server.dir.path().join("mixed.xml");
    let password = common::PASSWORD;
    std::fs::write(
        &file,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='localhost'>
    <user name='good' password='{password}'>
      <query xmlns='jabber:iq:roster'><item jid='twin@localhost' subscription='both'/></query>
    </user>
    <user name='twin' password='a'/>
    <user name='badroster' password='b'>
      <query xmlns='jabber:iq:roster'><item jid='not@valid@jid' subscription='both'/></query>
    </user>
    <user name='Twin' password='c'/>
    <user name='other' password='d'/>
  </host>
  <host jid='elsewhere.test'>
    <user name='far' password='e'/>
  </host>
</server-data>
"
        ),
    )
    .unwrap();
    let error = server.cli(&["import", file.to_str().unwrap()]).unwrap_err();
    let name = file.display().to_string();
    assert!(error.contains("2 account(s) created, 0 already present, 4 skipped"), "{error}");
    assert!(error.contains(&format!("skipped: {name}:11:5: duplicate user 'twin' of localhost")), "{error}");
    assert!(error.contains(&format!("(first at {name}:7:5)")), "{error}");
    let invalid = error.lines().find(|line| line.contains("badroster")).unwrap_or_default();
    assert!(invalid.starts_with(&format!("skipped: {name}:9:")), "{error}");
    assert!(error.contains("host elsewhere.test is not served (server.hosts): 1 account(s) skipped"), "{error}");
    assert!(error.contains("error: 4 user record(s) skipped"), "{error}");
    assert_eq!(listed_accounts(&server), "good@localhost\nother@localhost\n");

    // The plaintext password was turned into working SCRAM credentials.
    let mut good = common::RawClient::connect(server.starttls_port).await;
    good.login("good", "localhost", None).await;
    let roster = good.iq("get", "r1", None, "<query xmlns='jabber:iq:roster'/>").await;
    assert!(roster.contains("twin@localhost"), "{roster}");

    // Again: the same records are skipped, the others are present.
    let error = server.cli(&["import", file.to_str().unwrap()]).unwrap_err();
    assert!(error.contains("0 account(s) created, 2 already present, 4 skipped"), "{error}");

    let help = Command::new(binary()).args(["import", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("caches the rosters of online users"), "{help}");
}

/// A PEP item without an id and a node with an invalid access model are
/// skipped with their location; the rest of the account, its other node
/// included, is imported, and the exit status is non-zero.
#[tokio::test]
async fn import_skips_bad_pep_records_with_their_location() {
    let server = TestServer::start("", &[]);
    let file = server.dir.path().join("pep.xml");
    std::fs::write(
        &file,
        "<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='localhost'>
    <user name='romeo' password='x'>
      <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
        <configure node='urn:example:bad'><x xmlns='jabber:x:data' type='submit'>
          <field var='pubsub#access_model'><value>everyone</value></field>
          <field var='urn:example:unknown'><value>ignored</value></field></x></configure>
        <configure node='http://jabber.org/protocol/nick'><x xmlns='jabber:x:data' type='submit'>
          <field var='pubsub#access_model'><value>open</value></field>
          <field var='urn:example:unknown'><value>ignored</value></field></x></configure>
      </pubsub>
      <pubsub xmlns='http://jabber.org/protocol/pubsub'>
        <items node='urn:example:bad'><item id='1'/></items>
        <items node='http://jabber.org/protocol/nick'>
          <item><nick xmlns='http://jabber.org/protocol/nick'>Ro</nick></item>
          <item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Romy</nick></item>
        </items>
      </pubsub>
    </user>
  </host>
</server-data>
",
    )
    .unwrap();
    let error = server.cli(&["import", file.to_str().unwrap()]).unwrap_err();
    let name = file.display().to_string();
    assert!(error.contains("1 account(s) created, 0 already present, 0 skipped"), "{error}");
    assert!(error.contains("1 PEP node(s), 1 PEP item(s)"), "{error}");
    assert!(
        error.contains(&format!(
            "skipped: {name}:5:9: user 'romeo' of localhost: PEP node 'urn:example:bad': invalid value \"everyone\" \
             for pubsub#access_model; skipped"
        )),
        "{error}"
    );
    let item = error.lines().find(|line| line.contains("without an 'id'")).unwrap_or_default();
    assert!(item.starts_with(&format!("skipped: {name}:14:9: user 'romeo'")), "{error}");
    assert!(error.contains("error: 0 user record(s) and 2 PEP record(s) skipped"), "{error}");
    let export = std::fs::read_to_string(export_to(&server, "out.xml")).unwrap();
    assert!(!export.contains("urn:example:bad"), "{export}");
    assert!(export.contains("<items node='http://jabber.org/protocol/nick'><item id='current'>"), "{export}");
    assert!(export.contains("<field var='pubsub#access_model'><value>open</value></field>"), "{export}");
}
