//! Every error class, as a table: input → exact variant and RFC 6120 §4.9.3
//! condition.
#![allow(clippy::unwrap_used)]

mod common;

use common::{HEADER, error_after_header, run};
use xmppd_xml::{Event, Limits, StreamParser, XmlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Restricted,
    NotWellFormed,
    BadFormat,
    Encoding,
}

fn class_of(error: &XmlError) -> Class {
    match error {
        XmlError::RestrictedXml(_) => Class::Restricted,
        XmlError::NotWellFormed(_) => Class::NotWellFormed,
        XmlError::BadFormat(_) => Class::BadFormat,
        XmlError::UnsupportedEncoding => Class::Encoding,
        other => panic!("unexpected {other:?}"),
    }
}

fn check_after_header(cases: &[(&[u8], Class)]) {
    for (body, expected) in cases {
        let error = error_after_header(body);
        let shown = String::from_utf8_lossy(body);
        let error = error.unwrap_or_else(|| panic!("no error for {shown}"));
        assert_eq!(class_of(&error), *expected, "{shown}: {error:?}");
    }
}

#[test]
fn restricted_xml() {
    check_after_header(&[
        (b"<!DOCTYPE foo>", Class::Restricted),
        (b"<!ENTITY x 'y'>", Class::Restricted),
        (b"<!-- a comment -->", Class::Restricted),
        (b"<message><!-- inside --></message>", Class::Restricted),
        (b"<message><body>x<!--y--></body></message>", Class::Restricted),
        (b"<?foo bar?>", Class::Restricted),
        (b"<message><?php echo ?></message>", Class::Restricted),
        (b"<?xml version='1.0'?>", Class::Restricted),
        (b"<message><body>&nbsp;</body></message>", Class::Restricted),
        (b"<message to='&foo;'/>", Class::Restricted),
        (b"<message><body>&xxe;</body></message>", Class::Restricted),
        (b"<message><!ELEMENT x ANY></message>", Class::Restricted),
    ]);
    // In the prolog too.
    for input in [
        "<!DOCTYPE stream [<!ENTITY x 'y'>]><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        "<?xml version='1.0'?><!-- hi --><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        "<?xml-stylesheet href='a'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        // RFC 6120 §11.5: the XML declaration only at the very start.
        " <?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        "<?xml version='1.0'?><?xml version='1.0'?><stream:stream>",
    ] {
        let (_, error) = run(input.as_bytes());
        assert!(matches!(error, Some(XmlError::RestrictedXml(_))), "{input}: {error:?}");
    }
}

