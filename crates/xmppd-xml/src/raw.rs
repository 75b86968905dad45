//! [`RawElement`]: a validated stanza kept as its source bytes.

use std::sync::Arc;

use bytes::Bytes;

use crate::dom::{Element, build_element};
use crate::error::XmlError;
use crate::escape::escape_attr_into;
use crate::lex::{AttrKind, QName, Span};
use crate::limits::Limits;
use crate::ns::{HeaderScope, XML_NS};
use crate::parser::parse_fragment;

/// Where the top-level element's namespace name is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NsSource {
    /// No namespace.
    Empty,
    /// The `xml` namespace.
    Xml,
    /// The stream header's default namespace.
    HeaderDefault,
    /// A prefix declared on the stream header (index into its prefixes).
    HeaderPrefix(u32),
    /// A declaration on the element itself, stored verbatim in the bytes.
    Local(Span),
    /// A declaration on the element itself whose value had to be unescaped.
    Owned(Box<str>),
}

/// One attribute or namespace declaration of the top-level element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawAttr {
    /// The qualified name, in the element bytes.
    pub(crate) name: QName,
    /// The raw value between the quotes, in the element bytes.
    pub(crate) value: Span,
    /// The unescaped value, when it differs from the raw one.
    pub(crate) unescaped: Option<Box<str>>,
    pub(crate) kind: AttrKind,
}

/// A complete depth-1 element of an XML stream (a stanza or a negotiation
/// element, RFC 6120 §4.1), validated and kept as the exact source bytes.
///
/// Routing needs only the top-level name, namespace and attributes (`to`,
/// `from`, `type`, `id`, `xml:lang`), which are recorded as ranges into the
/// bytes, so a stanza can be forwarded without building a DOM:
///
/// * if [`is_self_contained`](Self::is_self_contained) is true, the bytes can
///   be written verbatim into another stream with the same default namespace
///   (RFC 6120 §4.8.3 treats `jabber:client` and `jabber:server` alike for
///   routing, but the namespace is inherited, so see
///   [`namespace_is_inherited`](Self::namespace_is_inherited));
/// * [`write_with_attrs`](Self::write_with_attrs) rewrites the start tag
///   (e.g. to stamp `from`, RFC 6120 §8.1.2.1) and appends the rest verbatim;
/// * [`parse_element`](Self::parse_element) builds a DOM when a module must
///   inspect the payload.
///
/// Cloning is cheap: the bytes are reference-counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawElement {
    pub(crate) bytes: Bytes,
    pub(crate) name: QName,
    pub(crate) head_len: u32,
    pub(crate) self_closing: bool,
    pub(crate) self_contained: bool,
    pub(crate) ns: NsSource,
    pub(crate) attrs: Vec<RawAttr>,
    pub(crate) scope: Arc<HeaderScope>,
}

impl RawElement {
    /// Parses one standalone element (surrounding whitespace allowed), as if
    /// it were a stanza on a stream whose default namespace is `default_ns` and
    /// which declares no prefixes; for instance bytes loaded from storage.
    pub fn from_fragment(data: &[u8], default_ns: &str, limits: &Limits) -> Result<RawElement, XmlError> {
        parse_fragment(data, default_ns, limits)
    }

    /// The exact source bytes, from `<` to the end of the end tag.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Consumes the element, returning its source bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The length of the start tag (the "head"), `>` or `/>` included.
    pub fn head_len(&self) -> usize {
        self.head_len as usize
    }

    /// The start tag's bytes.
    pub fn head(&self) -> &[u8] {
        self.bytes.get(..self.head_len()).unwrap_or_default()
    }

    /// Everything after the start tag: the content and the end tag (empty for a
    /// self-closing element). Shares the underlying buffer.
    pub fn tail(&self) -> Bytes {
        self.bytes.slice(self.head_len().min(self.bytes.len())..)
    }

    /// Whether the element was written as an empty-element tag (`<a/>`).
    pub fn is_self_closing(&self) -> bool {
        self.self_closing
    }

    /// False if the element or any descendant (or any of their attributes)
    /// uses a namespace prefix declared only on the stream header, such as
    /// `stream:` or `db:`. Only self-contained bytes may be copied verbatim
    /// into another stream.
    pub fn is_self_contained(&self) -> bool {
        self.self_contained
    }

    /// The local name of the top-level element.
    pub fn name(&self) -> &str {
        self.name.local().str(&self.bytes)
    }

