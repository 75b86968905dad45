//! Backend-neutral storage for xmppd.
//!
//! This crate defines what the server needs from persistent storage, without
//! saying how it is kept:
//!
//! * [`AuthStore`]: local accounts and their SCRAM credentials
//!   (RFC 5802 §3, RFC 7677). Passwords are never stored, only the salted
//!   `StoredKey` / `ServerKey` pair per hash function.
//! * [`KeyValueStore`]: a small Prosody-style store of bytes addressed by
//!   (host, user, store, key), enough for private XML storage (XEP-0049),
//!   vcard-temp (XEP-0054) and offline messages (XEP-0160).
//! * [`RosterStore`]: rosters with versions, subscription states and
//!   pending inbound requests (RFC 6121 §2, §3).
//! * [`OfflineStore`]: messages kept for offline users (XEP-0160), with a
//!   per-user quota.
//! * [`PubsubStore`]: personal eventing nodes and their items (XEP-0163).
//! * [`Storage`]: the bundle a backend hands to the server, with schema
//!   migration and a health check.
//!
//! Every trait is object-safe and `Send + Sync`, meant to be shared as
//! `Arc<dyn AuthStore>` and so on. Hosts and usernames are taken as `&str`,
//! already normalized by the caller (RFC 7622 §3.2 and §3.3); the store only
//! compares them byte for byte.
//!
//! With the `conformance` feature the crate also exports
//! the `conformance` module and the `conformance_tests!` macro, which every backend
//! instantiates in its tests.

#![warn(missing_docs)]

use std::sync::Arc;

use async_trait::async_trait;

mod error;
mod import;
pub mod offline;
pub mod pubsub;
pub mod roster;
pub mod validate;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod memory;

pub use error::{BoxError, StorageError};
pub use import::{AccountImport, ImportOutcome};
pub use offline::{OfflineMessage, OfflineStore};
pub use pubsub::{
    AccessModel, ImportedNode, NodeConfig, PublishModel, PubsubItem, PubsubNode, PubsubStore, SendLastPublished,
};
pub use roster::{ImportedRoster, PendingIn, Roster, RosterChange, RosterItem, RosterStore, Subscription};

/// The SCRAM hash names a [`StoredCredential`] may carry, as written in the
/// SASL mechanism names of RFC 5802 §4 (`SCRAM-SHA-1`) and RFC 7677 §3
/// (`SCRAM-SHA-256`), plus SHA-512 for `SCRAM-SHA-512`.
pub const SCRAM_HASHES: [&str; 3] = ["SHA-1", "SHA-256", "SHA-512"];

/// Output length in bytes of a SCRAM hash named as in [`SCRAM_HASHES`], which
/// is also the length of its `StoredKey` and `ServerKey` (RFC 5802 §3).
/// Returns `None` for any other name (matching is case-sensitive).
#[must_use]
pub fn scram_hash_output_len(mechanism_hash: &str) -> Option<usize> {
    match mechanism_hash {
        "SHA-1" => Some(20),
        "SHA-256" => Some(32),
        "SHA-512" => Some(64),
        _ => None,
    }
}

/// One account's SCRAM verifier for one hash function (RFC 5802 §3):
/// everything the server needs to run SCRAM without knowing the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoredCredential {
    /// Hash function name: `"SHA-1"`, `"SHA-256"` or `"SHA-512"`
    /// (see [`SCRAM_HASHES`]).
    pub mechanism_hash: String,
    /// The salt sent to the client in the server-first-message.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count `i`.
    pub iterations: u32,
    /// `StoredKey := H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `ServerKey := HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for StoredCredential {
    // The keys are password-equivalent for offline guessing: keep them out of
    // logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("mechanism_hash", &self.mechanism_hash)
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

/// One account of a bulk import: the username and its credential set.
pub type NewAccount = (String, Vec<StoredCredential>);

