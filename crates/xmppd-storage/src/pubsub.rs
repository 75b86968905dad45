//! Storage of personal eventing nodes (XEP-0163): per account, named nodes
//! with a configuration and an ordered list of items (XEP-0060 §6.5, §7.1).
//!
//! These are storage rows, not wire types: the PEP service converts them
//! to and from `http://jabber.org/protocol/pubsub` XML and data forms.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StorageError;

/// Who may subscribe to a node and retrieve its items (XEP-0060 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessModel {
    /// Anyone.
    Open,
    /// Contacts with a presence subscription to the owner (the PEP
    /// default, XEP-0163 §4.5).
    #[default]
    Presence,
    /// Contacts in the owner's roster groups listed in
    /// [`NodeConfig::roster_groups_allowed`].
    Roster,
    /// Only the owner (and entities the owner lists; PEP keeps no list).
    Whitelist,
    /// Subscriptions approved by the owner; PEP treats it as whitelist.
    Authorize,
}

impl AccessModel {
    /// The `pubsub#access_model` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AccessModel::Open => "open",
            AccessModel::Presence => "presence",
            AccessModel::Roster => "roster",
            AccessModel::Whitelist => "whitelist",
            AccessModel::Authorize => "authorize",
        }
    }

    /// Parses a `pubsub#access_model` value.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "open" => Some(AccessModel::Open),
            "presence" => Some(AccessModel::Presence),
            "roster" => Some(AccessModel::Roster),
            "whitelist" => Some(AccessModel::Whitelist),
            "authorize" => Some(AccessModel::Authorize),
            _ => None,
        }
    }
}

/// Who may publish to a node (XEP-0060 §16.4.3 `pubsub#publish_model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishModel {
    /// The owner only (PEP: the account itself).
    #[default]
    Publishers,
    /// Subscribers too.
    Subscribers,
    /// Anyone.
    Open,
}

impl PublishModel {
    /// The `pubsub#publish_model` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PublishModel::Publishers => "publishers",
            PublishModel::Subscribers => "subscribers",
            PublishModel::Open => "open",
        }
    }

    /// Parses a `pubsub#publish_model` value.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "publishers" => Some(PublishModel::Publishers),
            "subscribers" => Some(PublishModel::Subscribers),
            "open" => Some(PublishModel::Open),
            _ => None,
        }
    }
}

/// When the last published item is sent (XEP-0060 §16.4.3
/// `pubsub#send_last_published_item`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendLastPublished {
    /// Never.
    Never,
    /// When an entity subscribes.
    OnSub,
    /// On subscription and when a subscriber becomes available (the PEP
    /// default, XEP-0163 §4.3.3).
    #[default]
    OnSubAndPresence,
}

impl SendLastPublished {
    /// The field value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SendLastPublished::Never => "never",
            SendLastPublished::OnSub => "on_sub",
            SendLastPublished::OnSubAndPresence => "on_sub_and_presence",
        }
    }

    /// Parses the field value.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "never" => Some(SendLastPublished::Never),
            "on_sub" => Some(SendLastPublished::OnSub),
            "on_sub_and_presence" => Some(SendLastPublished::OnSubAndPresence),
            _ => None,
        }
    }
}

/// A node's configuration: the XEP-0060 §16.4.3 options a PEP service
/// honours. Unknown fields of older or newer versions decode to defaults.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeConfig {
    /// `pubsub#access_model`.
    pub access_model: AccessModel,
    /// `pubsub#publish_model`.
    pub publish_model: PublishModel,
    /// `pubsub#max_items`: `None` is `max`, as many as the server allows.
    pub max_items: Option<u32>,
    /// `pubsub#persist_items`.
    pub persist_items: bool,
    /// `pubsub#send_last_published_item`.
    pub send_last_published_item: SendLastPublished,
    /// `pubsub#deliver_notifications`.
    pub deliver_notifications: bool,
    /// `pubsub#deliver_payloads`.
    pub deliver_payloads: bool,
    /// `pubsub#notify_retract`.
    pub notify_retract: bool,
    /// `pubsub#notify_delete`.
    pub notify_delete: bool,
    /// `pubsub#notify_config`.
    pub notify_config: bool,
    /// `pubsub#roster_groups_allowed` (for [`AccessModel::Roster`]).
    pub roster_groups_allowed: Vec<String>,
    /// `pubsub#title`.
    pub title: Option<String>,
    /// `pubsub#description`.
    pub description: Option<String>,
    /// `pubsub#type`: the payload namespace.
    pub payload_type: Option<String>,
}