#[test]
fn not_well_formed() {
    check_after_header(&[
        // Invalid UTF-8: stray byte, bad continuation, overlong, surrogate, too large.
        (b"<message><body>\xff</body></message>", Class::NotWellFormed),
        (b"<message><body>\xc3\x28</body></message>", Class::NotWellFormed),
        (b"<message><body>\xc0\xaf</body></message>", Class::NotWellFormed),
        (b"<message><body>\xed\xa0\x80</body></message>", Class::NotWellFormed),
        (b"<message><body>\xf4\x90\x80\x80</body></message>", Class::NotWellFormed),
        (b"<message to='\xff'/>", Class::NotWellFormed),
        (b"<m\xffessage/>", Class::NotWellFormed),
        (b"\xff", Class::NotWellFormed),
        // Names.
        (b"<1message/>", Class::NotWellFormed),
        (b"<mes$sage/>", Class::NotWellFormed),
        (b"<message 9a='x'/>", Class::NotWellFormed),
        (b"<a:b:c xmlns:a='urn:a'/>", Class::NotWellFormed),
        (b"<:message/>", Class::NotWellFormed),
        (b"<message: />", Class::NotWellFormed),
        (b"< message/>", Class::NotWellFormed),
        // Structure.
        (b"<message></presence>", Class::NotWellFormed),
        (b"<message><body></message></body>", Class::NotWellFormed),
        (b"<message/ >", Class::NotWellFormed),
        (b"<message><body>a</body ></message >x</message>", Class::BadFormat),
        (b"</message>", Class::NotWellFormed),
        (b"</stream:foo>", Class::NotWellFormed),
        (b"<message><![CDATX[x]]></message>", Class::NotWellFormed),
        (b"<message><!x></message>", Class::NotWellFormed),
        // Attributes.
        (b"<message to='a' to='b'/>", Class::NotWellFormed),
        (b"<message to=a/>", Class::NotWellFormed),
        (b"<message to='a'from='b'/>", Class::NotWellFormed),
        (b"<message to/>", Class::NotWellFormed),
        (b"<message to='a<b'/>", Class::NotWellFormed),
        (b"<message xmlns:a='urn:x' xmlns:b='urn:x' a:y='1' b:y='2'/>", Class::NotWellFormed),
        // Characters.
        (b"<message><body>\x01</body></message>", Class::NotWellFormed),
        (b"<message><body>\x00</body></message>", Class::NotWellFormed),
        (b"<message><body>\xef\xbf\xbe</body></message>", Class::NotWellFormed),
        (b"<message to='\x07'/>", Class::NotWellFormed),
        (b"\x0c", Class::NotWellFormed),
        (b"<message><body>a]]>b</body></message>", Class::NotWellFormed),
        // Malformed references.
        (b"<message><body>&;</body></message>", Class::NotWellFormed),
        (b"<message><body>&#xZZ;</body></message>", Class::NotWellFormed),
        (b"<message><body>&#;</body></message>", Class::NotWellFormed),
        (b"<message><body>&#0;</body></message>", Class::NotWellFormed),
        (b"<message><body>&#x1;</body></message>", Class::NotWellFormed),
        (b"<message><body>&#xFFFE;</body></message>", Class::NotWellFormed),
        (b"<message><body>&#xD800;</body></message>", Class::NotWellFormed),
        (b"<message><body>&#x110000;</body></message>", Class::NotWellFormed),
        (b"<message><body>& amp;</body></message>", Class::NotWellFormed),
        (b"<message><body>&amp</body></message>", Class::NotWellFormed),
        (b"<message to='&amp'/>", Class::NotWellFormed),
        // Namespaces.
        (b"<foo:message/>", Class::NotWellFormed),
        (b"<message foo:bar='x'/>", Class::NotWellFormed),
        (b"<message><foo:x/></message>", Class::NotWellFormed),
        (b"<message xmlns:foo=''/>", Class::NotWellFormed),
        (b"<message xmlns:xml='urn:other'/>", Class::NotWellFormed),
        (b"<message xmlns:xmlns='urn:x'/>", Class::NotWellFormed),
        (b"<message xmlns:foo='http://www.w3.org/XML/1998/namespace'/>", Class::NotWellFormed),
        (b"<message xmlns='http://www.w3.org/XML/1998/namespace'/>", Class::NotWellFormed),
        (b"<message xmlns='http://www.w3.org/2000/xmlns/'/>", Class::NotWellFormed),
        (b"<message xmlns:foo='http://www.w3.org/2000/xmlns/'/>", Class::NotWellFormed),
        (b"<xmlns:foo/>", Class::NotWellFormed),
        // A prefix bound inside one stanza is gone in the next.
        (b"<message xmlns:p='urn:p'><p:x/></message><message><p:x/></message>", Class::NotWellFormed),
        // And after its element ends.
        (b"<message><a xmlns:p='urn:p'/><p:x/></message>", Class::NotWellFormed),
        // After the end of the stream.
        (b"</stream:stream><message/>", Class::NotWellFormed),
        (b"</stream:stream>x", Class::NotWellFormed),
    ]);
}

