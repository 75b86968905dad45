//! XML namespace names used by the server.

/// RFC 6120 §4.8.1: the stream namespace.
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// RFC 6120 §4.8.2: content namespace of client-to-server streams.
pub const CLIENT: &str = "jabber:client";
/// RFC 6120 §4.8.2: content namespace of server-to-server streams.
pub const SERVER: &str = "jabber:server";
/// RFC 6120 §4.9.3: stream error conditions.
pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// RFC 6120 §5: STARTTLS.
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// RFC 6120 §6: SASL.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// RFC 6120 §7: resource binding.
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 3921 §3 session establishment (kept for old clients, RFC 6121 Appendix E).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// RFC 6120 §8.3: stanza error conditions.
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// XEP-0440: SASL channel-binding type capability.
pub const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
/// XEP-0199: XMPP ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0030: service discovery, info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030: service discovery, items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XML namespace of the `xml:` prefix.
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// RFC 6121 §2: the roster.
pub const ROSTER: &str = "jabber:iq:roster";
/// RFC 6121 §2.6.1: the roster versioning stream feature.
pub const ROSTER_VER: &str = "urn:xmpp:features:rosterver";
/// RFC 6121 §3.4.1: the subscription pre-approval stream feature.
pub const PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";
/// XEP-0203: delayed delivery.
pub const DELAY: &str = "urn:xmpp:delay";
/// XEP-0160 / XEP-0013: the disco feature of offline storage.
pub const MSGOFFLINE: &str = "msgoffline";
/// XEP-0191: blocking command.
pub const BLOCKING: &str = "urn:xmpp:blocking";
/// XEP-0191 §3.5: the application error for blocked messages.
pub const BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";
/// XEP-0115: entity capabilities.
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// XEP-0004: data forms.
pub const DATA_FORMS: &str = "jabber:x:data";
/// The XEP-0115 `node` naming this software in caps.
pub const CAPS_NODE: &str = "urn:xmppd:server";
/// XEP-0077: in-band registration.
pub const REGISTER: &str = "jabber:iq:register";
/// XEP-0077 §8: the in-band registration stream feature.
pub const REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";
/// XEP-0050: ad-hoc commands (also the well-known disco node of the
/// command list, §2.2).
pub const COMMANDS: &str = "http://jabber.org/protocol/commands";
/// XEP-0133: service administration (`FORM_TYPE` and node prefix).
pub const ADMIN: &str = "http://jabber.org/protocol/admin";
