//! Routed stanzas: addressing metadata plus the serialised bytes.
//!
//! A stanza is parsed into a DOM only when a handler must look inside it
//! ([`Stanza::element`]). Routing reads only the top-level attributes, which
//! the stream parser already extracted, and forwards the same `Bytes` to every
//! recipient.

use bytes::Bytes;
use xmppd_jid::{FullJid, Jid};
use xmppd_proto::{StanzaErrorCondition, ns};
use xmppd_xml::{Element, RawElement, XmlError, escape_attr_into};

/// The three stanza kinds (RFC 6120 §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    /// `<message/>`
    Message,
    /// `<presence/>`
    Presence,
    /// `<iq/>`
    Iq,
}

impl StanzaKind {
    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            StanzaKind::Message => "message",
            StanzaKind::Presence => "presence",
            StanzaKind::Iq => "iq",
        }
    }

    /// Classifies a top-level element of a jabber:client stream.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "message" => Some(StanzaKind::Message),
            "presence" => Some(StanzaKind::Presence),
            "iq" => Some(StanzaKind::Iq),
            _ => None,
        }
    }
}

/// IQ types (RFC 6120 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IqType {
    /// Request for information.
    Get,
    /// Request to change something.
    Set,
    /// Successful response.
    Result,
    /// Error response.
    Error,
}

impl IqType {
    /// Parses the `type` attribute.
    pub fn from_attr(value: &str) -> Option<Self> {
        match value {
            "get" => Some(IqType::Get),
            "set" => Some(IqType::Set),
            "result" => Some(IqType::Result),
            "error" => Some(IqType::Error),
            _ => None,
        }
    }
}

/// Why a client's stanza was not accepted for routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StanzaReject {
    /// The `from` names someone else: stream error `invalid-from`
    /// (RFC 6120 §4.9.3.9, §8.1.2.1).
    InvalidFrom,
    /// Not a message, presence or iq: stream error `unsupported-stanza-type`.
    UnsupportedStanzaType,
    /// Bounce with this stanza error (e.g. `jid-malformed` for a bad `to`,
    /// `bad-request` for an iq without id or type); `reply` is ready to
    /// deliver to the sender, or `None` for stanzas that must not be
    /// answered (errors).
    Bounce(Option<Bytes>),
}

/// A routable stanza.
#[derive(Debug, Clone)]
pub struct Stanza {
    kind: StanzaKind,
    from: Jid,
    to: Option<Jid>,
    stanza_type: Option<Box<str>>,
    id: Option<Box<str>>,
    bytes: Bytes,
}

impl Stanza {
    /// Accepts a stanza sent by a bound client: checks `from`
    /// (RFC 6120 §8.1.2.1), parses `to` (§8.1.1, RFC 7622), checks iq
    /// `id`/`type` (§8.2.3), and stamps `from` with the session's full JID.
    pub fn from_client(raw: &RawElement, session: &FullJid) -> Result<Stanza, StanzaReject> {
        if raw.namespace() != ns::CLIENT {
            return Err(StanzaReject::UnsupportedStanzaType);
        }
        let kind = StanzaKind::from_name(raw.name()).ok_or(StanzaReject::UnsupportedStanzaType)?;
        if let Some(from) = raw.attr("from") {
            let claimed: Jid = from.parse().map_err(|_| StanzaReject::InvalidFrom)?;
            let own_full = Jid::from(session.clone());
            let own_bare = Jid::from(session.to_bare());
            if claimed != own_full && claimed != own_bare {
                return Err(StanzaReject::InvalidFrom);
            }
        }
        let stanza_type = raw.attr("type").map(Box::from);
        let id = raw.attr("id").map(Box::from);
        let from = Jid::from(session.clone());
        let bounce = |condition: StanzaErrorCondition, text: &str| {
            let is_error = stanza_type.as_deref() == Some("error");
            StanzaReject::Bounce(
                (!is_error).then(|| error_bytes(kind, id.as_deref(), None, Some(&from), condition, Some(text))),
            )
        };
        let to = match raw.attr("to") {
            None => None,
            Some(to) => match to.parse::<Jid>() {
                Ok(jid) => Some(jid),
                Err(_) => {
                    return Err(bounce(StanzaErrorCondition::JidMalformed, "the 'to' address is not a valid JID"));
                }
            },
        };
        if kind == StanzaKind::Iq {
            if id.is_none() {
                return Err(bounce(StanzaErrorCondition::BadRequest, "an iq needs an 'id'"));
            }
            if stanza_type.as_deref().and_then(IqType::from_attr).is_none() {
                return Err(bounce(StanzaErrorCondition::BadRequest, "an iq needs a valid 'type'"));
            }
        }
        let bytes = restamp(raw, from.as_str(), to.as_ref().map(Jid::as_str))
            .map_err(|_| bounce(StanzaErrorCondition::BadRequest, "the stanza could not be processed"))?;
        Ok(Stanza { kind, from, to, stanza_type, id, bytes })
    }

