//! A small owned DOM, for the modules that must inspect a payload.
//!
//! Names are stored resolved: each element has its local name and namespace
//! name, and the serializer emits `xmlns` only where an element's namespace
//! differs from its parent's. Attributes keep their qualified names
//! (`xml:lang`); when the parsed source used another prefix on an attribute,
//! the element also keeps the matching `xmlns:p` declaration as an attribute so
//! that serialising it stays well-formed.

use std::fmt;

use crate::error::{XmlError, nwf};
use crate::escape::{escape_attr_into, escape_text_into};
use crate::lex::{
    AttrKind, Markup, QName, Scan, classify_markup, find_end_tag_end, find_start_tag_end, normalize_line_ends,
    parse_end_tag, parse_start_tag, unescape_attribute, unescape_text,
};
use crate::limits::Limits;
use crate::ns::{Binding, HeaderScope, XML_NS, process_namespaces, resolve, resolved_uri};
use crate::raw::RawElement;

/// A child of an [`Element`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, unescaped. Adjacent text and CDATA sections are merged
    /// into one node when parsing.
    Text(String),
}

impl From<Element> for Node {
    fn from(element: Element) -> Node {
        Node::Element(element)
    }
}

impl From<String> for Node {
    fn from(text: String) -> Node {
        Node::Text(text)
    }
}

impl From<&str> for Node {
    fn from(text: &str) -> Node {
        Node::Text(text.to_owned())
    }
}

/// An XML element with resolved names (XML 1.0 §3, Namespaces in XML 1.0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    name: String,
    ns: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

impl Element {
    /// An empty element `name` in namespace `ns`.
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Element {
        Element { name: name.into(), ns: ns.into(), attrs: Vec::new(), children: Vec::new() }
    }

    /// Starts building an element `name` in namespace `ns`.
    pub fn builder(name: impl Into<String>, ns: impl Into<String>) -> ElementBuilder {
        ElementBuilder { element: Element::new(name, ns) }
    }

