//! The c2s negotiation phases and what each top-level element means in them
//! (RFC 6120 §5 STARTTLS, §6 SASL, §7 resource binding).

use xmppd_proto::{StreamErrorCondition as Cond, bind::BindRequest, ns};
use xmppd_sasl::{ChannelBindingType, Mechanism, SaslFailure, decode_payload, encode_payload};
use xmppd_xml::Element;

use crate::StreamError;

/// Where a c2s stream stands in negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TLS is mandatory and not yet negotiated (§5.3.1).
    Tls,
    /// Waiting for SASL (§6).
    Sasl,
    /// Authenticated, waiting for resource binding (§7).
    Bind,
    /// Bound: stanzas flow (§8).
    Established,
}

/// What a top-level element asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `<starttls/>` (§5.4.2.1).
    StartTls,
    /// `<auth mechanism=…>` with its decoded initial response (§6.4.2).
    SaslAuth {
        /// The selected mechanism, or `None` if unknown/not offered.
        mechanism: Option<Mechanism>,
        /// Decoded initial response; `Some(empty)` for `=`.
        initial_response: Option<Vec<u8>>,
    },
    /// `<response/>` with decoded data (§6.4.3).
    SaslResponse(Vec<u8>),
    /// `<abort/>` (§6.4.4).
    SaslAbort,
    /// A SASL element whose base64 could not be decoded (§6.5.3).
    SaslBadEncoding,
    /// An IQ-set carrying `<bind/>` (§7.6).
    Bind {
        /// The IQ id to answer.
        id: String,
        /// The parsed request.
        request: BindRequest,
    },
    /// An RFC 3921 session-establishment IQ, answered with an empty result
    /// (RFC 6121 Appendix E).
    LegacySession {
        /// The IQ id to answer.
        id: String,
    },
    /// An IQ in the bind phase that is neither bind nor session.
    UnexpectedIq {
        /// The IQ id to answer with an error.
        id: String,
    },
}

/// Which features the server currently offers on a stream.
#[derive(Debug, Clone, Default)]
pub struct FeatureSet {
    /// Offer STARTTLS (plain TCP, TLS not active).
    pub starttls: bool,
    /// STARTTLS is required before anything else.
    pub starttls_required: bool,
    /// SASL mechanisms, in preference order.
    pub mechanisms: Vec<Mechanism>,
    /// XEP-0440 channel-binding types on offer.
    pub channel_bindings: Vec<ChannelBindingType>,
    /// Offer resource binding.
    pub bind: bool,
    /// Extra feature elements contributed by modules, already serialised.
    pub extra: Vec<u8>,
}

