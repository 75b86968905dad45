//! RFC 6120 §8.3: stanza errors.

use crate::ns;

/// The `type` attribute of `<error/>`, RFC 6120 §8.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Retry after providing credentials.
    Auth,
    /// Do not retry (unrecoverable).
    Cancel,
    /// Proceed (the condition was only a warning).
    Continue,
    /// Retry after changing the data sent.
    Modify,
    /// Retry after waiting (temporary).
    Wait,
}

impl ErrorType {
    /// Attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// Defined stanza error conditions, RFC 6120 §8.3.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StanzaErrorCondition {
    /// §8.3.3.1
    BadRequest,
    /// §8.3.3.2
    Conflict,
    /// §8.3.3.3
    FeatureNotImplemented,
    /// §8.3.3.4
    Forbidden,
    /// §8.3.3.5
    Gone,
    /// §8.3.3.6
    InternalServerError,
    /// §8.3.3.7
    ItemNotFound,
    /// §8.3.3.8
    JidMalformed,
    /// §8.3.3.9
    NotAcceptable,
    /// §8.3.3.10
    NotAllowed,
    /// §8.3.3.11
    NotAuthorized,
    /// §8.3.3.12
    PolicyViolation,
    /// §8.3.3.13
    RecipientUnavailable,
    /// §8.3.3.14
    Redirect,
    /// §8.3.3.15
    RegistrationRequired,
    /// §8.3.3.16
    RemoteServerNotFound,
    /// §8.3.3.17
    RemoteServerTimeout,
    /// §8.3.3.18
    ResourceConstraint,
    /// §8.3.3.19
    ServiceUnavailable,
    /// §8.3.3.20
    SubscriptionRequired,
    /// §8.3.3.21
    UndefinedCondition,
    /// §8.3.3.22
    UnexpectedRequest,
}

impl StanzaErrorCondition {
    /// The element name of the condition.
    pub fn name(self) -> &'static str {
        use StanzaErrorCondition::*;
        match self {
            BadRequest => "bad-request",
            Conflict => "conflict",
            FeatureNotImplemented => "feature-not-implemented",
            Forbidden => "forbidden",
            Gone => "gone",
            InternalServerError => "internal-server-error",
            ItemNotFound => "item-not-found",
            JidMalformed => "jid-malformed",
            NotAcceptable => "not-acceptable",
            NotAllowed => "not-allowed",
            NotAuthorized => "not-authorized",
            PolicyViolation => "policy-violation",
            RecipientUnavailable => "recipient-unavailable",
            Redirect => "redirect",
            RegistrationRequired => "registration-required",
            RemoteServerNotFound => "remote-server-not-found",
            RemoteServerTimeout => "remote-server-timeout",
            ResourceConstraint => "resource-constraint",
            ServiceUnavailable => "service-unavailable",
            SubscriptionRequired => "subscription-required",
            UndefinedCondition => "undefined-condition",
            UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error type the RFC's examples pair with each condition (§8.3.3).
    pub fn default_type(self) -> ErrorType {
        use StanzaErrorCondition::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation | Redirect => ErrorType::Modify,
            Forbidden | NotAuthorized | RegistrationRequired | SubscriptionRequired => ErrorType::Auth,
            RecipientUnavailable | RemoteServerTimeout | ResourceConstraint => ErrorType::Wait,
            _ => ErrorType::Cancel,
        }
    }

    /// Serialises the `<error/>` child (RFC 6120 §8.3.2) into `out`.
    pub fn write_error_element(self, error_type: ErrorType, text: Option<&str>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<error type='");
        out.extend_from_slice(error_type.as_str().as_bytes());
        out.extend_from_slice(b"'><");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b" xmlns='");
        out.extend_from_slice(ns::STANZAS.as_bytes());
        out.extend_from_slice(b"'/>");
        if let Some(text) = text {
            out.extend_from_slice(b"<text xmlns='");
            out.extend_from_slice(ns::STANZAS.as_bytes());
            out.extend_from_slice(b"' xml:lang='en'>");
            xmppd_xml::escape_text_into(text, out);
            out.extend_from_slice(b"</text>");
        }
        out.extend_from_slice(b"</error>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_element_shape() {
        let mut out = Vec::new();
        StanzaErrorCondition::ServiceUnavailable.write_error_element(
            StanzaErrorCondition::ServiceUnavailable.default_type(),
            None,
            &mut out,
        );
        assert_eq!(
            out,
            b"<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
        );
    }
}
