//! The single error type shared by every storage backend.

use std::error::Error as StdError;

/// A boxed error from a backend driver, kept as the `source()` of a
/// [`StorageError`] so logs show the full chain.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Every way a storage operation can fail.
///
/// Backends map their driver errors onto these variants so that callers
/// (SASL, modules, the admin CLI) can react without knowing which database is
/// in use. [`StorageError::is_transient`] tells whether retrying the same call
/// later may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The account (or another unique row) already exists.
    #[error("already exists")]
    AlreadyExists,

    /// The account (or another addressed row) does not exist.
    #[error("not found")]
    NotFound,

    /// The caller passed a value the store refuses (empty or over-long name,
    /// NUL character, unknown SCRAM hash, key of the wrong length, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The backend configuration is unusable (bad URL, unsupported scheme,
    /// feature not compiled in).
    #[error("invalid storage configuration: {0}")]
    Config(String),

    /// The backend cannot serve the request right now (connection lost,
    /// pool exhausted, database busy or locked, serialization conflict).
    /// Retrying later may succeed.
    #[error("storage temporarily unavailable: {0}")]
    Unavailable(#[source] BoxError),

    /// A stored row could not be decoded into the storage types (for example
    /// an iteration count outside the `u32` range).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),

    /// Applying the schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migration(#[source] BoxError),

    /// A per-user quota (roster items, offline messages) is full; nothing
    /// was written.
    #[error("limit exceeded")]
    LimitExceeded,

    /// Any other backend failure; retrying is not expected to help.
    #[error("storage backend error: {0}")]
    Backend(#[source] BoxError),
}

impl StorageError {
    /// Whether retrying the same operation later may succeed.
    ///
    /// Only [`StorageError::Unavailable`] is transient: the other variants
    /// describe the request or the stored data, which a retry does not change.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }

    /// Builds [`StorageError::InvalidInput`] from a message.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        StorageError::InvalidInput(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_is_transient() {
        let io = || -> BoxError { Box::new(std::io::Error::other("boom")) };
        assert!(StorageError::Unavailable(io()).is_transient());
        assert!(!StorageError::Backend(io()).is_transient());
        assert!(!StorageError::Migration(io()).is_transient());
        assert!(!StorageError::AlreadyExists.is_transient());
        assert!(!StorageError::NotFound.is_transient());
        assert!(!StorageError::invalid_input("x").is_transient());
        assert!(!StorageError::Config("x".into()).is_transient());
        assert!(!StorageError::Corrupt("x".into()).is_transient());
        // A full quota stays full until the user's data changes (offline
        // messages delivered, roster items removed): retrying the same call
        // does not help by itself.
        assert!(!StorageError::LimitExceeded.is_transient());
    }

    #[test]
    fn source_chain_is_kept() {
        let err = StorageError::Backend(Box::new(std::io::Error::other("disk on fire")));
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
        assert_eq!(err.to_string(), "storage backend error: disk on fire");
    }
}
