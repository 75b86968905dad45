//! Malformed documents (fatal, with line and column) and bad records
//! (reported and skipped, reading goes on).
#![allow(clippy::unwrap_used)]

mod common;

use common::{position, read, read_chunked};
use xmppd_migrate::{Error, Reader, ReaderOptions};
use xmppd_xml::{LimitKind, XmlError};

const DOC: &str = "<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='example.com'>
    <user name='alice'>
      <query xmlns='jabber:iq:roster'>
        <item jid='bob@example.com' subscription='both'/>
      </query>
    </user>
    <user name='bob'/>
  </host>
</server-data>
";

/// (line, column) of the first occurrence of `needle` in `text`, plus
/// `shift` characters.
fn position_of(text: &str, needle: &str, shift: u64) -> (u64, u64) {
    let offset = text.find(needle).unwrap();
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() as u64 + 1;
    (line, column + shift)
}

#[test]
fn the_base_document_reads() {
    let outcome = read(DOC);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.names(), ["alice@example.com", "bob@example.com"]);
}

#[test]
fn truncation_anywhere_is_a_fatal_error_never_a_panic() {
    let complete = DOC.trim_end().len();
    for cut in 0..complete {
        let text = &DOC[..cut];
        let outcome = read(text);
        let fatal = outcome.fatal().unwrap_or_else(|| panic!("no fatal error at {cut}: {:?}", outcome.names()));
        assert!(matches!(fatal, Error::Truncated { .. } | Error::NotPiefxis { .. }), "cut at {cut}: {fatal}");
        let names = outcome.names();
        let all = ["alice@example.com".to_owned(), "bob@example.com".to_owned()];
        assert!(all.starts_with(&names), "cut at {cut}: {names:?}");
        // Same result however the input is split.
        let byte_by_byte = read_chunked(text, 1);
        assert_eq!(byte_by_byte.names(), names);
        assert_eq!(byte_by_byte.fatal().map(ToString::to_string), Some(fatal.to_string()));
    }
}

#[test]
fn truncation_messages() {
    let empty = read("");
    assert_eq!(empty.fatal().unwrap().to_string(), "line 1, column 1: the input is empty");

    let cut = DOC.find("subscription").unwrap();
    let outcome = read(&DOC[..cut]);
    let fatal = outcome.fatal().unwrap();
    assert_eq!(
        fatal.to_string(),
        "line 6, column 37: unexpected end of file inside <host jid='example.com'> \
         (the element at line 4, column 5 is incomplete)"
    );

    let cut = DOC.find("</server-data>").unwrap();
    let outcome = read(&DOC[..cut]);
    assert_eq!(outcome.users.len(), 2);
    assert!(outcome.fatal().unwrap().to_string().ends_with("unexpected end of file inside <server-data>"));
}

#[test]
fn a_dtd_is_refused_by_the_restricted_parser() {
    let text = DOC.replacen("<server-data", "<!DOCTYPE server-data [<!ENTITY boom 'kaboom'>]>\n<server-data", 1);
    let outcome = read(&text);
    assert!(outcome.users.is_empty());
    let fatal = outcome.fatal().unwrap();
    assert!(matches!(fatal, Error::Xml { source: XmlError::RestrictedXml(_), .. }), "{fatal}");
    assert_eq!(position(fatal), (2, 3));
    assert!(fatal.to_string().contains("document type and markup declarations are not allowed"), "{fatal}");
}

#[test]
fn an_entity_reference_is_refused_where_it_stands() {
    let text = DOC.replacen(
        "<user name='bob'/>",
        "<user name='bob'><vCard xmlns='vcard-temp'><FN>&boom;</FN></vCard></user>",
        1,
    );
    let outcome = read(&text);
    // alice was read before the error.
    assert_eq!(outcome.names(), ["alice@example.com"]);
    let fatal = outcome.fatal().unwrap();
    assert!(matches!(fatal, Error::Xml { source: XmlError::RestrictedXml(_), .. }), "{fatal}");
    // Detected at the ';' that completes the reference.
    assert_eq!(position(fatal), position_of(&text, "&boom;", 5));
    assert!(fatal.to_string().contains("reference to an undeclared entity"), "{fatal}");
}

