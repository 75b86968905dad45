//! Write → read gives back the same data; garbage never panics the reader.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use common::{data, read, read_chunked};
use proptest::prelude::*;
use xmppd_jid::BareJid;
use xmppd_migrate::{
    DataForm, Export, HostData, OfflineEntry, Password, PendingSubscription, PepItem, PepNode, Reader, RosterEntry,
    ScramEntry, ScramHash, Subscription, Timestamp, UserData, Writer,
};
use xmppd_xml::Element;

fn scram(hash: ScramHash, seed: u8) -> ScramEntry {
    ScramEntry {
        mechanism_hash: hash,
        iterations: 4096 + u32::from(seed),
        salt: vec![seed; 16],
        stored_key: vec![seed.wrapping_add(1); hash.output_len()],
        server_key: vec![seed.wrapping_add(2); hash.output_len()],
    }
}

fn element(xml: &str) -> Element {
    Element::parse_standalone(xml.as_bytes(), "urn:xmpp:pie:0").unwrap()
}

fn sample() -> Export {
    let juliet = UserData {
        username: "juliet".into(),
        password: Some(Password::Scram(vec![
            scram(ScramHash::Sha1, 1),
            scram(ScramHash::Sha256, 2),
            scram(ScramHash::Sha512, 3),
        ])),
        roster: vec![
            RosterEntry {
                jid: "romeo@montague.net".parse().unwrap(),
                name: Some("Romeo <3 & 'co'".into()),
                subscription: Subscription::Both,
                ask: false,
                approved: false,
                groups: vec!["Friends".into(), "Ünïcødé \"group\"".into()],
            },
            RosterEntry {
                jid: "nurse@capulet.com".parse().unwrap(),
                name: None,
                subscription: Subscription::None,
                ask: true,
                approved: true,
                groups: vec![],
            },
            RosterEntry {
                jid: "capulet.com".parse().unwrap(),
                name: None,
                subscription: Subscription::From,
                ask: false,
                approved: false,
                groups: vec![],
            },
        ],
        pending_in: vec![PendingSubscription {
            from: "tybalt@capulet.com".parse().unwrap(),
            status: Some("hi".into()),
            stanza: b"<presence type='subscribe' from='tybalt@capulet.com/x'><status>hi</status>\
                          <nick xmlns='http://jabber.org/protocol/nick'>T</nick></presence>"
                .to_vec(),
        }],
        vcard: Some(element("<vCard xmlns='vcard-temp'>\n  <FN>Juliet\tCapulet</FN>\n  <PHOTO/>\n</vCard>")),
        private: vec![
            element("<exodus xmlns='exodus:prefs'><defaultnick>Jul &amp; iet</defaultnick></exodus>"),
            element("<storage xmlns='storage:bookmarks'><conference jid='r@c.x' autojoin='1'/></storage>"),
        ],
        offline: vec![
            OfflineEntry {
                stamp: Timestamp::parse("1469-07-21T00:32:29Z"),
                stanza:
                    b"<message from='romeo@montague.net/orchard' to='juliet@capulet.com' type='chat' xml:lang='en'>\
                          <body>Neither, fair saint</body></message>"
                        .to_vec(),
            },
            OfflineEntry {
                stamp: Timestamp::parse("2024-02-29T23:59:59.999Z"),
                stanza: b"<message from='x@y'><body>&#13;\n]]&gt;</body><x xmlns='urn:x' a='1'/></message>".to_vec(),
            },
            OfflineEntry { stamp: None, stanza: b"<message from='x@y'/>".to_vec() },
        ],
        pep: vec![
            PepNode {
                name: "urn:xmpp:bookmarks:1".into(),
                config: Some(
                    DataForm::parse(&element(
                        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
                         <value>http://jabber.org/protocol/pubsub#node_config</value></field>\
                         <field var='pubsub#access_model'><value>whitelist</value></field></x>",
                    ))
                    .unwrap(),
                ),
                items: vec![
                    PepItem {
                        id: "a&b".into(),
                        publisher: Some("juliet@capulet.com/balcony".into()),
                        published: None,
                        payload: Some(element("<conference xmlns='urn:xmpp:bookmarks:1' name='&lt;x&gt;'/>")),
                    },
                    PepItem { id: "2".into(), publisher: None, published: None, payload: None },
                ],
            },
            PepNode { name: "empty".into(), config: None, items: vec![] },
        ],
        unsupported: vec![
            element("<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='empty'/></pubsub>"),
            element("<query xmlns='jabber:iq:privacy'><list name='l'/></query>"),
        ],
    };
    let romeo = UserData {
        username: "romeo".into(),
        password: Some(Password::Plain("pass'word\"<&>\t\n".into())),
        ..UserData::default()
    };
    let empty = UserData { username: "ghost".into(), ..UserData::default() };
    Export {
        hosts: vec![
            HostData { domain: "capulet.com".parse().unwrap(), users: vec![juliet, empty] },
            HostData { domain: "montague.net".parse().unwrap(), users: vec![romeo] },
            HostData { domain: "xn--mnchen-3ya.example".parse().unwrap(), users: vec![] },
        ],
    }
}