impl Default for NodeConfig {
    /// The PEP defaults of XEP-0163 §4.5 and Prosody/ejabberd: presence
    /// access, owner publishes, one item kept, notifications with payloads.
    fn default() -> Self {
        NodeConfig {
            access_model: AccessModel::Presence,
            publish_model: PublishModel::Publishers,
            max_items: Some(1),
            persist_items: true,
            send_last_published_item: SendLastPublished::OnSubAndPresence,
            deliver_notifications: true,
            deliver_payloads: true,
            notify_retract: true,
            notify_delete: true,
            notify_config: false,
            roster_groups_allowed: Vec::new(),
            title: None,
            description: None,
            payload_type: None,
        }
    }
}

/// One item of a node (XEP-0060 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PubsubItem {
    /// The item id, unique in its node.
    pub id: String,
    /// The publisher's JID, as the service recorded it.
    pub publisher: Option<String>,
    /// When it was (last) published, in milliseconds since the Unix epoch.
    pub published_ms: i64,
    /// The serialised payload element (empty for an item without one).
    pub payload: Vec<u8>,
}

/// A node with its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubsubNode {
    /// The node name (XEP-0060 NodeID).
    pub name: String,
    /// Its configuration.
    pub config: NodeConfig,
}

/// A node with its items, as an import writes it (XEP-0227 §4.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedNode {
    /// The node name.
    pub name: String,
    /// Its configuration.
    pub config: NodeConfig,
    /// Its items, oldest first (each id at most once).
    pub items: Vec<PubsubItem>,
}

/// Personal eventing nodes per (host, user).
///
/// Items of a node are ordered by publication: publishing an id that
/// exists replaces that item and makes it the newest. Entries of a user are
/// removed by [`AuthStore::delete_account`](crate::AuthStore::delete_account).
#[async_trait]
pub trait PubsubStore: Send + Sync {
    /// The node's configuration, or `None` when it does not exist.
    async fn node(&self, host: &str, user: &str, node: &str) -> Result<Option<NodeConfig>, StorageError>;

    /// Every node of the user, sorted by name (byte order).
    async fn nodes(&self, host: &str, user: &str) -> Result<Vec<PubsubNode>, StorageError>;

    /// Creates a node; [`StorageError::AlreadyExists`] if it exists.
    async fn create_node(&self, host: &str, user: &str, node: &str, config: &NodeConfig) -> Result<(), StorageError>;

    /// Replaces the configuration of an existing node
    /// ([`StorageError::NotFound`] otherwise). When the new `max_items` is
    /// lower than the number of items, the oldest ones are removed.
    async fn configure_node(&self, host: &str, user: &str, node: &str, config: &NodeConfig)
    -> Result<(), StorageError>;

    /// Deletes a node and its items; returns whether it existed.
    async fn delete_node(&self, host: &str, user: &str, node: &str) -> Result<bool, StorageError>;

    /// Stores an item as the newest of the node (replacing an item with the
    /// same id), then removes the oldest items beyond the node's
    /// `max_items` or beyond `ceiling` (the service's limit, which also
    /// bounds a node configured with `max`), whichever is lower, in one
    /// transaction. Returns the ids removed that way.
    /// [`StorageError::NotFound`] if the node does not exist.
    async fn publish(
        &self,
        host: &str,
        user: &str,
        node: &str,
        item: &PubsubItem,
        ceiling: u32,
    ) -> Result<Vec<String>, StorageError>;

    /// Up to `limit` (all with `None`) newest items, newest first.
    async fn items(
        &self,
        host: &str,
        user: &str,
        node: &str,
        limit: Option<u32>,
    ) -> Result<Vec<PubsubItem>, StorageError>;

    /// One item by id.
    async fn item(&self, host: &str, user: &str, node: &str, id: &str) -> Result<Option<PubsubItem>, StorageError>;

    /// Removes one item; returns whether it existed.
    async fn retract(&self, host: &str, user: &str, node: &str, id: &str) -> Result<bool, StorageError>;

    /// Removes every item of a node; returns how many.
    async fn purge(&self, host: &str, user: &str, node: &str) -> Result<u64, StorageError>;
}
