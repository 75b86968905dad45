//! Namespaces in XML 1.0 (Third Edition) processing: declarations, reserved
//! prefixes and prefix resolution.

use std::borrow::Cow;

use crate::error::{XmlError, nwf};
use crate::lex::{AttrKind, AttrSpan, Span, StartTag, unescape_attribute};

/// The namespace bound to the `xml` prefix (Namespaces in XML 1.0 §3).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of namespace declarations, which must never be bound
/// (Namespaces in XML 1.0 §3).
pub const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// The namespace context a stream header establishes for the stanzas of its
/// stream (RFC 6120 §4.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HeaderScope {
    /// The default namespace, empty if none.
    pub(crate) default_ns: String,
    /// Prefix declarations, in document order.
    pub(crate) prefixes: Vec<(String, String)>,
}

/// One namespace declaration made inside the current element tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The declared prefix; `None` for the default namespace.
    pub(crate) prefix: Option<Span>,
    /// The raw attribute value.
    pub(crate) uri: Span,
    /// The raw value needs unescaping.
    pub(crate) escaped: bool,
}

/// Where a prefix (or the default namespace) is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Unprefixed, with no default namespace in scope.
    NoNamespace,
    /// The built-in `xml` prefix.
    Xml,
    /// A declaration inside the element tree (index into the bindings).
    Local(usize),
    /// The stream header's default namespace.
    HeaderDefault,
    /// A prefix declared on the stream header (index into its prefixes).
    HeaderPrefix(usize),
}

/// The (unescaped) namespace name of a binding.
pub(crate) fn binding_uri(buf: &[u8], binding: Binding) -> Cow<'_, str> {
    let raw = binding.uri.str(buf);
    if binding.escaped { unescape_attribute(raw) } else { Cow::Borrowed(raw) }
}

/// Checks a declaration against Namespaces in XML 1.0 §3 (reserved prefixes
/// and names) and §5 (no prefix undeclaring in XML 1.0).
pub(crate) fn check_declaration(prefix: Option<&[u8]>, uri: &str) -> Result<(), XmlError> {
    if uri == XMLNS_NS {
        return Err(nwf("the xmlns namespace must not be declared"));
    }
    match prefix {
        None => {
            if uri == XML_NS {
                return Err(nwf("the xml namespace must not be the default namespace"));
            }
        }
        Some(b"xmlns") => return Err(nwf("the xmlns prefix must not be declared")),
        Some(b"xml") => {
            if uri != XML_NS {
                return Err(nwf("the xml prefix must not be rebound"));
            }
        }
        Some(_) => {
            if uri.is_empty() {
                return Err(nwf("prefixes cannot be undeclared in XML 1.0"));
            }
            if uri == XML_NS {
                return Err(nwf("only the xml prefix may be bound to the xml namespace"));
            }
        }
    }
    Ok(())
}

/// Resolves a prefix (`None`: the default namespace of an unprefixed element)
/// against the element tree's declarations, then the stream header's.
pub(crate) fn resolve(
    buf: &[u8],
    bindings: &[Binding],
    prefix: Option<&[u8]>,
    scope: &HeaderScope,
) -> Result<Resolved, XmlError> {
    match prefix {
        None => {
            if let Some(index) = bindings.iter().rposition(|binding| binding.prefix.is_none()) {
                return Ok(Resolved::Local(index));
            }
            Ok(if scope.default_ns.is_empty() { Resolved::NoNamespace } else { Resolved::HeaderDefault })
        }
        Some(b"xml") => Ok(Resolved::Xml),
        Some(prefix) => {
            let local = bindings
                .iter()
                .rposition(|binding| binding.prefix.is_some_and(|declared| declared.slice(buf) == prefix));
            if let Some(index) = local {
                return Ok(Resolved::Local(index));
            }
            scope
                .prefixes
                .iter()
                .position(|(declared, _)| declared.as_bytes() == prefix)
                .map(Resolved::HeaderPrefix)
                .ok_or(nwf("unbound namespace prefix"))
        }
    }
}

