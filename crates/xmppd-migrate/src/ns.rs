//! Namespaces of XEP-0227 and of the payloads it carries.

pub use xmppd_proto::ns::{CLIENT, DELAY, ROSTER};

/// The PIEFXIS namespace of `<server-data/>`, `<host/>`, `<user/>` and
/// `<offline-messages/>` (XEP-0227 §4, §8.1).
pub const PIE: &str = "urn:xmpp:pie:0";

/// COMPAT: the namespace XEP-0227 used before the XMPP Registrar issued
/// `urn:xmpp:pie:0` (version 1.0, 2010). ejabberd 2.x exported it and
/// ejabberd still accepts it on import (`?NS_PIEFXIS` in
/// `src/ejabberd_piefxis.erl`).
pub const PIE_OLD: &str = "http://www.xmpp.org/extensions/xep-0227.html#ns";

/// SCRAM credentials (XEP-0227 §4.3).
pub const PIE_SCRAM: &str = "urn:xmpp:pie:0#scram";

/// XInclude 1.0 (XEP-0227 §5).
pub const XINCLUDE: &str = "http://www.w3.org/2001/XInclude";

/// XEP-0049 private XML storage.
pub const PRIVATE: &str = "jabber:iq:private";

/// XEP-0054 vcard-temp.
pub const VCARD: &str = "vcard-temp";

/// XEP-0060 publish-subscribe (PEP node items, XEP-0227 §4.10.2).
pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";

/// XEP-0060 publish-subscribe owner use cases (PEP node configuration,
/// XEP-0227 §4.10.1).
pub const PUBSUB_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";

/// XEP-0091 legacy delayed delivery.
pub const LEGACY_DELAY: &str = "jabber:x:delay";

/// COMPAT: Prosody's namespace for account properties it has no XEP-0227
/// element for, written as namespaced attributes of `<user/>`
/// (`plugins/mod_storage_xep0227.lua`, `extended`). Prosody up to 0.11
/// stored its SCRAM-SHA-1 credentials there.
pub const PROSODY_EXTENDED: &str = "http://prosody.im/protocol/extended-xep0227";

/// Whether `ns` is the PIEFXIS namespace (current or pre-registration).
pub fn is_pie(ns: &str) -> bool {
    ns == PIE || ns == PIE_OLD
}