    /// Parses one standalone element (e.g. loaded from storage) as if it were a
    /// stanza on a stream whose default namespace is `default_ns`, with the
    /// default [`Limits`] except for the size limit.
    pub fn parse_standalone(data: &[u8], default_ns: &str) -> Result<Element, XmlError> {
        let limits = Limits { max_stanza_bytes: data.len().max(1), ..Limits::default() };
        RawElement::from_fragment(data, default_ns, &limits)?.parse_element()
    }

    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace name (empty for none).
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Whether this element is `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The value of an attribute, by qualified name (`id`, `xml:lang`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// All attributes as (qualified name, value), in order.
    pub fn attrs(&self) -> &[(String, String)] {
        &self.attrs
    }

    /// Sets an attribute, replacing an existing one of the same name.
    pub fn set_attr(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|(key, _)| *key == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    /// Removes an attribute, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let index = self.attrs.iter().position(|(key, _)| key == name)?;
        Some(self.attrs.remove(index).1)
    }

    /// All child nodes, text included.
    pub fn nodes(&self) -> &[Node] {
        &self.children
    }

    /// The child elements, in order.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The child elements, mutably.
    pub fn children_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The first child element `name` in namespace `ns`.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|child| child.is(name, ns))
    }

    /// The first child element `name` in namespace `ns`, mutably.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children_mut().find(|child| child.is(name, ns))
    }

    /// Whether a child element `name` in namespace `ns` exists.
    pub fn has_child(&self, name: &str, ns: &str) -> bool {
        self.get_child(name, ns).is_some()
    }

    /// The concatenated text of the direct text children.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for node in &self.children {
            if let Node::Text(piece) = node {
                text.push_str(piece);
            }
        }
        text
    }

    /// Appends a child element.
    pub fn push_child(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// Removes every child element `name` in namespace `ns`; returns how
    /// many were removed.
    pub fn remove_children(&mut self, name: &str, ns: &str) -> usize {
        let before = self.children.len();
        self.children.retain(|node| !matches!(node, Node::Element(child) if child.is(name, ns)));
        before - self.children.len()
    }

    /// Appends text, merging it with a preceding text node.
    pub fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.children.last_mut() {
            Some(Node::Text(previous)) => previous.push_str(text),
            _ => self.children.push(Node::Text(text.to_owned())),
        }
    }

    /// Appends a node (text is merged with a preceding text node).
    pub fn push_node(&mut self, node: Node) {
        match node {
            Node::Element(element) => self.push_child(element),
            Node::Text(text) => self.push_text(&text),
        }
    }

    /// Serialises the element into `out`. `parent_ns` is the default namespace
    /// in effect where the element is written (for a stanza: the stream's
    /// content namespace, e.g. `jabber:client`); `xmlns` is written only where
    /// an element's namespace differs from it. An attribute named `xmlns` is
    /// skipped (the namespace comes from [`ns`](Self::ns)); elements in the
    /// [`XML_NS`] namespace are written with the `xml:` prefix.
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        self.write_element(out, Some(parent_ns));
    }

    /// Serialises the element with an explicit `xmlns` on the top level
    /// (omitted only when the element is in no namespace).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_element(&mut out, None);
        out
    }

    /// `parent_ns` is the default namespace in effect; `None` means unknown
    /// (then the namespace is declared unless empty).
    fn write_element(&self, out: &mut Vec<u8>, parent_ns: Option<&str>) {
        // The xml namespace cannot be declared (Namespaces in XML 1.0 §3):
        // such elements keep the built-in prefix and leave the default alone.
        let xml_prefixed = self.ns == XML_NS;
        let write_name = |out: &mut Vec<u8>| {
            if xml_prefixed {
                out.extend_from_slice(b"xml:");
            }
            out.extend_from_slice(self.name.as_bytes());
        };
        out.push(b'<');
        write_name(out);
        let declare = match parent_ns {
            _ if xml_prefixed => false,
            Some(parent_ns) => self.ns != parent_ns,
            None => !self.ns.is_empty(),
        };
        if declare {
            out.extend_from_slice(b" xmlns='");
            escape_attr_into(&self.ns, out);
            out.push(b'\'');
        }
        for (name, value) in &self.attrs {
            if name == "xmlns" {
                continue;
            }
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr_into(value, out);
            out.push(b'\'');
        }
        if self.children.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        let children_ns = if xml_prefixed { parent_ns } else { Some(self.ns.as_str()) };
        for node in &self.children {
            match node {
                Node::Element(child) => child.write_element(out, children_ns),
                Node::Text(text) => escape_text_into(text, out),
            }
        }
        out.extend_from_slice(b"</");
        write_name(out);
        out.push(b'>');
    }
}

impl fmt::Display for Element {
    /// The serialised element, as [`to_bytes`](Element::to_bytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// Builder returned by [`Element::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ElementBuilder {
    element: Element,
}

impl ElementBuilder {
    /// Sets an attribute.
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<String>) -> ElementBuilder {
        self.element.set_attr(name, value);
        self
    }

    /// Sets an attribute if `value` is `Some`.
    pub fn attr_opt(self, name: impl Into<String>, value: Option<impl Into<String>>) -> ElementBuilder {
        match value {
            Some(value) => self.attr(name, value),
            None => self,
        }
    }

    /// Appends a child element or text node.
    pub fn append(mut self, child: impl Into<Node>) -> ElementBuilder {
        self.element.push_node(child.into());
        self
    }

    /// Appends several children.
    pub fn append_all<N: Into<Node>>(mut self, children: impl IntoIterator<Item = N>) -> ElementBuilder {
        for child in children {
            self.element.push_node(child.into());
        }
        self
    }

    /// Appends text.
    pub fn text(mut self, text: &str) -> ElementBuilder {
        self.element.push_text(text);
        self
    }

    /// Finishes the element.
    #[must_use]
    pub fn build(self) -> Element {
        self.element
    }
}

/// An element being built while re-parsing, with what its end needs.
struct Open {
    element: Element,
    qname: QName,
    bindings_mark: usize,
}

