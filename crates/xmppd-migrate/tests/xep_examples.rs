//! Every example of XEP-0227 1.1 (copied verbatim into `tests/data/`), read.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::{data, position, read, run};
use xmppd_migrate::{Error, Password, Reader, ScramHash, Subscription};
use xmppd_xml::{Element, XmlError};

fn example(name: &str) -> String {
    fs::read_to_string(data(&format!("xep0227-{name}.xml"))).unwrap()
}

#[test]
fn placeholder_text_in_server_data_and_host_is_refused_with_its_position() {
    // §4 and §4.1 show "[ ... ]" where elements go: text is not allowed
    // between the children of <server-data/> and <host/>.
    let outcome = read(&example("root"));
    let fatal = outcome.fatal().unwrap();
    assert!(matches!(fatal, Error::Xml { source: XmlError::BadFormat(_), .. }), "{fatal}");
    assert_eq!(position(fatal), (3, 3));
    assert!(fatal.to_string().contains("line 3, column 3: text is not allowed here"), "{fatal}");

    let outcome = read(&example("host"));
    let fatal = outcome.fatal().unwrap();
    assert!(matches!(fatal, Error::Xml { source: XmlError::BadFormat(_), .. }), "{fatal}");
    assert_eq!(position(fatal), (4, 5));
}

#[test]
fn users() {
    // §4.2: the placeholder is inside <user/>, whose text is ignored.
    let outcome = read(&example("user"));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.names(), ["juliet@capulet.com", "romeo@montague.net"]);
    assert_eq!(outcome.user("capulet.com", "juliet").password, None);
}

#[test]
fn scram_credentials() {
    let outcome = read(&example("scram"));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let Some(Password::Scram(entries)) = &outcome.user("capulet.com", "juliet").password else {
        panic!("no SCRAM credentials");
    };
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.mechanism_hash, ScramHash::Sha1);
    assert_eq!(entry.mechanism_hash.as_str(), "SHA-1");
    assert_eq!(entry.iterations, 100_000);
    assert_eq!(entry.salt, b"NaClNaClNaClNaClNaClNaClNaClNaClNaClNaClNaCl\n");
    assert_eq!(entry.server_key.len(), 20);
    assert_eq!(entry.stored_key.len(), 20);
    assert_eq!(entry.stored_key[..4], [0x43, 0xaa, 0x93, 0xfd]);
}

#[test]
fn roster() {
    let outcome = read(&example("roster"));
    let roster = &outcome.user("capulet.com", "juliet").roster;
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].jid.as_str(), "romeo@montague.net");
    assert_eq!(roster[0].name.as_deref(), Some("Romeo"));
    assert_eq!(roster[0].subscription, Subscription::Both);
    assert!(!roster[0].ask && !roster[0].approved);
    assert_eq!(roster[0].groups, ["Friends"]);
}

#[test]
fn offline_messages() {
    let outcome = read(&example("offline"));
    let offline = &outcome.user("capulet.com", "juliet").offline;
    assert_eq!(offline.len(), 1);
    // The host's delay is the storage time (a date before 1970 is fine).
    assert_eq!(offline[0].stamp.unwrap().to_string(), "1469-07-21T00:32:29Z");
    let message = Element::parse_standalone(&offline[0].stanza, "jabber:client").unwrap();
    assert!(message.is("message", "jabber:client"));
    assert_eq!(message.attr("from"), Some("romeo@montague.net/orchard"));
    assert_eq!(message.attr("type"), Some("chat"));
    assert_eq!(
        message.get_child("body", "jabber:client").unwrap().text(),
        "Neither, fair saint, if either thee dislike."
    );
    assert!(!message.has_child("delay", "urn:xmpp:delay"), "the exporting server's delay is removed");
    assert!(offline[0].stanza.starts_with(b"<message from="));
}

#[test]
fn private_storage() {
    let outcome = read(&example("private"));
    let private = &outcome.user("shakespeare.lit", "hamlet").private;
    assert_eq!(private.len(), 1);
    assert!(private[0].is("exodus", "exodus:prefs"));
    assert_eq!(private[0].get_child("defaultnick", "exodus:prefs").unwrap().text(), "Hamlet");
}