/// Local accounts and their SCRAM credentials.
///
/// `host` is the served domain and `user` the account's localpart, both
/// already normalized. Every method validates its input with [`validate`]
/// and returns [`StorageError::InvalidInput`] for values it refuses.
#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Creates an account with the given credentials (at most one per hash;
    /// the list may be empty).
    ///
    /// Fails with [`StorageError::AlreadyExists`] if `user` already exists on
    /// `host`, leaving the existing account untouched.
    async fn create_account(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError>;

    /// Creates many accounts in a single transaction: either all are created
    /// or none is. Fails with [`StorageError::AlreadyExists`] if any username
    /// already exists or appears twice in `accounts`.
    async fn create_accounts_bulk(&self, host: &str, accounts: &[NewAccount]) -> Result<(), StorageError>;

    /// Replaces all of the account's credentials with `credentials`
    /// (a hash not listed is removed). Fails with [`StorageError::NotFound`]
    /// if the account does not exist.
    async fn set_credentials(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError>;

    /// Deletes the account, its credentials and all of its
    /// [`KeyValueStore`] entries, roster (items and version), pending-in
    /// subscription requests ([`RosterStore`]), offline messages
    /// ([`OfflineStore`]) and PEP nodes ([`PubsubStore`]), atomically. Fails with
    /// [`StorageError::NotFound`] if the account does not exist.
    async fn delete_account(&self, host: &str, user: &str) -> Result<(), StorageError>;

    /// Creates an account together with all of its data (credentials,
    /// roster, pending subscription requests, key-value entries, offline
    /// messages), in one transaction, for `xmppd import`.
    ///
    /// Idempotent: if the account exists already, nothing at all is written
    /// and the result is [`ImportOutcome::AlreadyExists`]. Otherwise
    /// everything is written or, on any error, nothing. Data a previous
    /// owner of the name left behind without an account (for example a
    /// roster written by [`RosterStore::import_rosters`]) is replaced, so
    /// the account ends up holding exactly the imported data.
    ///
    /// Everything is checked first with [`validate::account_import`]; a
    /// refused value fails with [`StorageError::InvalidInput`], writing
    /// nothing.
    async fn import_account(&self, host: &str, account: &AccountImport) -> Result<ImportOutcome, StorageError> {
        let mut outcomes = self.import_accounts(host, std::slice::from_ref(account)).await?;
        outcomes.pop().unwrap_or_else(|| Err(StorageError::Backend("import_accounts returned no outcome".into())))
    }

    /// [`AuthStore::import_account`] for many accounts at once, in one
    /// transaction (one commit, one `fsync`), for `xmppd import`.
    ///
    /// Each account is still all-or-nothing on its own (SQL backends use a
    /// savepoint per account): the result holds one outcome per account,
    /// in the order of `accounts`. An account refused by
    /// [`validate::account_import`] gets [`StorageError::InvalidInput`]
    /// and one that exists already (or appears earlier in `accounts`)
    /// [`ImportOutcome::AlreadyExists`]; neither writes anything, and
    /// neither stops the others. The outer error is for the batch as a
    /// whole (an invalid host, a failed commit, a lost connection…): then
    /// nothing of the batch is written.
    async fn import_accounts(
        &self,
        host: &str,
        accounts: &[AccountImport],
    ) -> Result<Vec<Result<ImportOutcome, StorageError>>, StorageError>;

    /// Whether the account exists.
    async fn account_exists(&self, host: &str, user: &str) -> Result<bool, StorageError>;

    /// The account's credential for one hash (`"SHA-1"`, `"SHA-256"`,
    /// `"SHA-512"`), or `None` if the account does not exist or has no
    /// credential for that hash.
    async fn get_credential(
        &self,
        host: &str,
        user: &str,
        mechanism_hash: &str,
    ) -> Result<Option<StoredCredential>, StorageError>;

    /// All usernames on `host`, sorted by byte value (Rust `str` order).
    async fn list_accounts(&self, host: &str) -> Result<Vec<String>, StorageError>;

    /// How many accounts exist on `host`.
    async fn count_accounts(&self, host: &str) -> Result<u64, StorageError>;
}

/// A Prosody-style key-value store for modules: opaque bytes addressed by
/// (host, user, store, key).
///
/// `store` names the module's data set (for example `"private"` for
/// XEP-0049 or `"vcard"` for XEP-0054); `user` is the owning account's
/// localpart, or `""` for host-wide data; `key` may be empty for stores that
/// keep one value per user. Entries of a user are removed by
/// [`AuthStore::delete_account`].
#[async_trait]
pub trait KeyValueStore: Send + Sync {
    /// The value stored under the key, if any.
    async fn get(&self, host: &str, user: &str, store: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores `value` under the key, replacing any previous value. Values are
    /// arbitrary bytes, including empty and NUL bytes.
    async fn set(&self, host: &str, user: &str, store: &str, key: &str, value: &[u8]) -> Result<(), StorageError>;

    /// Removes the key; returns whether it existed.
    async fn delete(&self, host: &str, user: &str, store: &str, key: &str) -> Result<bool, StorageError>;

    /// All keys of one user's store, sorted by byte value.
    async fn list_keys(&self, host: &str, user: &str, store: &str) -> Result<Vec<String>, StorageError>;

    /// Removes every key of one user's store; returns how many were removed.
    async fn clear_store(&self, host: &str, user: &str, store: &str) -> Result<u64, StorageError>;
}

/// A complete storage backend: the stores plus schema and health management.
#[async_trait]
pub trait Storage: Send + Sync {
    /// The account and credential store.
    fn auth(&self) -> Arc<dyn AuthStore>;

    /// The generic key-value store for modules.
    fn kv(&self) -> Arc<dyn KeyValueStore>;

    /// Rosters and pending subscription requests (RFC 6121).
    fn roster(&self) -> Arc<dyn RosterStore>;

    /// Offline messages (XEP-0160).
    fn offline(&self) -> Arc<dyn OfflineStore>;

    /// Personal eventing nodes (XEP-0163).
    fn pubsub(&self) -> Arc<dyn PubsubStore>;

    /// Brings the schema up to date. Idempotent; backends also run it when
    /// they connect.
    async fn migrate(&self) -> Result<(), StorageError>;

    /// Checks that the backend answers queries (for readiness probes).
    async fn health_check(&self) -> Result<(), StorageError>;

    /// Closes all connections after finishing in-flight work. Later calls
    /// fail with an error.
    async fn close(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_lengths() {
        assert_eq!(scram_hash_output_len("SHA-1"), Some(20));
        assert_eq!(scram_hash_output_len("SHA-256"), Some(32));
        assert_eq!(scram_hash_output_len("SHA-512"), Some(64));
        assert_eq!(scram_hash_output_len("SHA-384"), None);
        for name in SCRAM_HASHES {
            assert!(scram_hash_output_len(name).is_some());
        }
    }

    #[test]
    fn debug_hides_keys() {
        let credential = StoredCredential {
            mechanism_hash: "SHA-1".into(),
            salt: vec![9; 16],
            iterations: 4096,
            stored_key: vec![0xAB; 20],
            server_key: vec![0xCD; 20],
        };
        let shown = format!("{credential:?}");
        assert!(shown.contains("SHA-1"));
        assert!(!shown.contains("171"), "stored_key bytes leaked: {shown}");
        assert!(!shown.contains("205"), "server_key bytes leaked: {shown}");
    }

    mod memory_conformance {
        crate::conformance_tests!(async || Some(crate::memory::MemoryStorage::new()));
    }

    #[test]
    fn traits_are_object_safe() {
        fn takes(
            _: Option<Arc<dyn AuthStore>>,
            _: Option<Arc<dyn KeyValueStore>>,
            _: Option<Arc<dyn RosterStore>>,
            _: Option<Arc<dyn OfflineStore>>,
            _: Option<Arc<dyn PubsubStore>>,
        ) {
        }
        fn bundle(_: Option<Arc<dyn Storage>>) {}
        takes(None, None, None, None, None);
        bundle(None);
    }
}