#[test]
fn comments_and_processing_instructions_are_refused_at_every_level() {
    let cases = [
        ("  </host>", "  </host>\n  <!-- a comment -->", "<!-- a comment", 3),
        ("    <user name='bob'/>", "    <?pi data?>\n    <user name='bob'/>", "<?pi", 1),
        ("<query xmlns", "<!-- x --><query xmlns", "<!-- x", 3),
        ("<server-data", "<?xml-stylesheet href='a'?>\n<server-data", "<?xml-stylesheet", 1),
    ];
    for (from, to, at, shift) in cases {
        let text = DOC.replacen(from, to, 1);
        let fatal = read(&text).fatal().map(ToString::to_string);
        let outcome = read(&text);
        let error = outcome.fatal().unwrap_or_else(|| panic!("accepted: {to}: {fatal:?}"));
        assert!(matches!(error, Error::Xml { source: XmlError::RestrictedXml(_), .. }), "{to}: {error}");
        assert_eq!(position(error), position_of(&text, at, shift), "{to}: {error}");
    }
}

#[test]
fn an_invalid_roster_jid_skips_that_user_only() {
    let text = DOC.replacen("bob@example.com", "bob@@example.com", 1);
    let outcome = read(&text);
    assert_eq!(outcome.names(), ["bob@example.com"]);
    assert_eq!(outcome.errors.len(), 1);
    let error = &outcome.errors[0];
    assert!(matches!(error, Error::InvalidUser { user, .. } if user == "alice"), "{error}");
    assert!(!error.is_fatal());
    // The location is the offending value itself.
    assert_eq!(position(error), position_of(&text, "bob@@", 0));
    assert_eq!(
        error.to_string(),
        "line 6, column 20: user 'alice' of example.com: \
         roster item JID 'bob@@example.com' is invalid: invalid domainpart"
    );
}

#[test]
fn bad_records_are_reported_and_skipped() {
    let cases = [
        ("subscription='both'", "subscription='friends'", "friends", "unknown subscription 'friends'"),
        ("subscription='both'", "subscription='both' ask='yes'", "yes", "unknown ask value 'yes'"),
        ("<user name='alice'>", "<user name='al ice'>", "al ice", "invalid name"),
        ("<user name='alice'>", "<user>", "<user>", "no 'name' attribute"),
        (
            "<query xmlns='jabber:iq:roster'>",
            "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>1</iter-count>\
             <salt>c2Fsd!!</salt><server-key>U3rALh9JK8df+UhZaAHYGFsl/mw=</server-key>\
             <stored-key>U3rALh9JK8df+UhZaAHYGFsl/mw=</stored-key></scram-credentials><query xmlns='jabber:iq:roster'>",
            "c2Fsd!!",
            "SCRAM-SHA-1 salt is not base64",
        ),
        (
            "<query xmlns='jabber:iq:roster'>",
            "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'><iter-count>0</iter-count>\
             <salt>c2FsdA==</salt><server-key>c2FsdA==</server-key><stored-key>c2FsdA==</stored-key>\
             </scram-credentials><query xmlns='jabber:iq:roster'>",
            "<iter-count>0",
            "iteration count '0' is not a positive integer",
        ),
        (
            "<query xmlns='jabber:iq:roster'>",
            "<offline-messages><message xmlns='jabber:client'><delay xmlns='urn:xmpp:delay' from='example.com' \
             stamp='yesterday'/></message></offline-messages><query xmlns='jabber:iq:roster'>",
            "yesterday",
            "invalid delay stamp 'yesterday'",
        ),
    ];
    for (from, to, at, message) in cases {
        let text = DOC.replacen(from, to, 1);
        let outcome = read(&text);
        assert_eq!(outcome.names(), ["bob@example.com"], "{to}");
        assert_eq!(outcome.errors.len(), 1, "{to}: {:?}", outcome.errors);
        let error = &outcome.errors[0];
        assert!(matches!(error, Error::InvalidUser { .. }), "{error}");
        assert!(error.to_string().contains(message), "{error}");
        let shift = u64::from(at == "<iter-count>0") * 12;
        let expected = if at.starts_with("<user") { position_of(&text, at, 0) } else { position_of(&text, at, shift) };
        assert_eq!(position(error), expected, "{error}");
    }
}

