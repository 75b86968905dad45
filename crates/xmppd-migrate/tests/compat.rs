//! Exports as ejabberd and Prosody write them (fixtures under
//! `tests/data/ejabberd/` and `tests/data/prosody/`, in the exact shape of
//! `src/ejabberd_piefxis.erl` and `plugins/mod_storage_xep0227.lua`).
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{data, read, run};
use xmppd_migrate::{Password, Reader, ScramEntry, ScramHash, Subscription};
use xmppd_xml::Element;

// SCRAM keys of the password "pencil" with 4096 iterations, computed
// independently (Python hashlib).
const SHA1_SALT: &str = "c2FsdHNhbHQ=";
const SHA1_STORED: &str = "Fn1M1QXmUelgJVhpuC1vK4LoDVE=";
const SHA1_SERVER: &str = "U3rALh9JK8df+UhZaAHYGFsl/mw=";
const SHA256_SALT: &str = "cGVwcGVycGVwcGVy";
const SHA256_STORED: &str = "TQOZktwd5lsGozP/R9ldsunyL0LCI4SgJS7qHL9kDzg=";
const SHA256_SERVER: &str = "pXt/CZUQH7UptUvBi2zaAcXNmyH5FFkF8N7qgtr262I=";

fn b64(text: &str) -> Vec<u8> {
    STANDARD.decode(text).unwrap()
}

fn scram(password: &Option<Password>) -> &ScramEntry {
    match password {
        Some(Password::Scram(entries)) if entries.len() == 1 => &entries[0],
        other => panic!("expected one SCRAM entry, got {other:?}"),
    }
}

#[test]
fn ejabberd_export_piefxis() {
    // The main file only includes the host file, whose root is <host/>.
    let outcome = run(Reader::open(data("ejabberd/20240102-030405.xml")).unwrap());
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(
        outcome.names(),
        ["alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org", "eve@example.org"]
    );

    // ejabberd 21.12+: the XEP-0227 1.1 form.
    let alice = outcome.user("example.org", "alice");
    let entry = scram(&alice.password);
    assert_eq!(entry.mechanism_hash, ScramHash::Sha256);
    assert_eq!((entry.iterations, &entry.salt), (4096, &b64(SHA256_SALT)));
    assert_eq!((&entry.stored_key, &entry.server_key), (&b64(SHA256_STORED), &b64(SHA256_SERVER)));
    assert_eq!(alice.offline.len(), 1);
    assert_eq!(alice.offline[0].stamp.unwrap().to_string(), "2024-01-02T03:04:05.678Z");
    let message = String::from_utf8(alice.offline[0].stanza.clone()).unwrap();
    assert_eq!(
        message,
        "<message xml:lang='en' to='alice@example.org' from='bob@example.org/phone' type='chat' id='m1'>\
         <body>hello</body></message>"
    );
    assert_eq!(alice.vcard.as_ref().unwrap().get_child("NICKNAME", "vcard-temp").unwrap().text(), "al");
    assert!(alice.unsupported[0].is("query", "jabber:iq:privacy"));
    assert_eq!(alice.roster.len(), 2);
    assert_eq!(alice.roster[0].subscription, Subscription::Both);
    assert_eq!(alice.roster[1].jid.as_str(), "carol@example.org");
    assert!(alice.roster[1].ask);
    assert_eq!(alice.pending_in.len(), 1);
    assert_eq!(alice.pending_in[0].from.as_str(), "dave@example.org");
    assert_eq!(alice.pending_in[0].status.as_deref(), Some("let me in"));
    assert!(alice.private[0].is("storage", "storage:bookmarks"));

    assert_eq!(outcome.user("example.org", "bob").password, Some(Password::Plain("plain-secret".into())));

    // COMPAT: ejabberd 15.04–21.10 "scram:" passwords, with the hash prefix
    // from 20.12.
    let carol = scram(&outcome.user("example.org", "carol").password);
    assert_eq!(carol.mechanism_hash, ScramHash::Sha1);
    assert_eq!((carol.iterations, &carol.salt), (4096, &b64(SHA1_SALT)));
    assert_eq!((&carol.stored_key, &carol.server_key), (&b64(SHA1_STORED), &b64(SHA1_SERVER)));
    let dave = scram(&outcome.user("example.org", "dave").password);
    assert_eq!(dave, entry);

    // COMPAT: password='' (before 22.05) is no password.
    assert_eq!(outcome.user("example.org", "eve").password, None);
}

