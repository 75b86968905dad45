//! Mapping of sqlx errors onto [`StorageError`].

use sqlx::error::{DatabaseError, ErrorKind};
use xmppd_storage::StorageError;

/// Maps a sqlx error, asking `transient_database_error` whether a database
/// error (identified by its dialect-specific code) is worth retrying.
///
/// Constraint violations become the store-level meaning they have in this
/// schema: a unique or primary key violation means the account already
/// exists, a foreign key violation that the account does not.
pub(crate) fn map_sqlx_error(
    error: sqlx::Error,
    transient_database_error: fn(&dyn DatabaseError) -> bool,
) -> StorageError {
    match error {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => StorageError::AlreadyExists,
            ErrorKind::ForeignKeyViolation => StorageError::NotFound,
            _ if transient_database_error(db.as_ref()) => StorageError::Unavailable(db.into()),
            _ => StorageError::Backend(db.into()),
        },
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => {
            StorageError::Unavailable(Box::new(error))
        }
        sqlx::Error::Configuration(_) => StorageError::Config(error.to_string()),
        sqlx::Error::Migrate(_) => StorageError::Migration(Box::new(error)),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StorageError::Corrupt(error.to_string()),
        other => StorageError::Backend(Box::new(other)),
    }
}

/// Converts a stored `BIGINT` back to a count or iteration number.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StorageError> {
    u64::try_from(value).map_err(|_| StorageError::Corrupt(format!("negative {what}: {value}")))
}

/// Converts a stored iteration count back to `u32`.
pub(crate) fn to_iterations(value: i64) -> Result<u32, StorageError> {
    u32::try_from(value).map_err(|_| StorageError::Corrupt(format!("iteration count out of range: {value}")))
}