#[test]
fn vcard() {
    let outcome = read(&example("vcard"));
    let vcard = outcome.user("capulet.com", "juliet").vcard.as_ref().unwrap();
    assert!(vcard.is("vCard", "vcard-temp"));
    assert_eq!(vcard.get_child("FN", "vcard-temp").unwrap().text(), "Juliet Capulet");
}

#[test]
fn privacy_lists_are_kept_as_unsupported() {
    let outcome = read(&example("privacy"));
    let user = outcome.user("capulet.com", "juliet");
    assert_eq!(user.unsupported.len(), 1);
    assert!(user.unsupported[0].is("query", "jabber:iq:privacy"));
}

#[test]
fn incoming_subscription_requests() {
    let outcome = read(&example("subscriptions"));
    let pending = &outcome.user("capulet.com", "juliet").pending_in;
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].from.as_str(), "romeo@montague.net");
    assert_eq!(pending[1].from.as_str(), "mercutio@montague.net");
    let first = Element::parse_standalone(&pending[0].stanza, "jabber:client").unwrap();
    assert_eq!(first.attr("id"), Some("xk3h1v69"));
    assert!(first.has_child("nick", "http://jabber.org/protocol/nick"));
}

/// §4.10: two nodes with their configuration forms and items, in
/// document order; affiliations and subscriptions are kept aside.
#[test]
fn pep() {
    let outcome = read(&example("pep"));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let romeo = outcome.user("capulet.com", "romeo");
    let pep = &romeo.pep;
    assert_eq!(pep.len(), 2);
    assert_eq!(pep[0].name, "urn:xmpp:bookmarks:1");
    let form = pep[0].config.as_ref().unwrap();
    assert_eq!(form.form_type_value(), Some("http://jabber.org/protocol/pubsub#node_config"));
    assert_eq!(form.value("pubsub#access_model"), Some("whitelist"));
    let ids: Vec<&str> = pep[0].items.iter().map(|item| item.id.as_str()).collect();
    assert_eq!(ids, ["theplay@conference.shakespeare.lit", "orchard@conference.shakespeare.lit"]);
    let conference = pep[0].items[0].payload.as_ref().unwrap();
    assert!(conference.is("conference", "urn:xmpp:bookmarks:1"));
    assert_eq!(conference.attr("name"), Some("The Play's the Thing"));
    assert_eq!(pep[1].name, "http://jabber.org/protocol/nick");
    assert_eq!(pep[1].config.as_ref().unwrap().value("pubsub#access_model"), Some("open"));
    assert_eq!(pep[1].items.len(), 1);
    assert_eq!(pep[1].items[0].id, "current");
    assert_eq!(pep[1].items[0].publisher, None);
    assert_eq!(pep[1].items[0].payload.as_ref().unwrap().text(), "Romy");
    assert_eq!(romeo.unsupported.len(), 1);
    let kept: Vec<&str> = romeo.unsupported[0].children().map(|child| child.name()).collect();
    assert_eq!(kept, ["affiliations", "subscriptions"]);
}

/// A PEP item without an id and a node without a name are skipped with
/// their location; the rest of the user is imported.
#[test]
fn bad_pep_records_are_skipped_with_their_location() {
    let text = "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='capulet.com'>\n<user name='romeo'>\n\
        <pubsub xmlns='http://jabber.org/protocol/pubsub'>\n\
        <items node='urn:example:n'><item id='1'/>\n<item><x xmlns='urn:x'/></item></items>\n\
        <items><item id='2'/></items>\n</pubsub>\n</user>\n</host>\n</server-data>\n";
    let outcome = read(text);
    assert_eq!(outcome.errors.len(), 2, "{:?}", outcome.errors);
    let first = &outcome.errors[0];
    assert!(matches!(first, Error::InvalidRecord { .. }) && !first.is_fatal(), "{first}");
    assert_eq!(position(first), (5, 1));
    assert!(
        first.to_string().contains("user 'romeo' of capulet.com: PEP node 'urn:example:n': an <item/> without an 'id'"),
        "{first}"
    );
    assert!(outcome.errors[1].to_string().contains("<items/> without a 'node'"), "{}", outcome.errors[1]);
    let romeo = outcome.user("capulet.com", "romeo");
    assert_eq!(romeo.pep.len(), 1);
    assert_eq!(romeo.pep[0].items.len(), 1);
}