#[test]
fn ejabberd_host_file_alone() {
    // `import --from ejabberd` may be pointed at a host file directly.
    let outcome = run(Reader::open(data("ejabberd/20240102-030405_example_org.xml")).unwrap());
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.users.len(), 5);
}

#[test]
fn ejabberd_2_namespace() {
    // The example of ejabberd 2.1's ejabberd_piefxis.erl, namespace
    // http://www.xmpp.org/extensions/xep-0227.html#ns.
    let outcome = read(
        "<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns'>
  <host jid='localhost'>
    <user name='juliet' password='s3crEt'>
      <query xmlns='jabber:iq:roster'>
        <item jid='romeo@montague.net' name='Romeo' subscription='both'>
          <group>Friends</group>
        </item>
      </query>
      <offline-messages><message from='romeo@montague.net'><body>hi</body></message></offline-messages>
    </user>
  </host>
 </server-data>",
    );
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let juliet = outcome.user("localhost", "juliet");
    assert_eq!(juliet.password, Some(Password::Plain("s3crEt".into())));
    assert_eq!(juliet.roster[0].groups, ["Friends"]);
    // A message without xmlns inherits the PIE namespace: it is moved to
    // jabber:client.
    assert_eq!(juliet.offline[0].stanza, b"<message from='romeo@montague.net'><body>hi</body></message>");
    assert_eq!(juliet.offline[0].stamp, None);
}

#[test]
fn prosody_0_11_extended_attributes() {
    let outcome = run(Reader::open(data("prosody/alice@example.com.xml")).unwrap());
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let alice = outcome.user("example.com", "alice");
    let entry = scram(&alice.password);
    assert_eq!(entry.mechanism_hash, ScramHash::Sha1);
    assert_eq!(entry.iterations, 4096);
    assert_eq!(entry.salt, b"6b3c9c5e-1f7a-4d2b-9e0f-3a1b2c3d4e5f");
    assert_eq!(entry.stored_key, b64("C64GSCbO05T6tqBNe6fd3+2K+Rw="));
    assert_eq!(entry.server_key, b64("IHS3x0nfVlk98xpXqObLaj6VpKk="));
    assert_eq!(alice.roster[0].name.as_deref(), Some("Bob"));
    // COMPAT: <presence/> without xmlns='jabber:client'.
    assert_eq!(alice.pending_in.len(), 1);
    assert_eq!(alice.pending_in[0].from.as_str(), "carol@example.com");
    let presence = Element::parse_standalone(&alice.pending_in[0].stanza, "jabber:client").unwrap();
    assert!(presence.is("presence", "jabber:client"));
    assert!(alice.unsupported.is_empty());
}

#[test]
fn prosody_0_12_scram_and_pep() {
    let outcome = run(Reader::open(data("prosody/bob@example.com.xml")).unwrap());
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let bob = outcome.user("example.com", "bob");
    let entry = scram(&bob.password);
    assert_eq!(
        (&entry.stored_key, &entry.server_key, &entry.salt),
        (&b64(SHA1_STORED), &b64(SHA1_SERVER), &b64(SHA1_SALT))
    );
    assert_eq!(bob.pep[0].name, "urn:xmpp:avatar:metadata");
    let form = bob.pep[0].config.as_ref().unwrap();
    assert_eq!(form.form_type_value(), Some("http://jabber.org/protocol/pubsub#node_config"));
    // Prosody's <subscriptions/> is kept aside, not interpreted.
    assert!(bob.unsupported[0].is("pubsub", "http://jabber.org/protocol/pubsub#owner"));
    assert!(bob.unsupported[1].is("archive", "urn:xmpp:pie:0#mam"));
}
