//! The storage-neutral model of a XEP-0227 export.
//!
//! These are this crate's own types: they mirror what the format carries
//! (XEP-0227 §4), not how any server stores it. Payloads that xmppd keeps as
//! XML (vCards, private XML, PEP, offline messages) stay XML here.

use std::fmt;

use xmppd_jid::{BareJid, DomainJid};
use xmppd_proto::data_form::DataForm;
use xmppd_xml::Element;

use crate::timestamp::Timestamp;

/// A whole export: every host of a `<server-data/>` document (XEP-0227 §4,
/// §4.1). Only for exports that fit in memory; large files are read user by
/// user with [`Reader`](crate::Reader).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    /// The hosts, in the order they first appear.
    pub hosts: Vec<HostData>,
}

/// One virtual host, `<host jid='…'/>` (XEP-0227 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostData {
    /// The host's domain (the `jid` attribute), normalized.
    pub domain: DomainJid,
    /// Its users, in file order.
    pub users: Vec<UserData>,
}

/// One account, `<user name='…'/>` (XEP-0227 §4.2), with everything the
/// format holds for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserData {
    /// The localpart (the `name` attribute), normalized with the PRECIS
    /// `UsernameCaseMapped` profile (RFC 7622 §3.3).
    pub username: String,
    /// The credentials: the `password` attribute (§4.2) or
    /// `<scram-credentials/>` (§4.3). When a file holds both, the SCRAM form
    /// wins, so that hashed secrets are kept as they are.
    pub password: Option<Password>,
    /// The roster (§4.4, RFC 6121 §2.1).
    pub roster: Vec<RosterEntry>,
    /// Inbound subscription requests not yet answered (§4.9, RFC 6121
    /// §3.1.3).
    pub pending_in: Vec<PendingSubscription>,
    /// The XEP-0054 vCard, `<vCard xmlns='vcard-temp'/>` (§4.7).
    pub vcard: Option<Element>,
    /// The children of `<query xmlns='jabber:iq:private'/>`: one element per
    /// XEP-0049 private XML storage item (§4.6).
    pub private: Vec<Element>,
    /// Messages stored while the user was offline, oldest first (§4.5).
    pub offline: Vec<OfflineEntry>,
    /// The XEP-0163 PEP nodes (§4.10): every node named by a
    /// `<configure/>` of `<pubsub xmlns='…/pubsub#owner'/>` or an `<items/>`
    /// of `<pubsub xmlns='…/pubsub'/>`, in the order they first appear.
    /// Each name at most once.
    pub pep: Vec<PepNode>,
    /// Children of `<user/>` this model has no place for, kept as they are:
    /// privacy lists (§4.8), message archives (§4.11), SCRAM credentials
    /// of unknown mechanisms, PEP node affiliations and subscriptions
    /// (§4.10.1, kept in a `<pubsub xmlns='…/pubsub#owner'/>` of their own)
    /// and extension elements. XEP-0227 §4 asks an
    /// importer to ignore such data and to tell the operator; the writer
    /// writes them back unchanged.
    pub unsupported: Vec<Element>,
}

/// An account's credentials (XEP-0227 §4.2, §4.3).
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// The plaintext password (the `password` attribute, discouraged by
    /// §4.2).
    Plain(String),
    /// SCRAM credentials, at most one per hash function (§4.3).
    Scram(Vec<ScramEntry>),
}

impl fmt::Debug for Password {
    // Passwords and SCRAM keys are secrets: keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Plain(_) => f.write_str("Plain(..)"),
            Password::Scram(entries) => f.debug_tuple("Scram").field(entries).finish(),
        }
    }
}

/// The hash function of a SCRAM mechanism (RFC 5802, RFC 7677).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramHash {
    /// `SCRAM-SHA-1`.
    Sha1,
    /// `SCRAM-SHA-256`.
    Sha256,
    /// `SCRAM-SHA-512`.
    Sha512,
}

impl ScramHash {
    /// The hash name as xmppd's storage spells it: `"SHA-1"`, `"SHA-256"`,
    /// `"SHA-512"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SHA-1",
            ScramHash::Sha256 => "SHA-256",
            ScramHash::Sha512 => "SHA-512",
        }
    }

    /// The SASL mechanism name used in the `mechanism` attribute of
    /// `<scram-credentials/>` (XEP-0227 §4.3: without `-PLUS`).
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1",
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses a mechanism name (`SCRAM-SHA-256`).
    pub fn from_mechanism(mechanism: &str) -> Option<ScramHash> {
        match mechanism {
            "SCRAM-SHA-1" => Some(ScramHash::Sha1),
            "SCRAM-SHA-256" => Some(ScramHash::Sha256),
            "SCRAM-SHA-512" => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    /// The output length of the hash in bytes, which is the length of the
    /// StoredKey and ServerKey.
    pub fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
            ScramHash::Sha512 => 64,
        }
    }
}

