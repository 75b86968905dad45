//! One account with all of its data, written at once: what
//! [`AuthStore::import_account`](crate::AuthStore::import_account) takes
//! (used by `xmppd import`, XEP-0227).

use crate::{ImportedNode, PendingIn, RosterItem, StoredCredential};

/// Everything an import writes for one account. Backends write it in one
/// transaction: all of it or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountImport {
    /// The account's localpart, normalized.
    pub username: String,
    /// Its SCRAM credentials (at most one per hash; may be empty).
    pub credentials: Vec<StoredCredential>,
    /// Its roster items (each contact at most once). A non-empty roster
    /// starts at version 1.
    pub roster: Vec<RosterItem>,
    /// Its unanswered inbound subscription requests (each contact at most
    /// once).
    pub pending_in: Vec<PendingIn>,
    /// Its key-value entries as (store, key, value), each (store, key) at
    /// most once: for example the vCard (`"vcard"`, `""`) and private XML
    /// fragments (`"private"`, `"{name} {namespace}"`).
    pub kv: Vec<(String, String, Vec<u8>)>,
    /// Its offline messages as (stamp in ms since the Unix epoch, stanza),
    /// oldest first; they get increasing ids in this order.
    pub offline: Vec<(i64, Vec<u8>)>,
    /// Its PEP nodes with their items (XEP-0163, XEP-0227 §4.10), each name
    /// at most once.
    pub pep: Vec<ImportedNode>,
}

/// What [`AuthStore::import_account`](crate::AuthStore::import_account) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportOutcome {
    /// The account did not exist; it was created with all of its data.
    Created,
    /// The account existed already; nothing was written.
    AlreadyExists,
}