impl FeatureSet {
    /// Serialises `<stream:features/>` (RFC 6120 §4.3.2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"<stream:features>");
        if self.starttls {
            out.extend_from_slice(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>");
            if self.starttls_required {
                out.extend_from_slice(b"<required/>");
            }
            out.extend_from_slice(b"</starttls>");
        }
        if !self.mechanisms.is_empty() {
            out.extend_from_slice(b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
            for mechanism in &self.mechanisms {
                out.extend_from_slice(b"<mechanism>");
                out.extend_from_slice(mechanism.name().as_bytes());
                out.extend_from_slice(b"</mechanism>");
            }
            out.extend_from_slice(b"</mechanisms>");
        }
        if !self.channel_bindings.is_empty() {
            // XEP-0440 §3: advertise the channel-binding types we support.
            out.extend_from_slice(b"<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>");
            for cb in &self.channel_bindings {
                out.extend_from_slice(b"<channel-binding type='");
                out.extend_from_slice(cb.name().as_bytes());
                out.extend_from_slice(b"'/>");
            }
            out.extend_from_slice(b"</sasl-channel-binding>");
        }
        if self.bind {
            out.extend_from_slice(b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
            // RFC 6121 Appendix E: old clients look for this; it is optional.
            out.extend_from_slice(b"<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>");
        }
        out.extend_from_slice(&self.extra);
        out.extend_from_slice(b"</stream:features>");
        out
    }
}

impl Phase {
    /// Interprets a top-level element received before the stream is
    /// established. Elements that are stanzas are refused with
    /// `not-authorized` (§4.9.3.12); unknown elements with
    /// `unsupported-stanza-type` (§4.9.3.24).
    ///
    /// `starttls_offered` says whether STARTTLS is on offer (plain TCP, TLS
    /// optional) while in [`Phase::Sasl`].
    pub fn classify(self, el: &Element, starttls_offered: bool) -> Result<Command, StreamError> {
        match (self, el.ns(), el.name()) {
            (Phase::Tls, ns::TLS, "starttls") => Ok(Command::StartTls),
            (Phase::Sasl, ns::TLS, "starttls") if starttls_offered => Ok(Command::StartTls),
            (Phase::Sasl, ns::TLS, "starttls") => {
                Err(StreamError::new(Cond::UnsupportedFeature, "STARTTLS is not offered on this stream"))
            }
            (Phase::Tls, ns::SASL, "auth") => Ok(Command::SaslAuth {
                // §5.3.1: the attempt is refused with <encryption-required/>
                // by the caller; we still parse it to answer properly.
                mechanism: el.attr("mechanism").and_then(Mechanism::from_name),
                initial_response: None,
            }),
            (Phase::Sasl, ns::SASL, "auth") => {
                let mechanism = el.attr("mechanism").and_then(Mechanism::from_name);
                match decode_payload(&el.text()) {
                    Ok(initial_response) => Ok(Command::SaslAuth { mechanism, initial_response }),
                    Err(_) => Ok(Command::SaslBadEncoding),
                }
            }
            (Phase::Sasl, ns::SASL, "response") => match decode_payload(&el.text()) {
                Ok(data) => Ok(Command::SaslResponse(data.unwrap_or_default())),
                Err(_) => Ok(Command::SaslBadEncoding),
            },
            (Phase::Sasl, ns::SASL, "abort") => Ok(Command::SaslAbort),
            (Phase::Bind, ns::CLIENT, "iq") => classify_bind_iq(el),
            (_, ns::CLIENT, "message" | "presence" | "iq") => Err(StreamError::new(
                Cond::NotAuthorized,
                "stanzas are not accepted before authentication and resource binding",
            )),
            _ => Err(StreamError::new(Cond::UnsupportedStanzaType, "unexpected element during stream negotiation")),
        }
    }
}

fn classify_bind_iq(el: &Element) -> Result<Command, StreamError> {
    let id = el.attr("id").unwrap_or_default().to_owned();
    if el.attr("type") != Some("set") {
        return Ok(Command::UnexpectedIq { id });
    }
    let Some(payload) = el.children().next() else {
        return Ok(Command::UnexpectedIq { id });
    };
    if payload.ns() == ns::SESSION && payload.name() == "session" {
        return Ok(Command::LegacySession { id });
    }
    match BindRequest::from_element(payload) {
        Ok(request) => Ok(Command::Bind { id, request }),
        Err(_) => Ok(Command::UnexpectedIq { id }),
    }
}

/// Serialises a SASL `<challenge/>` (§6.4.3).
pub fn sasl_challenge(data: &[u8]) -> Vec<u8> {
    format!("<challenge xmlns='{}'>{}</challenge>", ns::SASL, encode_payload(data)).into_bytes()
}

/// Serialises a SASL `<success/>` with additional data (§6.4.6).
pub fn sasl_success(additional_data: &[u8]) -> Vec<u8> {
    if additional_data.is_empty() {
        format!("<success xmlns='{}'/>", ns::SASL).into_bytes()
    } else {
        format!("<success xmlns='{}'>{}</success>", ns::SASL, encode_payload(additional_data)).into_bytes()
    }
}

/// Serialises a SASL `<failure/>` (§6.5).
pub fn sasl_failure(failure: SaslFailure, text: Option<&str>) -> Vec<u8> {
    let mut out = format!("<failure xmlns='{}'><{}/>", ns::SASL, failure.condition_name()).into_bytes();
    if let Some(text) = text {
        out.extend_from_slice(b"<text xml:lang='en'>");
        xmppd_xml::escape_text_into(text, &mut out);
        out.extend_from_slice(b"</text>");
    }
    out.extend_from_slice(b"</failure>");
    out
}

/// Serialises the bind result (§7.6.1).
pub fn bind_result(id: &str, full_jid: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"<iq type='result' id='");
    xmppd_xml::escape_attr_into(id, &mut out);
    out.extend_from_slice(b"'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>");
    xmppd_xml::escape_text_into(full_jid, &mut out);
    out.extend_from_slice(b"</jid></bind></iq>");
    out
}

/// Serialises an IQ error reply during negotiation (§7.6.2, §8.3).
pub fn iq_error(id: &str, condition: xmppd_proto::StanzaErrorCondition, text: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(200);
    out.extend_from_slice(b"<iq type='error' id='");
    xmppd_xml::escape_attr_into(id, &mut out);
    out.extend_from_slice(b"'>");
    condition.write_error_element(condition.default_type(), text, &mut out);
    out.extend_from_slice(b"</iq>");
    out
}

/// Serialises an empty IQ result.
pub fn iq_result(id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"<iq type='result' id='");
    xmppd_xml::escape_attr_into(id, &mut out);
    out.extend_from_slice(b"'/>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    impl Phase {
        fn classify_test(self, el: &Element) -> Result<Command, StreamError> {
            self.classify(el, false)
        }
    }