    /// The namespace prefix of the top-level element, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.name.prefix().map(|prefix| prefix.str(&self.bytes))
    }

    /// The qualified name as written (`message`, `stream:error`).
    pub fn qualified_name(&self) -> &str {
        self.name.span.str(&self.bytes)
    }

    /// The resolved namespace name of the top-level element (empty for none).
    /// Unprefixed elements without their own `xmlns` inherit the stream's
    /// default namespace (RFC 6120 §4.8.3).
    pub fn namespace(&self) -> &str {
        match &self.ns {
            NsSource::Empty => "",
            NsSource::Xml => XML_NS,
            NsSource::HeaderDefault => &self.scope.default_ns,
            NsSource::HeaderPrefix(index) => {
                self.scope.prefixes.get(*index as usize).map_or("", |(_, uri)| uri.as_str())
            }
            NsSource::Local(span) => span.str(&self.bytes),
            NsSource::Owned(uri) => uri,
        }
    }

    /// Whether the top-level namespace comes from the stream header rather
    /// than from a declaration on the element itself.
    pub fn namespace_is_inherited(&self) -> bool {
        matches!(self.ns, NsSource::HeaderDefault | NsSource::HeaderPrefix(_))
    }

    fn value_of<'a>(&'a self, attr: &'a RawAttr) -> &'a str {
        match &attr.unescaped {
            Some(value) => value,
            None => attr.value.str(&self.bytes),
        }
    }

    /// The unescaped value of a top-level attribute, by qualified name
    /// (`to`, `xml:lang`). Namespace declarations are not attributes here.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|attr| attr.kind == AttrKind::Plain && attr.name.span.slice(&self.bytes) == name.as_bytes())
            .map(|attr| self.value_of(attr))
    }

    /// The top-level attributes as (qualified name, unescaped value), in
    /// document order, without namespace declarations.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs
            .iter()
            .filter(|attr| attr.kind == AttrKind::Plain)
            .map(|attr| (attr.name.span.str(&self.bytes), self.value_of(attr)))
    }

    /// The namespace declarations on the top-level element as (prefix, name);
    /// the prefix is `None` for `xmlns='…'`.
    pub fn namespace_declarations(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.attrs.iter().filter(|attr| attr.kind != AttrKind::Plain).map(|attr| {
            let prefix = (attr.kind == AttrKind::PrefixDecl).then(|| attr.name.local().str(&self.bytes));
            (prefix, self.value_of(attr))
        })
    }

    /// Builds a DOM of the element, resolving prefixes with the namespace
    /// context of the stream it arrived on.
    pub fn parse_element(&self) -> Result<Element, XmlError> {
        build_element(&self.bytes, &self.scope)
    }

    /// Writes the element to `out` with its start tag rewritten: each
    /// `(name, Some(value))` in `changes` sets that attribute (replacing it if
    /// present), each `(name, None)` removes it. Everything else, namespace
    /// declarations and content included, is copied verbatim. Names starting
    /// with `xmlns` are ignored: declarations cannot be changed this way.
    pub fn write_with_attrs(&self, changes: &[(&str, Option<&str>)], out: &mut Vec<u8>) {
        let changed = |name: &[u8]| changes.iter().any(|(changed, _)| changed.as_bytes() == name);
        let source = &self.bytes[..];
        let insert_at = self.head_len().saturating_sub(if self.self_closing { 2 } else { 1 });
        out.reserve(source.len() + changes.iter().map(|(k, v)| k.len() + v.map_or(0, str::len) + 4).sum::<usize>());
        let mut copied = 0usize;
        for attr in self.attrs.iter().filter(|attr| attr.kind == AttrKind::Plain) {
            if changed(attr.name.span.slice(source)) {
                let start = attr.name.span.start as usize;
                out.extend_from_slice(source.get(copied..start).unwrap_or_default());
                // Skip the attribute and its closing quote.
                copied = attr.value.end as usize + 1;
            }
        }
        out.extend_from_slice(source.get(copied..insert_at).unwrap_or_default());
        for (name, value) in changes {
            if let Some(value) = value
                && !name.starts_with("xmlns")
            {
                out.push(b' ');
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"='");
                escape_attr_into(value, out);
                out.push(b'\'');
            }
        }
        out.extend_from_slice(source.get(insert_at..).unwrap_or_default());
    }
}