/// Builds the DOM of one complete element whose bytes the stream parser has
/// already validated, with `scope` as the inherited namespace context.
pub(crate) fn build_element(bytes: &[u8], scope: &HeaderScope) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| nwf("invalid UTF-8"))?;
    let limits = Limits::unlimited();
    let mut attrs = Vec::new();
    let mut bindings: Vec<Binding> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut index = 0usize;
    loop {
        let Some(&b) = bytes.get(index) else {
            return Err(nwf("unexpected end of element"));
        };
        if b != b'<' {
            let stop = bytes.get(index..).and_then(|rest| rest.iter().position(|&c| c == b'<'));
            let stop = stop.map_or(bytes.len(), |offset| index + offset);
            let parent = open.last_mut().ok_or(nwf("text outside the element"))?;
            parent.element.push_text(&unescape_text(text.get(index..stop).unwrap_or_default()));
            index = stop;
            continue;
        }
        match classify_markup(bytes.get(index..).unwrap_or_default())? {
            Markup::NeedMore => return Err(nwf("truncated markup")),
            Markup::Cdata => {
                let body = index + crate::lex::CDATA_OPEN.len();
                let length =
                    text.get(body..).and_then(|rest| rest.find("]]>")).ok_or(nwf("unterminated CDATA section"))?;
                let parent = open.last_mut().ok_or(nwf("text outside the element"))?;
                parent.element.push_text(&normalize_line_ends(text.get(body..body + length).unwrap_or_default()));
                index = body + length + 3;
            }
            Markup::EndTag => {
                let Scan::Found(end) = find_end_tag_end(bytes, index + 2)? else {
                    return Err(nwf("unterminated end tag"));
                };
                let name = parse_end_tag(bytes, index, end)?;
                let closed = open.pop().ok_or(nwf("unexpected end tag"))?;
                if name.span.slice(bytes) != closed.qname.span.slice(bytes) {
                    return Err(nwf("mismatched end tag"));
                }
                bindings.truncate(closed.bindings_mark);
                index = end;
                match open.last_mut() {
                    Some(parent) => parent.element.push_child(closed.element),
                    None => return finish(closed.element, bytes, index),
                }
            }
            Markup::StartTag => {
                let Scan::Found(end) = find_start_tag_end(bytes, index + 1, 0)? else {
                    return Err(nwf("unterminated start tag"));
                };
                let tag = parse_start_tag(bytes, index, end, &mut attrs, &limits)?;
                let bindings_mark = bindings.len();
                let outcome = process_namespaces(bytes, &tag, &attrs, &mut bindings, scope)?;
                let mut element = Element::new(
                    tag.name.local().str(bytes),
                    resolved_uri(bytes, &bindings, outcome.element, scope).into_owned(),
                );
                for attr in attrs.iter().filter(|attr| attr.kind == AttrKind::Plain) {
                    if let Some(prefix) = attr.name.prefix().map(|p| p.str(bytes))
                        && prefix != "xml"
                    {
                        let declaration = format!("xmlns:{prefix}");
                        if element.attr(&declaration).is_none() {
                            let resolved = resolve(bytes, &bindings, Some(prefix.as_bytes()), scope)?;
                            let uri = resolved_uri(bytes, &bindings, resolved, scope).into_owned();
                            element.attrs.push((declaration, uri));
                        }
                    }
                    let raw = attr.value.str(bytes);
                    let value = if attr.escaped { unescape_attribute(raw).into_owned() } else { raw.to_owned() };
                    element.attrs.push((attr.name.span.str(bytes).to_owned(), value));
                }
                index = end;
                if tag.self_closing {
                    bindings.truncate(bindings_mark);
                    match open.last_mut() {
                        Some(parent) => parent.element.push_child(element),
                        None => return finish(element, bytes, index),
                    }
                } else {
                    open.push(Open { element, qname: tag.name, bindings_mark });
                }
            }
        }
    }
}

fn finish(element: Element, bytes: &[u8], index: usize) -> Result<Element, XmlError> {
    if index == bytes.len() { Ok(element) } else { Err(nwf("data after the element")) }
}