#[test]
fn message_archive_is_kept_as_unsupported() {
    let outcome = read(&example("archive"));
    let user = outcome.user("capulet.com", "juliet");
    assert!(user.unsupported[0].is("archive", "urn:xmpp:pie:0#mam"));
    assert_eq!(user.unsupported[0].children().count(), 2);
}

#[test]
fn xinclude_layout_is_followed() {
    // §5.1: main file → capulet.com.xml → capulet.com/juliet.xml.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("main.xml"), example("xinclude-main")).unwrap();
    fs::write(dir.path().join("capulet.com.xml"), example("xinclude-host")).unwrap();
    fs::create_dir(dir.path().join("capulet.com")).unwrap();
    fs::write(dir.path().join("capulet.com/juliet.xml"), example("xinclude-user")).unwrap();
    fs::write(
        dir.path().join("capulet.com/mercutio.xml"),
        "<user xmlns='urn:xmpp:pie:0' name='mercutio' password='x'/>\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("montague.net.xml"),
        "<?xml version='1.0'?><host xmlns='urn:xmpp:pie:0' jid='montague.net'><user name='romeo'/></host>",
    )
    .unwrap();

    let outcome = run(Reader::open(dir.path().join("main.xml")).unwrap());
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.names(), ["juliet@capulet.com", "mercutio@capulet.com", "romeo@montague.net"]);
    let juliet = outcome.user("capulet.com", "juliet");
    assert_eq!(juliet.roster[0].jid.as_str(), "romeo@montague.net");
    assert!(juliet.vcard.is_some());
    assert_eq!(juliet.offline[0].stamp.unwrap().to_string(), "1469-07-21T00:32:29Z");
    assert_eq!(outcome.user("capulet.com", "mercutio").password, Some(Password::Plain("x".into())));

    // Without a directory the includes are reported, not followed.
    let outcome = read(&example("xinclude-main"));
    assert!(outcome.users.is_empty());
    assert_eq!(outcome.errors.len(), 2);
    assert!(outcome.errors.iter().all(|error| matches!(error, Error::Include { .. }) && !error.is_fatal()));
    assert_eq!(position(&outcome.errors[1]), (5, 3));
}

#[test]
fn xinclude_refuses_paths_outside_the_directory_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let main = "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\
        <xi:include href='../etc/passwd'/><xi:include href='/etc/passwd'/><xi:include href='file:///etc/passwd'/>\
        <xi:include href='missing.xml'/><xi:include/></server-data>";
    fs::write(dir.path().join("main.xml"), main).unwrap();
    let outcome = run(Reader::open(dir.path().join("main.xml")).unwrap());
    assert!(outcome.users.is_empty());
    let messages: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(messages[..3].iter().all(|m| m.contains("only relative paths")), "{messages:?}");
    assert!(messages[3].contains("cannot open"), "{messages:?}");
    assert!(messages[4].contains("no 'href'"), "{messages:?}");
    assert!(messages[0].starts_with(&format!("{}:1:", dir.path().join("main.xml").display())), "{messages:?}");
}

#[test]
fn included_host_file_with_a_user_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("main.xml"),
        "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\
         <xi:include href='u.xml'/></server-data>",
    )
    .unwrap();
    fs::write(dir.path().join("u.xml"), "<user xmlns='urn:xmpp:pie:0' name='a'/>").unwrap();
    let outcome = run(Reader::open(dir.path().join("main.xml")).unwrap());
    let fatal = outcome.fatal().unwrap();
    assert!(matches!(fatal, Error::NotPiefxis { .. }), "{fatal}");
    assert!(fatal.to_string().contains("u.xml:1:1: the root element is <user/>"), "{fatal}");
}
