//! RFC 6120 §4.9: stream errors.

use crate::ns;

/// Defined stream error conditions, RFC 6120 §4.9.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamErrorCondition {
    /// §4.9.3.1
    BadFormat,
    /// §4.9.3.2
    BadNamespacePrefix,
    /// §4.9.3.3
    Conflict,
    /// §4.9.3.4
    ConnectionTimeout,
    /// §4.9.3.5
    HostGone,
    /// §4.9.3.6
    HostUnknown,
    /// §4.9.3.7
    ImproperAddressing,
    /// §4.9.3.8
    InternalServerError,
    /// §4.9.3.9
    InvalidFrom,
    /// §4.9.3.10
    InvalidNamespace,
    /// §4.9.3.11
    InvalidXml,
    /// §4.9.3.12
    NotAuthorized,
    /// §4.9.3.13
    NotWellFormed,
    /// §4.9.3.14
    PolicyViolation,
    /// §4.9.3.15
    RemoteConnectionFailed,
    /// §4.9.3.16
    Reset,
    /// §4.9.3.17
    ResourceConstraint,
    /// §4.9.3.18
    RestrictedXml,
    /// §4.9.3.19
    SeeOtherHost,
    /// §4.9.3.20
    SystemShutdown,
    /// §4.9.3.21
    UndefinedCondition,
    /// §4.9.3.22
    UnsupportedEncoding,
    /// §4.9.3.23
    UnsupportedFeature,
    /// §4.9.3.24
    UnsupportedStanzaType,
    /// §4.9.3.25
    UnsupportedVersion,
}

impl StreamErrorCondition {
    /// The element name of the condition.
    pub fn name(self) -> &'static str {
        use StreamErrorCondition::*;
        match self {
            BadFormat => "bad-format",
            BadNamespacePrefix => "bad-namespace-prefix",
            Conflict => "conflict",
            ConnectionTimeout => "connection-timeout",
            HostGone => "host-gone",
            HostUnknown => "host-unknown",
            ImproperAddressing => "improper-addressing",
            InternalServerError => "internal-server-error",
            InvalidFrom => "invalid-from",
            InvalidNamespace => "invalid-namespace",
            InvalidXml => "invalid-xml",
            NotAuthorized => "not-authorized",
            NotWellFormed => "not-well-formed",
            PolicyViolation => "policy-violation",
            RemoteConnectionFailed => "remote-connection-failed",
            Reset => "reset",
            ResourceConstraint => "resource-constraint",
            RestrictedXml => "restricted-xml",
            SeeOtherHost => "see-other-host",
            SystemShutdown => "system-shutdown",
            UndefinedCondition => "undefined-condition",
            UnsupportedEncoding => "unsupported-encoding",
            UnsupportedFeature => "unsupported-feature",
            UnsupportedStanzaType => "unsupported-stanza-type",
            UnsupportedVersion => "unsupported-version",
        }
    }

    /// Maps a condition name from `xmppd-xml` errors onto the enum.
    pub fn from_name(name: &str) -> Option<Self> {
        use StreamErrorCondition::*;
        const ALL: [StreamErrorCondition; 25] = [
            BadFormat,
            BadNamespacePrefix,
            Conflict,
            ConnectionTimeout,
            HostGone,
            HostUnknown,
            ImproperAddressing,
            InternalServerError,
            InvalidFrom,
            InvalidNamespace,
            InvalidXml,
            NotAuthorized,
            NotWellFormed,
            PolicyViolation,
            RemoteConnectionFailed,
            Reset,
            ResourceConstraint,
            RestrictedXml,
            SeeOtherHost,
            SystemShutdown,
            UndefinedCondition,
            UnsupportedEncoding,
            UnsupportedFeature,
            UnsupportedStanzaType,
            UnsupportedVersion,
        ];
        ALL.into_iter().find(|c| c.name() == name)
    }

    /// Serialises `<stream:error>` (RFC 6120 §4.9.2) with an optional
    /// human-readable `<text/>`, followed by the closing stream tag.
    pub fn to_closing_bytes(self, text: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"<stream:error><");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b" xmlns='");
        out.extend_from_slice(ns::STREAMS.as_bytes());
        out.extend_from_slice(b"'/>");
        if let Some(text) = text {
            out.extend_from_slice(b"<text xmlns='");
            out.extend_from_slice(ns::STREAMS.as_bytes());
            out.extend_from_slice(b"' xml:lang='en'>");
            xmppd_xml::escape_text_into(text, &mut out);
            out.extend_from_slice(b"</text>");
        }
        out.extend_from_slice(b"</stream:error></stream:stream>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["restricted-xml", "not-well-formed", "host-unknown", "unsupported-version"] {
            let cond = StreamErrorCondition::from_name(name);
            assert_eq!(cond.map(StreamErrorCondition::name), Some(name));
        }
        assert_eq!(StreamErrorCondition::from_name("nope"), None);
    }

    #[test]
    fn serialises_error_with_text() {
        let bytes = StreamErrorCondition::PolicyViolation.to_closing_bytes(Some("a<b"));
        let text = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(
            text,
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>a&lt;b</text>\
             </stream:error></stream:stream>"
        );
    }
}
