//! The DOM: parsing raw elements, building, serialising, round trips.
#![allow(clippy::unwrap_used)]

mod common;

use common::{STREAMS_NS, one_stanza};
use xmppd_xml::{Element, Limits, Node, RawElement, XML_NS, escape_attr, escape_text};

const CLIENT: &str = "jabber:client";

fn serialize(element: &Element, parent_ns: &str) -> Vec<u8> {
    let mut out = Vec::new();
    element.write_to(&mut out, parent_ns);
    out
}

/// Serialises in the stream's namespace and parses the result again.
fn round_trip(element: &Element) -> Element {
    Element::parse_standalone(&serialize(element, CLIENT), CLIENT).unwrap()
}

#[test]
fn parse_element_resolves_names() {
    let raw = one_stanza(
        "<message to='romeo@example.net' xml:lang='en'>\
         <body>Hi &amp; bye &#x263A;</body>\
         <html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>x</p></body></html>\
         <x:delay xmlns:x='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'/>\
         <stream:note/>\
         </message>",
    );
    let message = raw.parse_element().unwrap();
    assert!(message.is("message", CLIENT));
    assert_eq!(message.attr("to"), Some("romeo@example.net"));
    assert_eq!(message.attr("xml:lang"), Some("en"));
    assert_eq!(message.children().count(), 4);

    let body = message.get_child("body", CLIENT).unwrap();
    assert_eq!(body.text(), "Hi & bye \u{263A}");
    let html = message.get_child("html", "http://jabber.org/protocol/xhtml-im").unwrap();
    let xhtml_body = html.get_child("body", "http://www.w3.org/1999/xhtml").unwrap();
    assert_eq!(xhtml_body.get_child("p", "http://www.w3.org/1999/xhtml").unwrap().text(), "x");
    let delay = message.get_child("delay", "urn:xmpp:delay").unwrap();
    assert_eq!(delay.attr("stamp"), Some("2002-09-10T23:08:25Z"));
    assert_eq!(delay.attrs().len(), 1, "declarations are not kept as attributes");
    assert!(message.has_child("note", STREAMS_NS), "header prefixes resolve");
    assert!(!message.has_child("body", "urn:other"));
}

#[test]
fn text_nodes_merge_and_normalise() {
    let raw = one_stanza("<message><body>a<![CDATA[<b>]]>c&lt;\r\nd\re</body></message>");
    let message = raw.parse_element().unwrap();
    let body = message.get_child("body", CLIENT).unwrap();
    assert_eq!(body.nodes(), &[Node::Text("a<b>c<\nd\ne".to_owned())]);
    let mixed = one_stanza("<p>one<b>two</b>three</p>").parse_element().unwrap();
    assert_eq!(mixed.nodes().len(), 3);
    assert_eq!(mixed.text(), "onethree");
}

#[test]
fn prefixed_attributes_keep_their_declaration() {
    let raw = one_stanza("<message xmlns:e='urn:extra'><x e:flag='1' xml:lang='de'/></message>");
    let message = raw.parse_element().unwrap();
    let x = message.get_child("x", CLIENT).unwrap();
    assert_eq!(x.attr("e:flag"), Some("1"));
    assert_eq!(x.attr("xmlns:e"), Some("urn:extra"));
    assert_eq!(x.attr("xml:lang"), Some("de"));
    assert_eq!(round_trip(&message), message);
}