#[test]
fn bad_format() {
    check_after_header(&[
        (b"hello", Class::BadFormat),
        (b"   \n x", Class::BadFormat),
        (b"&amp;", Class::BadFormat),
        (b"<![CDATA[x]]>", Class::BadFormat),
        (b"<message/>text<message/>", Class::BadFormat),
        ("\u{FEFF}".as_bytes(), Class::BadFormat),
    ]);
}

#[test]
fn prolog_errors() {
    let cases: &[(&[u8], Class)] = &[
        (b"hello<stream:stream>", Class::NotWellFormed),
        (b"</stream:stream>", Class::NotWellFormed),
        (b"<stream:stream>", Class::NotWellFormed),
        (b"<stream:stream xmlns:stream=''>", Class::NotWellFormed),
        (b"<stream:stream xmlns:stream='s' a='1' a='2'>", Class::NotWellFormed),
        (b"<stream:stream xmlns:stream='s' x:a='1'>", Class::NotWellFormed),
        (b"<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>", Class::Encoding),
        (b"<?xml version='1.0' encoding='UTF-16'?><stream:stream>", Class::Encoding),
        (b"\xfe\xff\x00<", Class::Encoding),
        (b"\xff\xfe<\x00", Class::Encoding),
        (b"<\x00?\x00", Class::Encoding),
        (b"<?xml version='2.0'?><stream:stream>", Class::NotWellFormed),
        (b"<?xml encoding='UTF-8'?><stream:stream>", Class::NotWellFormed),
        (b"<?xml version='1.0' ?junk?><stream:stream>", Class::NotWellFormed),
        // RFC 6120 §11.6: U+FEFF is not a byte order mark.
        (b"\xef\xbb\xbf<stream:stream xmlns:stream='s'>", Class::NotWellFormed),
    ];
    for (input, expected) in cases {
        let (events, error) = run(input);
        assert!(events.is_empty(), "{input:?}");
        let error = error.unwrap_or_else(|| panic!("no error for {:?}", String::from_utf8_lossy(input)));
        assert_eq!(class_of(&error), *expected, "{:?}: {error:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn conditions_map_onto_rfc_6120() {
    assert_eq!(XmlError::NotWellFormed("x").condition(), "not-well-formed");
    assert_eq!(XmlError::RestrictedXml("x").condition(), "restricted-xml");
    assert_eq!(XmlError::BadFormat("x").condition(), "bad-format");
    assert_eq!(XmlError::UnsupportedEncoding.condition(), "unsupported-encoding");
    assert_eq!(XmlError::PolicyViolation(xmppd_xml::LimitKind::StanzaSize).condition(), "policy-violation");
    let error = error_after_header(b"<message><body>&nbsp;</body></message>").unwrap();
    assert_eq!(error.condition(), "restricted-xml");
    assert_eq!(error.text(), "reference to an undeclared entity");
    assert!(error.to_string().contains("undeclared entity"));
}

#[test]
fn errors_poison_the_parser() {
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
    parser.feed(b"<message><!-- x --></message>");
    let error = parser.next_event().unwrap_err();
    assert!(matches!(error, XmlError::RestrictedXml(_)));
    assert_eq!(parser.buffered_len(), 0, "the buffer is released");
    parser.feed(b"<message/>");
    assert_eq!(parser.buffered_len(), 0, "input is ignored once poisoned");
    assert_eq!(parser.next_event().unwrap_err(), error);
    assert_eq!(parser.next_event().unwrap_err(), error);
    assert_eq!(parser.error(), Some(&error));
}

#[test]
fn errors_are_reported_before_the_token_ends() {
    // A never-ending tag with '<' inside a value fails at once.
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    parser.next_event().unwrap();
    parser.feed(b"<message to='a<");
    assert!(matches!(parser.next_event(), Err(XmlError::NotWellFormed(_))));
    // Invalid UTF-8 in text fails without waiting for the next '<'.
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    parser.next_event().unwrap();
    parser.feed(b"<message><body>abc\xff");
    assert!(matches!(parser.next_event(), Err(XmlError::NotWellFormed(_))));
}
