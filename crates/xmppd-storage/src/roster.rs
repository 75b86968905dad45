//! Storage types of the roster (RFC 6121 §2) and its subscription state
//! (RFC 6121 §3, Appendix A). These are storage rows, not wire types: the
//! roster module converts them to and from `jabber:iq:roster` XML.

use async_trait::async_trait;

use crate::StorageError;

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
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    /// Parses the attribute value (`remove` is not a state).
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Subscription::None),
            "to" => Some(Subscription::To),
            "from" => Some(Subscription::From),
            "both" => Some(Subscription::Both),
            _ => None,
        }
    }

    /// Whether the user receives the contact's presence (`to` or `both`).
    #[must_use]
    pub fn has_to(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }

    /// Whether the contact receives the user's presence (`from` or `both`).
    #[must_use]
    pub fn has_from(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }

    /// The state with (`to`, `from`) set as given.
    #[must_use]
    pub fn from_flags(to: bool, from: bool) -> Self {
        match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        }
    }
}

/// One roster item of one user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterItem {
    /// The contact's bare JID, normalized (RFC 7622).
    pub contact: String,
    /// The handle the user gave the contact.
    pub name: Option<String>,
    /// The subscription state.
    pub subscription: Subscription,
    /// Pending-out: the user asked for the contact's presence and no answer
    /// came yet (`ask='subscribe'`, RFC 6121 §3.1.2).
    pub ask: bool,
    /// Pre-approval: the user approved a subscription the contact has not
    /// asked for yet (`approved='true'`, RFC 6121 §3.4).
    pub approved: bool,
    /// Groups, in the order the client gave them, without duplicates.
    pub groups: Vec<String>,
}

/// A whole roster with its version (RFC 6121 §2.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roster {
    /// Increases with every change of the roster; 0 for a roster that was
    /// never written.
    pub version: u64,
    /// The items, sorted by contact (byte order).
    pub items: Vec<RosterItem>,
}

/// One change of a roster since some version (RFC 6121 §2.6.3 interim
/// pushes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterChange {
    /// The item as it is now, last written at `version`.
    Put {
        /// The roster version of the item's last write.
        version: u64,
        /// The item.
        item: RosterItem,
    },
    /// The contact was removed at `version`.
    Removed {
        /// The roster version of the removal.
        version: u64,
        /// The removed contact.
        contact: String,
    },
}

impl RosterChange {
    /// The roster version of the change.
    #[must_use]
    pub fn version(&self) -> u64 {
        match self {
            RosterChange::Put { version, .. } | RosterChange::Removed { version, .. } => *version,
        }
    }
}

/// An inbound subscription request the user has not answered yet
/// (pending-in, RFC 6121 §3.1.3): kept so that it is delivered again at the
/// user's next login (§3.1.3 "MUST ... redeliver").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingIn {
    /// The requesting contact's bare JID.
    pub contact: String,
    /// The `<status/>` text of the request, if it had one.
    pub status: Option<String>,
    /// The complete request as received, extensions included (RFC 6121
    /// §3.1.3: "MUST keep a record of the complete presence stanza"), at
    /// most [`MAX_PENDING_STANZA_BYTES`](crate::validate::MAX_PENDING_STANZA_BYTES).
    pub stanza: Option<Vec<u8>>,
}

/// One user's part of a bulk roster import
/// ([`RosterStore::import_rosters`]): the username and the items to write.
pub type ImportedRoster = (String, Vec<RosterItem>);

/// Rosters and pending subscription requests, per (host, user).
///
/// Every write that changes the roster bumps its version and returns the
/// new one. Entries of a user are removed by
/// [`AuthStore::delete_account`](crate::AuthStore::delete_account).
#[async_trait]
pub trait RosterStore: Send + Sync {
    /// The whole roster (empty, version 0, if the user has none).
    async fn roster(&self, host: &str, user: &str) -> Result<Roster, StorageError>;

    /// One item, if the contact is in the roster.
    async fn item(&self, host: &str, user: &str, contact: &str) -> Result<Option<RosterItem>, StorageError>;

    /// Inserts or replaces the item for `item.contact` and returns the new
    /// roster version. With `max_items = Some(n)`, adding a contact to a
    /// roster that already has `n` items fails with
    /// [`StorageError::LimitExceeded`] and changes nothing.
    async fn put_item(
        &self,
        host: &str,
        user: &str,
        item: &RosterItem,
        max_items: Option<u64>,
    ) -> Result<u64, StorageError>;

    /// Removes the item; returns the new version, or `None` (and no version
    /// change) if there was no such item.
    async fn remove_item(&self, host: &str, user: &str, contact: &str) -> Result<Option<u64>, StorageError>;

    /// What changed after roster version `since` (RFC 6121 §2.6.3): the
    /// current version, and each item written or contact removed after
    /// `since`, in version order, each once in its latest state. `None`
    /// when the store cannot tell: `since` is 0 or newer than the roster,
    /// or the history does not reach back that far (a store may keep
    /// none: the default).
    async fn changes_since(
        &self,
        _host: &str,
        _user: &str,
        _since: u64,
    ) -> Result<Option<(u64, Vec<RosterChange>)>, StorageError> {
        Ok(None)
    }

    /// Writes the items of many users of `host` in a single transaction,
    /// for provisioning (`xmppd roster import`): either everything is
    /// written or nothing is.
    ///
    /// Each item inserts or replaces (every field, groups included) the
    /// user's item for the same contact; the user's other items stay. Each
    /// user with at least one item gets its version bumped exactly once
    /// (to 1 for a roster never written); a user listed with no items is
    /// left alone. There is no item limit (unlike
    /// [`put_item`](Self::put_item)'s `max_items`), and the accounts need
    /// not exist.
    ///
    /// Fails with [`StorageError::InvalidInput`], writing nothing, if the
    /// host, a username or an item is refused by [`validate`](crate::validate),
    /// if a user is listed twice, or if a user's list holds a contact twice.
    async fn import_rosters(&self, host: &str, rosters: &[ImportedRoster]) -> Result<(), StorageError>;

    /// Records an unanswered inbound subscription request (replacing an
    /// earlier one from the same contact).
    async fn add_pending_in(&self, host: &str, user: &str, pending: &PendingIn) -> Result<(), StorageError>;

    /// Forgets the contact's request; returns whether there was one.
    async fn remove_pending_in(&self, host: &str, user: &str, contact: &str) -> Result<bool, StorageError>;

    /// Unanswered requests, sorted by contact.
    async fn pending_in(&self, host: &str, user: &str) -> Result<Vec<PendingIn>, StorageError>;
}