#[test]
fn serializer_declares_namespaces_only_where_they_change() {
    let message = Element::builder("message", CLIENT)
        .attr("to", "romeo@example.net")
        .attr("type", "chat")
        .append(Element::builder("body", CLIENT).text("a < b & 'c' ]]> d").build())
        .append(Element::builder("active", "http://jabber.org/protocol/chatstates").build())
        .build();
    assert_eq!(
        String::from_utf8(serialize(&message, CLIENT)).unwrap(),
        "<message to='romeo@example.net' type='chat'><body>a &lt; b &amp; 'c' ]]&gt; d</body>\
         <active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    );
    assert_eq!(
        String::from_utf8(message.to_bytes()).unwrap(),
        "<message xmlns='jabber:client' to='romeo@example.net' type='chat'><body>a &lt; b &amp; 'c' ]]&gt; d</body>\
         <active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    );
    assert_eq!(message.to_string(), String::from_utf8(message.to_bytes()).unwrap());
    // An element in no namespace under a namespaced parent.
    let outer = Element::builder("a", "urn:a").append(Element::new("b", "")).build();
    assert_eq!(outer.to_bytes(), b"<a xmlns='urn:a'><b xmlns=''/></a>");
    assert_eq!(Element::parse_standalone(&outer.to_bytes(), "").unwrap(), outer);
}

#[test]
fn serializer_escapes_everything_it_must() {
    let tricky = "quote' dq\" tab\t nl\n cr\r amp& lt< gt> nul\u{0} \u{FFFF}";
    let element = Element::builder("x", "urn:x").attr("v", tricky).text(tricky).build();
    let parsed = Element::parse_standalone(&element.to_bytes(), "").unwrap();
    let cleaned = tricky.replace(['\u{0}', '\u{FFFF}'], "\u{FFFD}");
    assert_eq!(parsed.attr("v"), Some(cleaned.as_str()));
    assert_eq!(parsed.text(), cleaned);
    assert_eq!(escape_text("<&>"), "&lt;&amp;&gt;");
    assert_eq!(escape_attr("'\""), "&apos;&quot;");
}

#[test]
fn builder_and_accessors() {
    let mut element = Element::builder("query", "jabber:iq:roster")
        .attr("ver", "1")
        .attr_opt("missing", None::<String>)
        .append_all([
            Element::builder("item", "jabber:iq:roster").attr("jid", "a@b").build(),
            Element::builder("item", "jabber:iq:roster").attr("jid", "c@d").build(),
        ])
        .append("tail")
        .append(String::from(" text"))
        .build();
    assert_eq!(element.name(), "query");
    assert_eq!(element.ns(), "jabber:iq:roster");
    assert_eq!(element.children().count(), 2);
    assert_eq!(element.text(), "tail text");
    assert_eq!(element.nodes().len(), 3);
    element.set_attr("ver", "2");
    assert_eq!(element.attr("ver"), Some("2"));
    assert_eq!(element.attrs().len(), 1);
    assert_eq!(element.remove_attr("ver"), Some("2".to_owned()));
    assert_eq!(element.attr("ver"), None);
    element.get_child_mut("item", "jabber:iq:roster").unwrap().set_attr("name", "A");
    assert_eq!(element.children().next().unwrap().attr("name"), Some("A"));
    element.push_child(Element::new("group", "jabber:iq:roster"));
    element.push_text("!");
    assert_eq!(element.children().count(), 3);
}

#[test]
fn raw_and_dom_round_trips() {
    let sources = [
        "<message from='juliet@example.com/balcony' id='ktx72v49' to='romeo@example.net' type='chat' xml:lang='en'>\
         <body>Art thou not Romeo, and a Montague?</body></message>",
        "<iq type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='i'>\
         <entry xmlns='http://www.w3.org/2005/Atom' xmlns:x='urn:x' x:attr=\"v&quot;q\"><title type='text'>T &gt; t</title>\
         </entry></item></publish></pubsub></iq>",
        "<x:custom xmlns:x='urn:custom' x:a='1' b='&apos;'>text<x:child/>more<![CDATA[&]]></x:custom>",
        "<message><body>Grüße 👋 &amp; &lt;3 &#x1F600;</body><stream:x db:y='1'/></message>",
        "<presence/>",
    ];
    for source in sources {
        let raw = one_stanza(source);
        assert_eq!(&raw.bytes()[..], source.as_bytes());
        let element = raw.parse_element().unwrap();
        // Serialising and re-parsing gives the same DOM.
        assert_eq!(round_trip(&element), element, "{source}");
        // And the serialised form is stable.
        let once = serialize(&element, CLIENT);
        assert_eq!(serialize(&round_trip(&element), CLIENT), once);
    }
}

#[test]
fn elements_in_the_xml_namespace_keep_their_prefix() {
    // Found by fuzzing: the xml namespace cannot be declared as a default.
    let raw = one_stanza("<message><xml:note type='x'><body>hi</body></xml:note></message>");
    let message = raw.parse_element().unwrap();
    let note = message.get_child("note", XML_NS).unwrap();
    assert!(note.has_child("body", CLIENT));
    let out = serialize(&message, CLIENT);
    assert_eq!(out, b"<message><xml:note type='x'><body>hi</body></xml:note></message>");
    assert_eq!(round_trip(&message), message);
    assert_eq!(note.to_bytes(), b"<xml:note type='x'><body xmlns='jabber:client'>hi</body></xml:note>");
}

#[test]
fn parse_standalone_and_fragment_limits() {
    let element = Element::parse_standalone(
        b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>",
        CLIENT,
    )
    .unwrap();
    assert_eq!(element.get_child("resource", "urn:ietf:params:xml:ns:xmpp-bind").unwrap().text(), "r");
    assert!(Element::parse_standalone(b"<a><!-- no --></a>", CLIENT).is_err());
    assert!(Element::parse_standalone(b"<xml:a/>", CLIENT).unwrap().is("a", XML_NS));
    let limits = Limits { max_stanza_bytes: 10, ..Limits::default() };
    assert!(RawElement::from_fragment(b"<a>0123456789</a>", "", &limits).is_err());
}
