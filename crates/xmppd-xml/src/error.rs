//! The crate's error type, mapped onto RFC 6120 §4.9.3 stream error conditions.

/// Which configurable [`Limits`](crate::Limits) value a peer crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// A stanza (depth-1 element) grew beyond `max_stanza_bytes`.
    StanzaSize,
    /// The prolog (XML declaration, whitespace and stream header) grew beyond
    /// `max_header_bytes`.
    HeaderSize,
    /// Elements nested deeper than `max_depth`.
    Depth,
    /// An element carried more than `max_attributes` attributes.
    Attributes,
    /// An element carried more than `max_namespace_decls` namespace declarations.
    NamespaceDeclarations,
}

impl LimitKind {
    /// A short human-readable description.
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::StanzaSize => "stanza size limit exceeded",
            LimitKind::HeaderSize => "stream header size limit exceeded",
            LimitKind::Depth => "element nesting limit exceeded",
            LimitKind::Attributes => "attribute count limit exceeded",
            LimitKind::NamespaceDeclarations => "namespace declaration limit exceeded",
        }
    }
}

/// An XML stream error. Each variant corresponds to one stream error condition
/// of RFC 6120 §4.9.3 (see [`XmlError::condition`]); the `&'static str` payloads
/// are human-readable reasons suitable for the `<text/>` element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// Data that violates XML 1.0 or Namespaces in XML 1.0 well-formedness:
    /// RFC 6120 §4.9.3.13 `<not-well-formed/>` (and §11.3).
    #[error("not well-formed: {0}")]
    NotWellFormed(&'static str),
    /// XML features that XMPP forbids (DTDs, comments, processing instructions,
    /// misplaced XML declarations, undeclared entity references):
    /// RFC 6120 §4.9.3.18 `<restricted-xml/>` (and §11.1).
    #[error("restricted XML: {0}")]
    RestrictedXml(&'static str),
    /// Well-formed XML that cannot be processed as an XMPP stream, such as
    /// non-whitespace character data between stanzas:
    /// RFC 6120 §4.9.3.1 `<bad-format/>`.
    #[error("bad format: {0}")]
    BadFormat(&'static str),
    /// A configured resource limit was crossed:
    /// RFC 6120 §4.9.3.14 `<policy-violation/>`.
    #[error("policy violation: {}", .0.describe())]
    PolicyViolation(LimitKind),
    /// The XML declaration names an encoding other than UTF-8, or the stream
    /// starts with a UTF-16 signature: RFC 6120 §4.9.3.22
    /// `<unsupported-encoding/>` (and §11.6).
    #[error("unsupported encoding")]
    UnsupportedEncoding,
}

impl XmlError {
    /// The RFC 6120 §4.9.3 stream error condition name, e.g. `"not-well-formed"`.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) => "not-well-formed",
            XmlError::RestrictedXml(_) => "restricted-xml",
            XmlError::BadFormat(_) => "bad-format",
            XmlError::PolicyViolation(_) => "policy-violation",
            XmlError::UnsupportedEncoding => "unsupported-encoding",
        }
    }

    /// A human-readable explanation, suitable for the stream error `<text/>`
    /// (RFC 6120 §4.9.2).
    pub fn text(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(reason) | XmlError::RestrictedXml(reason) | XmlError::BadFormat(reason) => reason,
            XmlError::PolicyViolation(kind) => kind.describe(),
            XmlError::UnsupportedEncoding => "only UTF-8 is supported",
        }
    }
}

/// Shorthand for [`XmlError::NotWellFormed`].
pub(crate) fn nwf(reason: &'static str) -> XmlError {
    XmlError::NotWellFormed(reason)
}

/// Shorthand for [`XmlError::RestrictedXml`].
pub(crate) fn restricted(reason: &'static str) -> XmlError {
    XmlError::RestrictedXml(reason)
}