    #[test]
    fn optional_starttls() {
        let starttls = element("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        assert_eq!(Phase::Sasl.classify(&starttls, true), Ok(Command::StartTls));
        let err = Phase::Sasl.classify(&starttls, false).unwrap_err();
        assert_eq!(err.condition, Cond::UnsupportedFeature);
    }

    fn element(xml: &str) -> Element {
        Element::parse_standalone(xml.as_bytes(), ns::CLIENT).unwrap()
    }

    #[test]
    fn stanzas_before_auth_are_not_authorized() {
        let err = Phase::Sasl.classify_test(&element("<message to='a@b'/>")).unwrap_err();
        assert_eq!(err.condition, Cond::NotAuthorized);
        let err = Phase::Tls.classify_test(&element("<presence/>")).unwrap_err();
        assert_eq!(err.condition, Cond::NotAuthorized);
    }

    #[test]
    fn unknown_elements_are_unsupported() {
        let err = Phase::Sasl.classify_test(&element("<foo xmlns='urn:x'/>")).unwrap_err();
        assert_eq!(err.condition, Cond::UnsupportedStanzaType);
    }

    #[test]
    fn sasl_auth_decodes_initial_response() {
        let cmd = Phase::Sasl
            .classify_test(&element(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>",
            ))
            .unwrap();
        assert_eq!(
            cmd,
            Command::SaslAuth {
                mechanism: Some(Mechanism::Plain),
                initial_response: Some(b"\0juliet\0r0m30myr0m30".to_vec()),
            }
        );
        let cmd = Phase::Sasl
            .classify_test(&element("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>"))
            .unwrap();
        assert_eq!(cmd, Command::SaslBadEncoding);
    }

    #[test]
    fn bind_requests() {
        let cmd = Phase::Bind
            .classify_test(&element(
                "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>",
            ))
            .unwrap();
        assert_eq!(cmd, Command::Bind { id: "b1".into(), request: BindRequest { resource: Some("balcony".into()) } });
        let cmd = Phase::Bind
            .classify_test(&element("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"))
            .unwrap();
        assert_eq!(cmd, Command::Bind { id: "b2".into(), request: BindRequest { resource: None } });
    }

    #[test]
    fn features_serialise() {
        let features = FeatureSet { starttls: true, starttls_required: true, ..Default::default() };
        assert_eq!(
            features.to_bytes(),
            b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
        );
    }
}