fn write(export: &Export) -> String {
    String::from_utf8(export.write(Vec::new()).unwrap()).unwrap()
}

fn read_export(text: &str) -> Export {
    let (export, errors) = Export::read(Reader::new(text.as_bytes())).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    export
}

#[test]
fn write_then_read_is_the_identity() {
    let export = sample();
    let text = write(&export);
    let mut back = read_export(&text);
    // A host without users leaves no trace a reader could report.
    let mut expected = export;
    expected.hosts.retain(|host| !host.users.is_empty());
    assert_eq!(back, expected);
    // And writing again gives the same bytes.
    back.hosts.push(HostData { domain: "xn--mnchen-3ya.example".parse().unwrap(), users: vec![] });
    assert_eq!(write(&back), text);
    // Chunking does not matter.
    assert_eq!(read_chunked(&text, 3).users.len(), 3);
}

#[test]
fn the_writer_uses_the_xep_form() {
    let text = write(&sample());
    assert!(text.starts_with("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n"));
    assert!(text.contains(
        "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'><iter-count>4098</iter-count>\
         <salt>AgICAgICAgICAgICAgICAg==</salt>"
    ));
    assert!(text.contains("<item jid='nurse@capulet.com' subscription='none' ask='subscribe' approved='true'/>"));
    assert!(text.contains(
        "<delay xmlns='urn:xmpp:delay' from='capulet.com' stamp='1469-07-21T00:32:29Z'>Offline Storage</delay>"
    ));
    assert!(text.contains("<user name='romeo' password='pass&apos;word&quot;&lt;&amp;&gt;&#9;&#10;'/>"));
    assert!(text.contains("<host jid='münchen.example'>\n</host>"));
    assert!(text.ends_with("</server-data>\n"));
}

#[test]
fn writer_misuse_and_bad_data() {
    let mut writer = Writer::new(Vec::new());
    assert!(writer.write_user(&UserData::default()).is_err());
    assert!(writer.end_host().is_err());
    writer.begin_host(&"a.example".parse().unwrap()).unwrap();
    assert!(writer.begin_host(&"b.example".parse().unwrap()).is_err());
    let bad_name = UserData { username: "Upper".into(), ..UserData::default() };
    assert!(writer.write_user(&bad_name).unwrap_err().to_string().contains("not a normalized localpart"));
    let bad_stanza = UserData {
        username: "a".into(),
        offline: vec![OfflineEntry { stamp: None, stanza: b"<message>".to_vec() }],
        ..UserData::default()
    };
    assert!(writer.write_user(&bad_stanza).unwrap_err().to_string().contains("offline message"));
    let writer_with_host = writer;
    assert!(writer_with_host.finish().is_err());
    // An empty export is a valid document.
    let empty = String::from_utf8(Writer::new(Vec::new()).finish().unwrap()).unwrap();
    assert_eq!(read(&empty).users.len(), 0);
    assert!(read(&empty).errors.is_empty());
}