#[test]
fn duplicate_users_are_reported_with_the_first_location() {
    let text = DOC.replacen(
        "    <user name='bob'/>\n  </host>",
        "    <user name='bob'/>\n    <user name='ALICE'/>\n  </host>\n  \
         <host jid='EXAMPLE.com'><user name='bob'/></host>",
        1,
    );
    let outcome = read(&text);
    assert_eq!(outcome.names(), ["alice@example.com", "bob@example.com"]);
    assert_eq!(outcome.errors.len(), 2, "{:?}", outcome.errors);
    let Error::DuplicateUser { location, host, user, first } = &outcome.errors[0] else {
        panic!("{}", outcome.errors[0]);
    };
    assert_eq!((host.as_str(), user.as_str()), ("example.com", "alice"));
    assert_eq!((location.line, location.column), (10, 5));
    assert_eq!((first.line, first.column), (4, 5));
    assert_eq!(
        outcome.errors[1].to_string(),
        "line 12, column 27: duplicate user 'bob' of example.com (first at line 9, column 5)"
    );
}

#[test]
fn an_invalid_host_skips_its_users() {
    let text = DOC.replacen(
        "  <host jid='example.com'>",
        "  <host jid='admin@example.org'><user name='lost'/></host>\n  <host/>\n  <host jid='example.com'>",
        1,
    );
    let outcome = read(&text);
    assert_eq!(outcome.names(), ["alice@example.com", "bob@example.com"]);
    let messages: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "line 3, column 3: invalid host: 'admin@example.org' is not a domain \
             (address has a localpart where none is allowed); \
             its users are skipped",
            "line 4, column 3: invalid host: the <host/> has no 'jid' attribute; its users are skipped",
        ]
    );
}

#[test]
fn text_inside_a_skipped_host_is_still_fatal() {
    // Skipped elements go through the same parser: errors stay errors.
    let text = DOC.replacen("  <host jid='example.com'>", "  <host>x</host>\n  <host jid='example.com'>", 1);
    let outcome = read(&text);
    let fatal = outcome.fatal().unwrap();
    assert!(matches!(fatal, Error::Xml { source: XmlError::BadFormat(_), .. }), "{fatal}");
    assert_eq!(position(fatal), (3, 9));
}

#[test]
fn unknown_elements_are_ignored_and_reported() {
    let text =
        DOC.replacen("  <host jid", "  <extra xmlns='urn:example'><user name='no'/></extra>\n  <host jid", 1).replacen(
            "    <user name='bob'/>",
            "    <note xmlns='urn:example'/>\n    <user name='bob'><hobby xmlns='urn:x'/></user>",
            1,
        );
    let outcome = read(&text);
    assert_eq!(outcome.names(), ["alice@example.com", "bob@example.com"]);
    let messages: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "line 3, column 3: ignored unknown element {urn:example}extra",
            "line 10, column 5: ignored unknown element {urn:example}note",
        ]
    );
    assert!(outcome.user("example.com", "bob").unsupported[0].is("hobby", "urn:x"));
}

#[test]
fn not_well_formed_documents() {
    let cases = [
        // A mismatched end tag, at its '>'.
        (DOC.replacen("</query>", "</quer>", 1), "</quer>", 6, "mismatched end tag"),
        // A duplicate attribute, at the end of the start tag.
        (
            DOC.replacen("<user name='bob'/>", "<user name='bob' name='b'/>", 1),
            "/>\n  </host>",
            1,
            "duplicate attribute",
        ),
        // Data after the root element.
        (DOC.replacen("</server-data>\n", "</server-data>\n<more/>", 1), "<more", 0, "data after the end"),
        // The end tag of <server-data/> misspelled.
        (DOC.replacen("</server-data>", "</server-date>", 1), "</server-date>", 13, "does not match"),
        // An unbound prefix on a host.
        (DOC.replacen("<host jid", "<p:host jid", 1), "<p:host", 25, "prefix"),
    ];
    for (text, at, shift, message) in cases {
        let outcome = read(&text);
        let fatal = outcome.fatal().unwrap_or_else(|| panic!("accepted {text}"));
        assert!(matches!(fatal, Error::Xml { source: XmlError::NotWellFormed(_), .. }), "{fatal}");
        assert!(fatal.to_string().contains(message), "{fatal}");
        assert_eq!(position(fatal), position_of(&text, at, shift), "{fatal}");
    }
}