    /// Builds a server-originated stanza from a DOM element.
    pub fn from_element(element: &Element) -> Option<Stanza> {
        let kind = StanzaKind::from_name(element.name())?;
        let from = element.attr("from")?.parse().ok()?;
        let to = match element.attr("to") {
            Some(to) => Some(to.parse().ok()?),
            None => None,
        };
        let mut out = Vec::with_capacity(256);
        element.write_to(&mut out, ns::CLIENT);
        Some(Stanza {
            kind,
            from,
            to,
            stanza_type: element.attr("type").map(Box::from),
            id: element.attr("id").map(Box::from),
            bytes: Bytes::from(out),
        })
    }

    /// A copy of this stanza addressed to `to` (presence broadcast, RFC 6121
    /// §4.2.2, §4.4.2). A stanza without `to` gets the attribute inserted
    /// into its start tag without a DOM; otherwise the element is rebuilt.
    pub fn readdressed(&self, to: &Jid) -> Stanza {
        let name = self.kind.name().as_bytes();
        let b = &self.bytes[..];
        let fast = self.to.is_none()
            && b.len() > name.len() + 1
            && b[0] == b'<'
            && &b[1..=name.len()] == name
            && matches!(b[name.len() + 1], b' ' | b'/' | b'>');
        let bytes = if fast {
            let mut out = Vec::with_capacity(b.len() + to.as_str().len() + 8);
            out.extend_from_slice(&b[..=name.len()]);
            write_attr(&mut out, "to", to.as_str());
            out.extend_from_slice(&b[name.len() + 1..]);
            Bytes::from(out)
        } else {
            match self.element() {
                Ok(mut element) => {
                    element.set_attr("to", to.as_str());
                    let mut out = Vec::with_capacity(b.len() + 32);
                    element.write_to(&mut out, ns::CLIENT);
                    Bytes::from(out)
                }
                // Our own serialisation always parses; keep the bytes if not.
                Err(_) => self.bytes.clone(),
            }
        };
        Stanza { to: Some(to.clone()), bytes, ..self.clone() }
    }

    /// A presence stanza from the server's side of things: `type` may be
    /// `None` (available), `subscribed`, `probe`, ….
    pub fn presence(from: &Jid, to: &Jid, presence_type: Option<&str>) -> Stanza {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(b"<presence");
        if let Some(t) = presence_type {
            write_attr(&mut out, "type", t);
        }
        write_attr(&mut out, "from", from.as_str());
        write_attr(&mut out, "to", to.as_str());
        out.extend_from_slice(b"/>");
        Stanza {
            kind: StanzaKind::Presence,
            from: from.clone(),
            to: Some(to.clone()),
            stanza_type: presence_type.map(Box::from),
            id: None,
            bytes: Bytes::from(out),
        }
    }

    /// A copy carrying `id` (RFC 6121 §4.3.2.1: replies to a probe mirror
    /// its id), rebuilt through a DOM; unchanged when `id` is `None`.
    pub fn with_id(self, id: Option<&str>) -> Stanza {
        let Some(id) = id else { return self };
        let Ok(mut element) = self.element() else { return self };
        element.set_attr("id", id);
        let mut out = Vec::with_capacity(self.bytes.len() + id.len() + 8);
        element.write_to(&mut out, ns::CLIENT);
        Stanza { id: Some(id.into()), bytes: Bytes::from(out), ..self }
    }

    /// A copy with another sender (e.g. the bare JID stamped on outbound
    /// subscription requests, RFC 6121 §3.1.2), rebuilt through a DOM.
    pub fn with_from(&self, from: &Jid) -> Stanza {
        let bytes = match self.element() {
            Ok(mut element) => {
                element.set_attr("from", from.as_str());
                let mut out = Vec::with_capacity(self.bytes.len() + 8);
                element.write_to(&mut out, ns::CLIENT);
                Bytes::from(out)
            }
            Err(_) => self.bytes.clone(),
        };
        Stanza { from: from.clone(), bytes, ..self.clone() }
    }

    /// The stanza kind.
    pub fn kind(&self) -> StanzaKind {
        self.kind
    }

    /// The (stamped, trustworthy) sender.
    pub fn from(&self) -> &Jid {
        &self.from
    }

    /// The addressee, if any (§8.1.1.1: none means the sender's account).
    pub fn to(&self) -> Option<&Jid> {
        self.to.as_ref()
    }

    /// The `type` attribute.
    pub fn stanza_type(&self) -> Option<&str> {
        self.stanza_type.as_deref()
    }

    /// The `id` attribute.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// For IQs: the parsed type.
    pub fn iq_type(&self) -> Option<IqType> {
        (self.kind == StanzaKind::Iq).then(|| self.stanza_type().and_then(IqType::from_attr)).flatten()
    }

