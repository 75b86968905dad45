//! SQLite dialect.
//!
//! One database file, opened with WAL journaling, `synchronous = FULL`, a
//! 5 s busy timeout and foreign keys on. Writes go through a pool of exactly
//! one connection, so writers queue in-process instead of fighting over the
//! file lock (SQLite allows one writer at a time anyway); reads use a
//! separate read-only pool of [`READ_POOL_SIZE`] connections, which WAL lets
//! run alongside the writer. Write transactions start with `BEGIN IMMEDIATE`
//! so that another process holding the lock (an admin tool) makes them wait
//! for the busy timeout rather than fail on lock upgrade.
//!
//! With WAL and `synchronous = FULL` the WAL is synced at every commit, so
//! an acknowledged transaction survives a crash of the process and of the
//! machine (power loss, OS crash). `NORMAL` would save that fsync but may
//! roll back the last commits after a power loss, which would break the
//! promise that acknowledged data is never lost.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use xmppd_storage::{AuthStore, KeyValueStore, NewAccount, StorageError, StoredCredential, validate};

use crate::error::{map_sqlx_error, to_iterations, to_u64};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Connections in the read pool.
pub const READ_POOL_SIZE: u32 = 4;

/// How long a statement waits for another connection's lock before failing
/// with `SQLITE_BUSY` (mapped to a transient error).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Accounts per multi-row `INSERT` in a bulk import. Each account has at
/// most three credentials (one per SCRAM hash), so a credentials statement
/// binds at most 3 × 7 × 1000 = 21 000 parameters, under SQLite's default
/// limit of 32 766.
pub const BULK_CHUNK: usize = 1_000;

/// SQLite primary result codes worth retrying: `SQLITE_BUSY` and
/// `SQLITE_LOCKED`.
const TRANSIENT_PRIMARY_CODES: [i32; 2] = [5, 6];

/// The SQLite backend: a one-connection write pool and a read pool on the
/// same file.
pub(crate) struct SqliteBackend {
    write: SqlitePool,
    read: SqlitePool,
}

fn db_error(error: sqlx::Error) -> StorageError {
    map_sqlx_error(error, is_transient)
}

fn is_transient(error: &dyn DatabaseError) -> bool {
    // sqlx reports the extended result code; its low byte is the primary code.
    error
        .code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| TRANSIENT_PRIMARY_CODES.contains(&(code & 0xFF)))
}

impl SqliteBackend {
    /// Opens (creating if missing) the database file at `path` and applies
    /// the migrations. The parent directory must exist.
    pub(crate) async fn connect(path: &Path) -> Result<Self, StorageError> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true).journal_mode(SqliteJournalMode::Wal))
            .await
            .map_err(db_error)?;
        // Migrate before the readers open: they are read-only and need the
        // file to be in WAL mode already.
        MIGRATOR.run(&write).await.map_err(migration_error)?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_POOL_SIZE)
            .connect_with(base.read_only(true))
            .await
            .map_err(db_error)?;
        Ok(Self { write, read })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.write).await.map_err(migration_error)
    }

    pub(crate) async fn health_check(&self) -> Result<(), StorageError> {
        for pool in [&self.write, &self.read] {
            sqlx::query("SELECT 1").execute(pool).await.map_err(db_error)?;
        }
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StorageError> {
        self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)
    }

    #[cfg(test)]
    pub(crate) fn pools(&self) -> (&SqlitePool, &SqlitePool) {
        (&self.write, &self.read)
    }
}

fn migration_error(error: sqlx::migrate::MigrateError) -> StorageError {
    StorageError::Migration(Box::new(error))
}

async fn insert_account(
    connection: &mut SqliteConnection,
    host: &str,
    user: &str,
    credentials: &[StoredCredential],
) -> Result<(), StorageError> {
    sqlx::query("INSERT INTO accounts (host, username) VALUES ($1, $2)")
        .bind(host)
        .bind(user)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    insert_credentials(connection, host, user, credentials).await
}