#[test]
fn other_documents_are_refused() {
    let outcome = read("<?xml version='1.0'?>\n<feed xmlns='http://www.w3.org/2005/Atom'/>");
    assert_eq!(
        outcome.fatal().unwrap().to_string(),
        "line 2, column 1: the root element is {http://www.w3.org/2005/Atom}feed, \
         not XEP-0227's <server-data xmlns='urn:xmpp:pie:0'/>"
    );
    let outcome = read("<server-data/>");
    assert!(matches!(outcome.fatal(), Some(Error::NotPiefxis { .. })));
    let outcome = read("<?xml version='1.0' encoding='ISO-8859-1'?><server-data xmlns='urn:xmpp:pie:0'/>");
    assert!(matches!(outcome.fatal(), Some(Error::Xml { source: XmlError::UnsupportedEncoding, .. })));
    // UTF-16 is refused.
    let outcome = common::run(Reader::new(&b"\xFF\xFE<\0s\0"[..]));
    assert!(matches!(outcome.fatal(), Some(Error::Xml { source: XmlError::UnsupportedEncoding, .. })));
    let outcome = read("<server-data xmlns='urn:xmpp:pie:0'/>\n");
    assert!(outcome.errors.is_empty() && outcome.users.is_empty());
    let error = Reader::open("/nonexistent/export.xml").err().unwrap();
    assert!(matches!(error, Error::Io { .. }) && error.is_fatal());
}

#[test]
fn errors_deep_inside_large_input_are_located() {
    let filler = format!("<NOTE>{}</NOTE>\n", "x".repeat(10_000)).repeat(3);
    let user = format!("<user name='bob'><vCard xmlns='vcard-temp'>\n{filler}<FN>&bad;</FN></vCard></user>");
    let in_server_data = DOC.replacen("<user name='bob'/>", &user, 1);
    let in_host_file = format!("<host xmlns='urn:xmpp:pie:0' jid='example.com'>\n<user name='a'/>\n{user}\n</host>");
    for text in [in_server_data, in_host_file] {
        for chunk in [1, 999, 1 << 20] {
            let outcome = read_chunked(&text, chunk);
            let fatal = outcome.fatal().unwrap();
            assert!(matches!(fatal, Error::Xml { source: XmlError::RestrictedXml(_), .. }), "{fatal}");
            assert_eq!(position(fatal), position_of(&text, "&bad;", 4), "chunk {chunk}: {fatal}");
        }
    }
}

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    // XML 1.0 §4.3.3; Windows editors write one.
    let text = format!("\u{feff}{DOC}");
    let outcome = read_chunked(&text, 1);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.users.len(), 2);
    // Positions are unchanged by it.
    let text = format!("\u{feff}{}", DOC.replacen("bob@example.com", "bob@@example.com", 1));
    assert_eq!(position(&read(&text).errors[0]), position_of(DOC, "bob@", 0));
    // Only at the very start.
    let text = DOC.replacen("<server-data", "\u{feff}<server-data", 1);
    assert!(matches!(read(&text).fatal(), Some(Error::Xml { source: XmlError::NotWellFormed(_), .. })));
}

#[test]
fn the_reader_can_move_to_a_blocking_thread() {
    fn assert_send<T: Send>(_: &T) {}
    let reader = Reader::new(std::io::Cursor::new(DOC.as_bytes().to_vec()));
    assert_send(&reader);
    let users = std::thread::spawn(move || reader.filter(Result::is_ok).count()).join().unwrap();
    assert_eq!(users, 2);
}

#[test]
fn a_user_over_the_size_limit_is_fatal() {
    let options = ReaderOptions { max_user_bytes: 64, ..ReaderOptions::default() };
    let outcome = common::run(Reader::new(DOC.as_bytes()).with_options(options));
    let fatal = outcome.fatal().unwrap();
    assert!(matches!(fatal, Error::Xml { source: XmlError::PolicyViolation(LimitKind::StanzaSize), .. }), "{fatal}");
    assert!(fatal.to_string().contains("exceeds the size limit"), "{fatal}");
}
