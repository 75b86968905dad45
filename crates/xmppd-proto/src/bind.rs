//! RFC 6120 §7: resource binding payload.

use xmppd_xml::Element;

use crate::{ProtoError, ns};

/// A `<bind/>` request in an IQ set (RFC 6120 §7.5 and §7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindRequest {
    /// The resource the client asked for, if any (§7.7); not yet prepared.
    pub resource: Option<String>,
}

impl BindRequest {
    /// Parses the `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>` payload.
    pub fn from_element(el: &Element) -> Result<Self, ProtoError> {
        if el.name() != "bind" || el.ns() != ns::BIND {
            return Err(ProtoError::Mismatch("bind"));
        }
        let mut resource = None;
        for child in el.children() {
            if child.name() == "resource" && child.ns() == ns::BIND {
                if resource.is_some() {
                    return Err(ProtoError::Invalid { what: "bind", reason: "more than one <resource/>".into() });
                }
                let text = child.text();
                // §7.7.2.1: an empty resource means "let the server choose".
                resource = (!text.is_empty()).then_some(text);
            }
        }
        Ok(BindRequest { resource })
    }
}
