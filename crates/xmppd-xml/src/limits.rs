//! Resource limits enforced while parsing (RFC 6120 §13.12 resource exhaustion).

/// Limits that bound the memory and work a peer can cause. Crossing one yields
/// [`XmlError::PolicyViolation`](crate::XmlError::PolicyViolation)
/// (RFC 6120 §4.9.3.14).
///
/// Names and attribute values have no separate limit: they are bounded by
/// `max_stanza_bytes` (inside stanzas) and `max_header_bytes` (in the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size in bytes of one stanza (a depth-1 element, from `<` to the
    /// end of its end tag). The parser never buffers more than this for an
    /// incomplete stanza. Default: 262 144 (RFC 6120 §13.12 suggests at least
    /// 10 000 bytes must be accepted).
    pub max_stanza_bytes: usize,
    /// Maximum size in bytes of the prolog: the optional XML declaration,
    /// whitespace and the stream header. Default: 8 192.
    pub max_header_bytes: usize,
    /// Maximum element nesting inside a stanza. The stanza element itself is
    /// depth 1; the stream root is not counted. Default: 32.
    pub max_depth: usize,
    /// Maximum number of attributes on one element, not counting namespace
    /// declarations. Default: 64.
    pub max_attributes: usize,
    /// Maximum number of namespace declarations (`xmlns`, `xmlns:p`) on one
    /// element. Default: 16.
    pub max_namespace_decls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 262_144,
            max_header_bytes: 8_192,
            max_depth: 32,
            max_attributes: 64,
            max_namespace_decls: 16,
        }
    }
}

impl Limits {
    /// Limits with every bound lifted (used internally to re-parse bytes that
    /// were already validated).
    pub(crate) fn unlimited() -> Self {
        Limits {
            max_stanza_bytes: usize::MAX,
            max_header_bytes: usize::MAX,
            max_depth: usize::MAX,
            max_attributes: usize::MAX,
            max_namespace_decls: usize::MAX,
        }
    }
}