#[test]
fn xep_examples_survive_a_round_trip() {
    for name in ["scram", "roster", "offline", "private", "vcard", "privacy", "subscriptions", "pep", "archive", "user"]
    {
        let text = fs::read_to_string(data(&format!("xep0227-{name}.xml"))).unwrap();
        let first = read_export(&text);
        let second = read_export(&write(&first));
        assert_eq!(first, second, "{name}");
    }
}

fn user_strategy() -> impl Strategy<Value = UserData> {
    let item =
        ("[a-z]{1,8}", "[a-z]{1,6}", proptest::option::of("\\PC{0,12}"), 0usize..4, any::<bool>(), any::<bool>())
            .prop_map(|(node, domain, name, sub, ask, approved)| RosterEntry {
                jid: format!("{node}@{domain}.example").parse::<BareJid>().unwrap(),
                name: name.filter(|name| !name.is_empty()),
                subscription: [Subscription::None, Subscription::To, Subscription::From, Subscription::Both][sub],
                ask,
                approved,
                groups: vec![],
            });
    let offline = (
        proptest::option::of(-30_000_000_000_000i64..250_000_000_000_000),
        "[^<&\\r\\u{0}-\\u{8}\\u{b}\\u{c}\\u{e}-\\u{1f}\\u{fffe}\\u{ffff}]{0,20}",
    )
        .prop_map(|(stamp, body)| {
            let mut stanza = Vec::new();
            Element::builder("message", "jabber:client")
                .attr("from", "a@b")
                .append(Element::builder("body", "jabber:client").text(&body).build())
                .build()
                .write_to(&mut stanza, "jabber:client");
            OfflineEntry { stamp: stamp.and_then(Timestamp::from_unix_ms), stanza }
        });
    (
        "[a-z0-9]{1,10}",
        proptest::option::of("\\PC{1,16}"),
        proptest::collection::vec(item, 0..6),
        proptest::collection::vec(offline, 0..3),
    )
        .prop_map(|(username, password, roster, offline)| {
            let mut seen = std::collections::HashSet::new();
            let roster = roster.into_iter().filter(|item| seen.insert(item.jid.clone())).collect();
            UserData { username, password: password.map(Password::Plain), roster, offline, ..UserData::default() }
        })
}

proptest! {
    #[test]
    fn generated_users_round_trip(user in user_strategy()) {
        // Attribute values are normalised by XML (§3.3.3) unless escaped,
        // which the writer does: what goes out comes back.
        let export = Export { hosts: vec![HostData { domain: "example.com".parse().unwrap(), users: vec![user] }] };
        let text = write(&export);
        prop_assert_eq!(read_export(&text), export);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for item in Reader::new(bytes.as_slice()) {
            let _ = item;
        }
    }

    #[test]
    fn mutated_documents_never_panic(
        position in 0usize..4096,
        replacement in proptest::collection::vec(any::<u8>(), 0..8),
        delete in 0usize..8,
        chunk in 1usize..64,
    ) {
        let mut bytes = write(&sample()).into_bytes();
        let at = position % bytes.len();
        let end = (at + delete).min(bytes.len());
        bytes.splice(at..end, replacement);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let outcome = read_chunked(&text, chunk);
        // Whatever happened, errors carry a location and the reader ended.
        for error in &outcome.errors {
            prop_assert!(error.location().is_some());
        }
        prop_assert!(outcome.users.len() <= 3);
    }

    #[test]
    fn mutated_xml_tokens_never_panic(
        position in 0usize..4096,
        token in prop::sample::select(vec![
            "<", ">", "&", "&amp;", "&#0;", "&#x10FFFF;", "<!--", "<?x?>", "<![CDATA[", "]]>", "'", "\"", "/>",
            "</user>", "<user name='a'>", "</host>", "<host jid='x'>", "xmlns:p='u'", "p:", "\u{0}", "\u{FEFF}",
            "<!DOCTYPE a>", "<xi:include href='x'/>", "\r\n",
        ]),
    ) {
        let mut text = write(&sample());
        let mut at = position % text.len();
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, token);
        let outcome = read(&text);
        prop_assert!(outcome.users.len() <= 4);
    }
}