/// The namespace name a resolution stands for.
pub(crate) fn resolved_uri<'a>(
    buf: &'a [u8],
    bindings: &[Binding],
    resolved: Resolved,
    scope: &'a HeaderScope,
) -> Cow<'a, str> {
    match resolved {
        Resolved::NoNamespace => Cow::Borrowed(""),
        Resolved::Xml => Cow::Borrowed(XML_NS),
        Resolved::Local(index) => match bindings.get(index) {
            Some(&binding) => binding_uri(buf, binding),
            None => Cow::Borrowed(""),
        },
        Resolved::HeaderDefault => Cow::Borrowed(&scope.default_ns),
        Resolved::HeaderPrefix(index) => Cow::Borrowed(scope.prefixes.get(index).map_or("", |(_, uri)| uri.as_str())),
    }
}

/// The outcome of namespace processing for one start tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NsOutcome {
    /// Where the element's own name is bound.
    pub(crate) element: Resolved,
    /// The element or one of its attributes uses a prefix bound on the stream
    /// header.
    pub(crate) uses_header_prefix: bool,
}

/// Pushes the tag's declarations onto `bindings` (the caller truncates them
/// when the element ends), resolves the element and attribute prefixes, and
/// rejects attributes whose expanded names collide (Namespaces in XML 1.0 §6.3).
pub(crate) fn process_namespaces(
    buf: &[u8],
    tag: &StartTag,
    attrs: &[AttrSpan],
    bindings: &mut Vec<Binding>,
    scope: &HeaderScope,
) -> Result<NsOutcome, XmlError> {
    for attr in attrs {
        let prefix = match attr.kind {
            AttrKind::Plain => continue,
            AttrKind::DefaultDecl => None,
            AttrKind::PrefixDecl => Some(attr.name.local()),
        };
        let binding = Binding { prefix, uri: attr.value, escaped: attr.escaped };
        check_declaration(prefix.map(|p| p.slice(buf)), &binding_uri(buf, binding))?;
        bindings.push(binding);
    }
    let element = resolve(buf, bindings, tag.name.prefix().map(|p| p.slice(buf)), scope)?;
    let mut uses_header_prefix = matches!(element, Resolved::HeaderPrefix(_));
    let mut prefixed = 0usize;
    for attr in attrs.iter().filter(|attr| attr.kind == AttrKind::Plain) {
        if let Some(prefix) = attr.name.prefix() {
            prefixed += 1;
            let resolved = resolve(buf, bindings, Some(prefix.slice(buf)), scope)?;
            uses_header_prefix |= matches!(resolved, Resolved::HeaderPrefix(_));
        }
    }
    if prefixed >= 2 {
        check_expanded_names(buf, attrs, bindings, scope)?;
    }
    Ok(NsOutcome { element, uses_header_prefix })
}

/// Two prefixed attributes with the same local name must not resolve to the
/// same namespace (Namespaces in XML 1.0 §6.3).
fn check_expanded_names(
    buf: &[u8],
    attrs: &[AttrSpan],
    bindings: &[Binding],
    scope: &HeaderScope,
) -> Result<(), XmlError> {
    let prefixed = || {
        attrs
            .iter()
            .filter(|attr| attr.kind == AttrKind::Plain)
            .filter_map(|attr| attr.name.prefix().map(|prefix| (prefix, attr.name.local())))
    };
    for (index, (prefix, local)) in prefixed().enumerate() {
        for (other_prefix, other_local) in prefixed().skip(index + 1) {
            if local.slice(buf) != other_local.slice(buf) {
                continue;
            }
            let first = resolve(buf, bindings, Some(prefix.slice(buf)), scope)?;
            let second = resolve(buf, bindings, Some(other_prefix.slice(buf)), scope)?;
            if resolved_uri(buf, bindings, first, scope) == resolved_uri(buf, bindings, second, scope) {
                return Err(nwf("duplicate attribute (same namespace and local name)"));
            }
        }
    }
    Ok(())
}