    /// The serialised stanza, in the jabber:client default namespace.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Parses the stanza into a DOM (slow path, for handlers).
    pub fn element(&self) -> Result<Element, XmlError> {
        Element::parse_standalone(&self.bytes, ns::CLIENT)
    }

    /// Whether this is an error stanza (which is never answered, §8.3.1).
    pub fn is_error(&self) -> bool {
        self.stanza_type() == Some("error")
    }

    /// An error reply to this stanza (RFC 6120 §8.3.1), from `from` (or the
    /// stanza's original addressee) back to its sender. `None` for errors.
    pub fn error_reply(&self, condition: StanzaErrorCondition, text: Option<&str>) -> Option<Stanza> {
        self.error_reply_with(condition, text, None)
    }

    /// Like [`Stanza::error_reply`], with an application-specific condition
    /// element inside `<error/>` (RFC 6120 §8.3.2, e.g. XEP-0191's
    /// `<blocked/>`).
    pub fn error_reply_with(
        &self,
        condition: StanzaErrorCondition,
        text: Option<&str>,
        application: Option<&Element>,
    ) -> Option<Stanza> {
        if self.is_error() {
            return None;
        }
        let mut bytes = error_bytes(self.kind, self.id(), self.to.as_ref(), Some(&self.from), condition, text);
        if let Some(application) = application {
            let mut app = Vec::new();
            application.write_to(&mut app, ns::CLIENT);
            let mut out = bytes.to_vec();
            let close = b"</error>";
            if let Some(at) = out.windows(close.len()).rposition(|w| w == close) {
                out.splice(at..at, app);
            }
            bytes = Bytes::from(out);
        }
        let from = self.to.clone().unwrap_or_else(|| Jid::from(self.from.to_bare()));
        Some(Stanza {
            kind: self.kind,
            from,
            to: Some(self.from.clone()),
            stanza_type: Some("error".into()),
            id: self.id.clone(),
            bytes,
        })
    }

    /// An empty IQ result for this request, or one carrying `payload`.
    pub fn iq_result(&self, payload: Option<&Element>) -> Stanza {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"<iq type='result'");
        write_attr(&mut out, "id", self.id().unwrap_or_default());
        if let Some(to) = &self.to {
            write_attr(&mut out, "from", to.as_str());
        }
        write_attr(&mut out, "to", self.from.as_str());
        match payload {
            None => out.extend_from_slice(b"/>"),
            Some(payload) => {
                out.push(b'>');
                payload.write_to(&mut out, ns::CLIENT);
                out.extend_from_slice(b"</iq>");
            }
        }
        let from = self.to.clone().unwrap_or_else(|| Jid::from(self.from.to_bare()));
        Stanza {
            kind: StanzaKind::Iq,
            from,
            to: Some(self.from.clone()),
            stanza_type: Some("result".into()),
            id: self.id.clone(),
            bytes: Bytes::from(out),
        }
    }
}

fn write_attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    escape_attr_into(value, out);
    out.push(b'\'');
}

/// Serialises a stanza error (RFC 6120 §8.3.2) without the original payload.
fn error_bytes(
    kind: StanzaKind,
    id: Option<&str>,
    from: Option<&Jid>,
    to: Option<&Jid>,
    condition: StanzaErrorCondition,
    text: Option<&str>,
) -> Bytes {
    let mut out = Vec::with_capacity(200);
    out.push(b'<');
    out.extend_from_slice(kind.name().as_bytes());
    out.extend_from_slice(b" type='error'");
    if let Some(id) = id {
        write_attr(&mut out, "id", id);
    }
    if let Some(from) = from {
        write_attr(&mut out, "from", from.as_str());
    }
    if let Some(to) = to {
        write_attr(&mut out, "to", to.as_str());
    }
    out.push(b'>');
    condition.write_error_element(condition.default_type(), text, &mut out);
    out.extend_from_slice(b"</");
    out.extend_from_slice(kind.name().as_bytes());
    out.push(b'>');
    Bytes::from(out)
}

/// Rewrites the start tag with the stamped `from` and the normalised `to`,
/// and copies the rest of the element verbatim (no DOM). Elements that
/// depend on namespace prefixes declared on the stream header are
/// re-serialised from a DOM instead, since those declarations do not travel.
fn restamp(raw: &RawElement, from: &str, to: Option<&str>) -> Result<Bytes, XmlError> {
    let mut out = Vec::with_capacity(raw.bytes().len() + from.len() + 16);
    if raw.is_self_contained() {
        raw.write_with_attrs(&[("from", Some(from)), ("to", to)], &mut out);
    } else {
        let mut element = raw.parse_element()?;
        element.set_attr("from", from);
        if let Some(to) = to {
            element.set_attr("to", to);
        }
        element.write_to(&mut out, ns::CLIENT);
    }
    Ok(Bytes::from(out))
}