async fn insert_credentials(
    connection: &mut SqliteConnection,
    host: &str,
    user: &str,
    credentials: &[StoredCredential],
) -> Result<(), StorageError> {
    for credential in credentials {
        sqlx::query(
            "INSERT INTO credentials \
             (host, username, mechanism, salt, iterations, stored_key, server_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(host)
        .bind(user)
        .bind(credential.mechanism_hash.as_str())
        .bind(credential.salt.as_slice())
        .bind(i64::from(credential.iterations))
        .bind(credential.stored_key.as_slice())
        .bind(credential.server_key.as_slice())
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// Inserts one chunk of a bulk import with two multi-row `INSERT`s: one
/// statement per [`BULK_CHUNK`] accounts instead of one per row, which is what
/// dominates the cost (each statement is a round trip to the connection's
/// worker thread).
async fn insert_accounts_chunk(
    connection: &mut SqliteConnection,
    host: &str,
    accounts: &[NewAccount],
) -> Result<(), StorageError> {
    let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO accounts (host, username) ");
    insert.push_values(accounts, |mut row, (user, _)| {
        row.push_bind(host).push_bind(user.as_str());
    });
    insert.build().execute(&mut *connection).await.map_err(db_error)?;

    if accounts.iter().all(|(_, credentials)| credentials.is_empty()) {
        return Ok(());
    }
    let credentials = accounts.iter().flat_map(|(user, credentials)| credentials.iter().map(move |c| (user, c)));
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO credentials \
         (host, username, mechanism, salt, iterations, stored_key, server_key) ",
    );
    insert.push_values(credentials, |mut row, (user, credential)| {
        row.push_bind(host)
            .push_bind(user.as_str())
            .push_bind(credential.mechanism_hash.as_str())
            .push_bind(credential.salt.as_slice())
            .push_bind(i64::from(credential.iterations))
            .push_bind(credential.stored_key.as_slice())
            .push_bind(credential.server_key.as_slice());
    });
    insert.build().execute(&mut *connection).await.map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl AuthStore for SqliteBackend {
    async fn create_account(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        validate::credentials(credentials)?;
        let mut tx = self.begin_write().await?;
        insert_account(&mut tx, host, user, credentials).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn create_accounts_bulk(&self, host: &str, accounts: &[NewAccount]) -> Result<(), StorageError> {
        validate::host(host)?;
        for (user, credentials) in accounts {
            validate::username(user)?;
            validate::credentials(credentials)?;
        }
        let mut tx = self.begin_write().await?;
        for chunk in accounts.chunks(BULK_CHUNK) {
            insert_accounts_chunk(&mut tx, host, chunk).await?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn set_credentials(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        validate::credentials(credentials)?;
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM accounts WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .is_some();
        if !exists {
            return Err(StorageError::NotFound);
        }
        sqlx::query("DELETE FROM credentials WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_credentials(&mut tx, host, user, credentials).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_account(&self, host: &str, user: &str) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        let mut tx = self.begin_write().await?;
        // Credentials go with the account through ON DELETE CASCADE.
        let deleted = sqlx::query("DELETE FROM accounts WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if deleted == 0 {
            return Err(StorageError::NotFound);
        }
        sqlx::query("DELETE FROM kv WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn account_exists(&self, host: &str, user: &str) -> Result<bool, StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        let row = sqlx::query("SELECT 1 FROM accounts WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        Ok(row.is_some())
    }

    async fn get_credential(
        &self,
        host: &str,
        user: &str,
        mechanism_hash: &str,
    ) -> Result<Option<StoredCredential>, StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        let row: Option<(Vec<u8>, i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT salt, iterations, stored_key, server_key FROM credentials \
             WHERE host = $1 AND username = $2 AND mechanism = $3",
        )
        .bind(host)
        .bind(user)
        .bind(mechanism_hash)
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.map(|(salt, iterations, stored_key, server_key)| {
            Ok(StoredCredential {
                mechanism_hash: mechanism_hash.to_owned(),
                salt,
                iterations: to_iterations(iterations)?,
                stored_key,
                server_key,
            })
        })
        .transpose()
    }

    async fn list_accounts(&self, host: &str) -> Result<Vec<String>, StorageError> {
        validate::host(host)?;
        sqlx::query_scalar("SELECT username FROM accounts WHERE host = $1 ORDER BY username")
            .bind(host)
            .fetch_all(&self.read)
            .await
            .map_err(db_error)
    }

    async fn count_accounts(&self, host: &str) -> Result<u64, StorageError> {
        validate::host(host)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE host = $1")
            .bind(host)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        to_u64(count, "account count")
    }
}

fn check_store(host: &str, user: &str, store: &str) -> Result<(), StorageError> {
    validate::host(host)?;
    validate::kv_owner(user)?;
    validate::kv_store(store)
}

#[async_trait]
impl KeyValueStore for SqliteBackend {
    async fn get(&self, host: &str, user: &str, store: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_store(host, user, store)?;
        validate::kv_key(key)?;
        sqlx::query_scalar("SELECT value FROM kv WHERE host = $1 AND username = $2 AND store = $3 AND key = $4")
            .bind(host)
            .bind(user)
            .bind(store)
            .bind(key)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)
    }

    async fn set(&self, host: &str, user: &str, store: &str, key: &str, value: &[u8]) -> Result<(), StorageError> {
        check_store(host, user, store)?;
        validate::kv_key(key)?;
        sqlx::query(
            "INSERT INTO kv (host, username, store, key, value) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (host, username, store, key) DO UPDATE SET value = excluded.value",
        )
        .bind(host)
        .bind(user)
        .bind(store)
        .bind(key)
        .bind(value)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn delete(&self, host: &str, user: &str, store: &str, key: &str) -> Result<bool, StorageError> {
        check_store(host, user, store)?;
        validate::kv_key(key)?;
        let deleted = sqlx::query("DELETE FROM kv WHERE host = $1 AND username = $2 AND store = $3 AND key = $4")
            .bind(host)
            .bind(user)
            .bind(store)
            .bind(key)
            .execute(&self.write)
            .await
            .map_err(db_error)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn list_keys(&self, host: &str, user: &str, store: &str) -> Result<Vec<String>, StorageError> {
        check_store(host, user, store)?;
        sqlx::query_scalar("SELECT key FROM kv WHERE host = $1 AND username = $2 AND store = $3 ORDER BY key")
            .bind(host)
            .bind(user)
            .bind(store)
            .fetch_all(&self.read)
            .await
            .map_err(db_error)
    }

    async fn clear_store(&self, host: &str, user: &str, store: &str) -> Result<u64, StorageError> {
        check_store(host, user, store)?;
        let deleted = sqlx::query("DELETE FROM kv WHERE host = $1 AND username = $2 AND store = $3")
            .bind(host)
            .bind(user)
            .bind(store)
            .execute(&self.write)
            .await
            .map_err(db_error)?
            .rows_affected();
        Ok(deleted)
    }
}
