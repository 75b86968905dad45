//! Well-formed streams: events, headers, raw stanzas, restarts.
#![allow(clippy::unwrap_used)]

mod common;

use common::{HEADER, STREAMS_NS, header_of, one_stanza, run, stanzas};
use xmppd_xml::{Event, Limits, RawElement, StreamParser, XML_NS};

#[test]
fn rfc_6120_client_stream() {
    // RFC 6120 §9.1.1, §9.1.2 (whitespace and line breaks as in the RFC).
    let input = "<?xml version='1.0'?>\n<stream:stream\n    from='juliet@im.example.com'\n    \
                 to='im.example.com'\n    version='1.0'\n    xml:lang='en'\n    xmlns='jabber:client'\n    \
                 xmlns:stream='http://etherx.jabber.org/streams'>\n\
                 <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n";
    let (events, error) = run(input.as_bytes());
    assert_eq!(error, None);
    let header = header_of(&events);
    assert_eq!(header.prefix(), Some("stream"));
    assert_eq!(header.local_name(), "stream");
    assert_eq!(header.qualified_name(), "stream:stream");
    assert_eq!(header.namespace(), STREAMS_NS);
    assert_eq!(header.default_namespace(), Some("jabber:client"));
    assert_eq!(header.prefixes(), &[("stream".to_owned(), STREAMS_NS.to_owned())]);
    assert_eq!(header.prefix_namespace("stream"), Some(STREAMS_NS));
    assert_eq!(header.attr("from"), Some("juliet@im.example.com"));
    assert_eq!(header.attr("to"), Some("im.example.com"));
    assert_eq!(header.attr("version"), Some("1.0"));
    assert_eq!(header.attr("xml:lang"), Some("en"));
    assert_eq!(header.attr("xmlns"), None, "declarations are not attributes");
    assert_eq!(header.attributes().len(), 4);

    let found = stanzas(&events);
    assert_eq!(found.len(), 1);
    let starttls = found[0];
    assert_eq!(starttls.name(), "starttls");
    assert_eq!(starttls.namespace(), "urn:ietf:params:xml:ns:xmpp-tls");
    assert!(!starttls.namespace_is_inherited());
    assert!(starttls.is_self_closing());
    assert!(starttls.is_self_contained());
    assert_eq!(&starttls.bytes()[..], b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(starttls.namespace_declarations().collect::<Vec<_>>(), vec![(None, "urn:ietf:params:xml:ns:xmpp-tls")]);
    assert_eq!(starttls.attributes().count(), 0);
}

#[test]
fn message_stanza_is_routable_without_a_dom() {
    // RFC 6120 §8.1 style message.
    let text = "<message from='juliet@example.com/balcony' id='ktx72v49' to='romeo@example.net' \
                type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message>";
    let raw = one_stanza(text);
    assert_eq!(&raw.bytes()[..], text.as_bytes());
    assert_eq!(raw.name(), "message");
    assert_eq!(raw.prefix(), None);
    assert_eq!(raw.qualified_name(), "message");
    assert_eq!(raw.namespace(), "jabber:client");
    assert!(raw.namespace_is_inherited());
    assert_eq!(raw.attr("to"), Some("romeo@example.net"));
    assert_eq!(raw.attr("from"), Some("juliet@example.com/balcony"));
    assert_eq!(raw.attr("type"), Some("chat"));
    assert_eq!(raw.attr("id"), Some("ktx72v49"));
    assert_eq!(raw.attr("xml:lang"), Some("en"));
    assert_eq!(raw.attr("lang"), None);
    assert!(raw.is_self_contained());
    assert!(!raw.is_self_closing());
    let head = &text[..text.find('>').unwrap() + 1];
    assert_eq!(raw.head_len(), head.len());
    assert_eq!(raw.head(), head.as_bytes());
    assert_eq!(&raw.tail()[..], &text.as_bytes()[head.len()..]);
}

#[test]
fn attribute_values_are_unescaped_and_normalised() {
    let raw = one_stanza("<message to='a&amp;b&#x40;c&lt;' id=\"&quot;x&apos;\" type='a\tb\r\nc'/>");
    assert_eq!(raw.attr("to"), Some("a&b@c<"));
    assert_eq!(raw.attr("id"), Some("\"x'"));
    // XML 1.0 §3.3.3 attribute-value normalisation.
    assert_eq!(raw.attr("type"), Some("a b c"));
    let attributes: Vec<_> = raw.attributes().collect();
    assert_eq!(attributes, vec![("to", "a&b@c<"), ("id", "\"x'"), ("type", "a b c")]);
}

#[test]
fn namespaces_and_self_containment() {
    // A stream-level element uses the header's prefix.
    let raw = one_stanza("<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    assert_eq!(raw.name(), "error");
    assert_eq!(raw.prefix(), Some("stream"));
    assert_eq!(raw.namespace(), STREAMS_NS);
    assert!(raw.namespace_is_inherited());
    assert!(!raw.is_self_contained());

    let raw = one_stanza("<db:result from='a' to='b' type='valid'/>");
    assert_eq!(raw.namespace(), "jabber:server:dialback");
    assert!(!raw.is_self_contained());

    // A descendant or an attribute using a header prefix.
    assert!(!one_stanza("<message><body/><stream:x/></message>").is_self_contained());
    assert!(!one_stanza("<message><body db:a='1'/></message>").is_self_contained());
    // A prefix rebound locally is self-contained.
    assert!(one_stanza("<message xmlns:stream='urn:x'><stream:x/></message>").is_self_contained());
    assert!(one_stanza("<message><x xmlns:p='urn:p' p:a='1'><p:y/></x></message>").is_self_contained());
    // xml: is built in.
    assert!(one_stanza("<message xml:lang='en'/>").is_self_contained());

    // An explicit default namespace on the stanza.
    let raw = one_stanza("<iq xmlns='jabber:server' type='get' id='1'/>");
    assert_eq!(raw.namespace(), "jabber:server");
    assert!(!raw.namespace_is_inherited());
    // A prefixed top-level element declared on itself.
    let raw = one_stanza("<p:x xmlns:p='urn:p&amp;q'/>");
    assert_eq!(raw.namespace(), "urn:p&q");
    assert_eq!(raw.namespace_declarations().collect::<Vec<_>>(), vec![(Some("p"), "urn:p&q")]);
    // Undeclaring the default namespace.
    let raw = one_stanza("<x xmlns=''/>");
    assert_eq!(raw.namespace(), "");
    // The xml prefix may be declared with its own name.
    let raw = one_stanza(&format!("<x xmlns:xml='{XML_NS}' xml:lang='en'/>"));
    assert_eq!(raw.attr("xml:lang"), Some("en"));
}

#[test]
fn whitespace_keepalives_cdata_and_close() {
    let input = format!(
        "{HEADER}\n \t\r\n<presence/> \n\n<message><body><![CDATA[<not> &markup; ]]]]><![CDATA[>]]></body></message>\
         \n </stream:stream>  \n"
    );
    let (events, error) = run(input.as_bytes());
    assert_eq!(error, None);
    assert_eq!(events.len(), 4);
    assert!(matches!(events.last(), Some(Event::StreamClose)));
    let found = stanzas(&events);
    assert_eq!(&found[0].bytes()[..], b"<presence/>");
    assert_eq!(&found[1].bytes()[..], b"<message><body><![CDATA[<not> &markup; ]]]]><![CDATA[>]]></body></message>");
    let body = found[1].parse_element().unwrap();
    assert_eq!(body.get_child("body", "jabber:client").unwrap().text(), "<not> &markup; ]]>");
}

#[test]
fn whitespace_between_stanzas_is_not_buffered() {
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
    for _ in 0..10_000 {
        parser.feed(b" ");
        assert_eq!(parser.next_event(), Ok(None));
        assert_eq!(parser.buffered_len(), 0);
    }
    parser.release_idle();
    parser.feed(b"<presence/>");
    assert!(matches!(parser.next_event(), Ok(Some(Event::Stanza(_)))));
}

#[test]
fn self_closing_root_opens_and_closes() {
    let (events, error) = run(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>");
    assert_eq!(error, None);
    assert_eq!(events.len(), 2);
    assert!(matches!(events[1], Event::StreamClose));
    assert_eq!(header_of(&events).default_namespace(), None);
}

#[test]
fn header_without_declaration_and_with_escapes() {
    let (events, error) =
        run(b"  <stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns=\"jabber:server\" \
          to='a&amp;b' version='1.0'>");
    assert_eq!(error, None);
    let header = header_of(&events);
    assert_eq!(header.attr("to"), Some("a&b"));
    assert_eq!(header.default_namespace(), Some("jabber:server"));
}

#[test]
fn stream_restart_after_sasl() {
    // RFC 6120 §6.4.6: after <success/> both sides restart the stream.
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    parser
        .feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>");
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
    let Ok(Some(Event::Stanza(auth))) = parser.next_event() else { panic!() };
    assert_eq!(auth.attr("mechanism"), Some("PLAIN"));
    assert_eq!(auth.parse_element().unwrap().text(), "AGp1bGlldAByMG0zMG15cjBtMzA=");
    assert_eq!(parser.next_event(), Ok(None));
    parser.reset();
    // A new XML declaration is allowed again.
    parser.feed(HEADER.as_bytes());
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
    parser.feed(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert!(matches!(parser.next_event(), Ok(Some(Event::Stanza(_)))));
}

#[test]
fn reset_discards_or_keeps_buffered_data() {
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    parser.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message>injected</message>");
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
    assert!(matches!(parser.next_event(), Ok(Some(Event::Stanza(_)))));
    assert!(parser.buffered_len() > 0, "the injected data is visible before reset");
    parser.reset();
    assert_eq!(parser.buffered_len(), 0);

    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    parser.feed(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    parser.feed(HEADER.as_bytes());
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
    assert!(matches!(parser.next_event(), Ok(Some(Event::Stanza(_)))));
    parser.reset_keep_buffered();
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
}

#[test]
fn reset_clears_the_header_scope() {
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    parser.next_event().unwrap();
    parser.reset();
    parser.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><db:result/>");
    assert!(matches!(parser.next_event(), Ok(Some(Event::StreamOpen(_)))));
    assert!(parser.next_event().is_err(), "db: was declared on the previous stream only");
}

#[test]
fn release_idle_frees_only_when_idle() {
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER.as_bytes());
    parser.next_event().unwrap();
    parser.feed(b"<message><bo");
    assert_eq!(parser.next_event(), Ok(None));
    let partial = parser.buffered_len();
    parser.release_idle();
    assert_eq!(parser.buffered_len(), partial, "partial data survives");
    parser.feed(b"dy/></message>");
    assert!(matches!(parser.next_event(), Ok(Some(Event::Stanza(_)))));
    parser.release_idle();
    assert_eq!(parser.buffered_len(), 0);
    parser.feed(b"<presence/>");
    assert!(matches!(parser.next_event(), Ok(Some(Event::Stanza(_)))));
}

#[test]
fn rewriting_the_start_tag() {
    let raw =
        one_stanza("<message to='romeo@example.net' from='evil@example.org' type='chat'><body>hi</body></message>");
    let mut out = Vec::new();
    raw.write_with_attrs(
        &[("from", Some("juliet@example.com/balcony")), ("type", None), ("id", Some("a'b"))],
        &mut out,
    );
    let rewritten = RawElement::from_fragment(&out, "jabber:client", &Limits::default()).unwrap();
    assert_eq!(rewritten.attr("from"), Some("juliet@example.com/balcony"));
    assert_eq!(rewritten.attr("to"), Some("romeo@example.net"));
    assert_eq!(rewritten.attr("type"), None);
    assert_eq!(rewritten.attr("id"), Some("a'b"));
    assert_eq!(rewritten.tail(), raw.tail());

    let raw = one_stanza("<presence xmlns='jabber:client' />");
    let mut out = Vec::new();
    raw.write_with_attrs(&[("from", Some("a@b/c"))], &mut out);
    assert_eq!(out, b"<presence xmlns='jabber:client'  from='a@b/c'/>");
    let rewritten = RawElement::from_fragment(&out, "", &Limits::default()).unwrap();
    assert!(rewritten.is_self_closing());
    assert_eq!(rewritten.namespace(), "jabber:client");
}

#[test]
fn fragments() {
    let raw = RawElement::from_fragment(b"  <message to='a'><body/></message>\n", "jabber:client", &Limits::default())
        .unwrap();
    assert_eq!(raw.namespace(), "jabber:client");
    assert_eq!(&raw.bytes()[..], b"<message to='a'><body/></message>");
    for bad in [&b""[..], b"<a/><b/>", b"<a/>x", b"<a>", b"text", b"</a>", b"<p:a/>"] {
        assert!(RawElement::from_fragment(bad, "", &Limits::default()).is_err(), "{bad:?}");
    }
}

#[test]
fn multibyte_names_and_text() {
    let raw = one_stanza("<ñandú xmlns='urn:ü' attr·x='Ω'>日本語 😀</ñandú>");
    assert_eq!(raw.name(), "ñandú");
    assert_eq!(raw.namespace(), "urn:ü");
    assert_eq!(raw.attr("attr·x"), Some("Ω"));
    assert_eq!(raw.parse_element().unwrap().text(), "日本語 😀");
}