/// One set of SCRAM credentials, `<scram-credentials/>` (XEP-0227 §4.3,
/// RFC 5802 §3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramEntry {
    /// The hash function.
    pub mechanism_hash: ScramHash,
    /// The iteration count `i` (`<iter-count/>`), positive.
    pub iterations: u32,
    /// The salt (`<salt/>`, base64 in the file).
    pub salt: Vec<u8>,
    /// `StoredKey := H(ClientKey)` (`<stored-key/>`).
    pub stored_key: Vec<u8>,
    /// `ServerKey := HMAC(SaltedPassword, "Server Key")` (`<server-key/>`).
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramEntry {
    // The keys are password-equivalent for offline guessing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramEntry")
            .field("mechanism_hash", &self.mechanism_hash)
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

/// The `subscription` attribute of a roster item (RFC 6121 §2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Subscription {
    /// Neither side is subscribed.
    #[default]
    None,
    /// The user is subscribed to the contact's presence.
    To,
    /// The contact is subscribed to the user's presence.
    From,
    /// Both.
    Both,
}

impl Subscription {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    /// Parses the attribute value (`remove` is a request, not a state).
    pub fn parse(value: &str) -> Option<Subscription> {
        match value {
            "none" => Some(Subscription::None),
            "to" => Some(Subscription::To),
            "from" => Some(Subscription::From),
            "both" => Some(Subscription::Both),
            _ => None,
        }
    }
}

/// One roster item, `<item/>` of `<query xmlns='jabber:iq:roster'/>`
/// (XEP-0227 §4.4, RFC 6121 §2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The contact's bare JID, normalized.
    pub jid: BareJid,
    /// The handle the user gave the contact (an empty `name` is none).
    pub name: Option<String>,
    /// The subscription state.
    pub subscription: Subscription,
    /// Pending-out: `ask='subscribe'` (RFC 6121 §2.1.2.2).
    pub ask: bool,
    /// Pre-approved: `approved='true'` (RFC 6121 §2.1.2.1, §3.4).
    pub approved: bool,
    /// The groups, in file order, without duplicates or empty names.
    pub groups: Vec<String>,
}

/// An inbound subscription request (XEP-0227 §4.9): a
/// `<presence type='subscribe'/>` child of `<user/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSubscription {
    /// The requesting contact's bare JID, normalized.
    pub from: BareJid,
    /// The text of the request's `<status/>`, if any.
    pub status: Option<String>,
    /// The complete `<presence/>`, serialised with `jabber:client` as the
    /// default namespace (no `xmlns` on the top element). When empty, the
    /// writer builds a minimal request from `from` and `status`.
    pub stanza: Vec<u8>,
}

/// One offline message (XEP-0227 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineEntry {
    /// When the exporting server stored it: the stamp of the XEP-0203
    /// `<delay/>` it added (the one whose `from` is the host), or else of
    /// the first delay the message carries.
    pub stamp: Option<Timestamp>,
    /// The `<message/>`, serialised with `jabber:client` as the default
    /// namespace, without the exporting server's `<delay/>` (the importing
    /// server adds its own on delivery).
    pub stanza: Vec<u8>,
}

/// One PEP node (XEP-0227 §4.10, XEP-0163): its configuration and items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PepNode {
    /// The node name (the `node` attribute, XEP-0060 NodeID).
    pub name: String,
    /// The node configuration: the XEP-0004 form of `<configure/>`
    /// (§4.10.1), as written (typically
    /// `http://jabber.org/protocol/pubsub#node_config` fields, XEP-0060
    /// §16.4.3). `None` when the file has no form for the node (items
    /// without a `<configure/>`, or an empty one): the importing server's
    /// defaults apply.
    pub config: Option<DataForm>,
    /// The items (§4.10.2), oldest first, each id at most once.
    ///
    /// XEP-0227 does not say in which order `<item/>`s are written. This
    /// crate reads and writes document order as oldest first, which is
    /// what Prosody's `mod_storage_xep0227` does (it appends each
    /// published item to `<items/>`), so that an export read back gives
    /// the same order.
    pub items: Vec<PepItem>,
}

/// One item of a PEP node (XEP-0227 §4.10.2, XEP-0060 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PepItem {
    /// The item id (the `id` attribute, required).
    pub id: String,
    /// The `publisher` attribute (XEP-0060 §7.1.2), if any.
    pub publisher: Option<String>,
    /// When the item was published, if the source records it. XEP-0227
    /// has no place for it, so the reader never sets it and the writer
    /// does not write it; Prosody's file storage has it.
    pub published: Option<Timestamp>,
    /// The payload: the `<item/>`'s child element, if any.
    pub payload: Option<Element>,
}
