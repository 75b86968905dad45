//! Offline message storage (XEP-0160): messages kept for a user with no
//! available resource, delivered at the next login.

use async_trait::async_trait;

use crate::StorageError;

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Store-assigned, increasing in insertion order per user.
    pub id: i64,
    /// When the server received it, in milliseconds since the Unix epoch
    /// (for the XEP-0203 delay stamp).
    pub stamp_ms: i64,
    /// The serialised `<message/>` as it was routed.
    pub stanza: Vec<u8>,
}

/// Offline messages per (host, user), first in, first out.
///
/// Entries of a user are removed by
/// [`AuthStore::delete_account`](crate::AuthStore::delete_account).
#[async_trait]
pub trait OfflineStore: Send + Sync {
    /// Appends a message unless the user already has `max_messages` stored,
    /// in which case it fails with [`StorageError::LimitExceeded`] and stores
    /// nothing (the caller answers `resource-constraint`, never drops it
    /// silently). Returns the new message's id. Durable when it returns.
    async fn push(
        &self,
        host: &str,
        user: &str,
        stamp_ms: i64,
        stanza: &[u8],
        max_messages: u64,
    ) -> Result<i64, StorageError>;

    /// Up to `limit` oldest messages, in insertion order.
    async fn peek(&self, host: &str, user: &str, limit: u32) -> Result<Vec<OfflineMessage>, StorageError>;

    /// Removes every message with `id <= through_id` (after delivery);
    /// returns how many were removed.
    async fn remove_through(&self, host: &str, user: &str, through_id: i64) -> Result<u64, StorageError>;

    /// How many messages the user has stored.
    async fn count(&self, host: &str, user: &str) -> Result<u64, StorageError>;
}
