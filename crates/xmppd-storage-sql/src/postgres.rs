//! PostgreSQL dialect.
//!
//! One connection pool. Text key columns use the `"C"` collation (see the
//! migration), so lookups and `ORDER BY` are byte-exact whatever the database
//! locale. Bulk imports send whole columns as arrays through `UNNEST`, one
//! round trip per [`BULK_CHUNK`] accounts.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};
use xmppd_storage::{AuthStore, KeyValueStore, NewAccount, StorageError, StoredCredential, validate};

use crate::error::{map_sqlx_error, to_iterations, to_u64};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Accounts sent per `INSERT … SELECT FROM UNNEST` statement in a bulk import.
pub const BULK_CHUNK: usize = 5_000;

/// How long a caller waits for a free pooled connection (or a new one)
/// before getting a transient error.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL backend.
pub(crate) struct PostgresBackend {
    pool: PgPool,
}

fn db_error(error: sqlx::Error) -> StorageError {
    map_sqlx_error(error, is_transient)
}

/// SQLSTATEs worth retrying (PostgreSQL manual, appendix A): connection
/// exceptions (class 08), serialization failure and deadlock (40001, 40P01),
/// insufficient resources (class 53), lock not available (55P03) and server
/// shutdown or start-up (57P01, 57P02, 57P03).
fn is_transient(error: &dyn DatabaseError) -> bool {
    let Some(code) = error.code() else {
        return false;
    };
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code.as_ref(), "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03")
}

impl PostgresBackend {
    /// Connects a pool of at most `max_connections` to `url` and applies the
    /// migrations (sqlx serializes concurrent migrators with an advisory
    /// lock).
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Self, StorageError> {
        if max_connections == 0 {
            return Err(StorageError::Config("PostgreSQL max_connections must be at least 1".into()));
        }
        let options = PgConnectOptions::from_str(url).map_err(db_error)?;
        // One direct attempt first: an unreachable server or bad credentials
        // fail at once (the pool would keep retrying until its acquire
        // timeout). The caller may retry a transient failure.
        PgConnection::connect_with(&options).await.map_err(db_error)?.close().await.map_err(db_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        MIGRATOR.run(&pool).await.map_err(migration_error)?;
        Ok(Self { pool })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await.map_err(migration_error)
    }

    pub(crate) async fn health_check(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StorageError> {
        self.pool.begin().await.map_err(db_error)
    }
}

fn migration_error(error: sqlx::migrate::MigrateError) -> StorageError {
    StorageError::Migration(Box::new(error))
}

async fn insert_credentials(
    connection: &mut PgConnection,
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

/// Inserts one chunk of a bulk import: the accounts in one statement, then
/// all their credentials in another.
async fn insert_accounts_chunk(
    connection: &mut PgConnection,
    host: &str,
    accounts: &[NewAccount],
) -> Result<(), StorageError> {
    let usernames: Vec<&str> = accounts.iter().map(|(user, _)| user.as_str()).collect();
    sqlx::query("INSERT INTO accounts (host, username) SELECT $1, u FROM UNNEST($2::text[]) AS t(u)")
        .bind(host)
        .bind(usernames)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;

    let total: usize = accounts.iter().map(|(_, credentials)| credentials.len()).sum();
    if total == 0 {
        return Ok(());
    }
    let mut users = Vec::with_capacity(total);
    let mut mechanisms = Vec::with_capacity(total);
    let mut salts = Vec::with_capacity(total);
    let mut iterations = Vec::with_capacity(total);
    let mut stored_keys = Vec::with_capacity(total);
    let mut server_keys = Vec::with_capacity(total);
    for (user, credentials) in accounts {
        for credential in credentials {
            users.push(user.as_str());
            mechanisms.push(credential.mechanism_hash.as_str());
            salts.push(credential.salt.as_slice());
            iterations.push(i64::from(credential.iterations));
            stored_keys.push(credential.stored_key.as_slice());
            server_keys.push(credential.server_key.as_slice());
        }
    }
    sqlx::query(
        "INSERT INTO credentials \
         (host, username, mechanism, salt, iterations, stored_key, server_key) \
         SELECT $1, u, m, s, i, sk, svk \
         FROM UNNEST($2::text[], $3::text[], $4::bytea[], $5::int8[], $6::bytea[], $7::bytea[]) \
         AS t(u, m, s, i, sk, svk)",
    )
    .bind(host)
    .bind(users)
    .bind(mechanisms)
    .bind(salts)
    .bind(iterations)
    .bind(stored_keys)
    .bind(server_keys)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl AuthStore for PostgresBackend {
    async fn create_account(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        validate::credentials(credentials)?;
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO accounts (host, username) VALUES ($1, $2)")
            .bind(host)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_credentials(&mut tx, host, user, credentials).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn create_accounts_bulk(&self, host: &str, accounts: &[NewAccount]) -> Result<(), StorageError> {
        validate::host(host)?;
        for (user, credentials) in accounts {
            validate::username(user)?;
            validate::credentials(credentials)?;
        }
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
        // The row lock serializes concurrent replacements of the same
        // account, which would otherwise collide on the credentials key.
        let exists = sqlx::query("SELECT 1 FROM accounts WHERE host = $1 AND username = $2 FOR UPDATE")
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
        let mut tx = self.begin().await?;
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
            .fetch_optional(&self.pool)
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
        if mechanism_hash.contains('\0') {
            // PostgreSQL text cannot hold NUL; no stored hash name has one.
            return Ok(None);
        }
        let row: Option<(Vec<u8>, i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT salt, iterations, stored_key, server_key FROM credentials \
             WHERE host = $1 AND username = $2 AND mechanism = $3",
        )
        .bind(host)
        .bind(user)
        .bind(mechanism_hash)
        .fetch_optional(&self.pool)
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
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn count_accounts(&self, host: &str) -> Result<u64, StorageError> {
        validate::host(host)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE host = $1")
            .bind(host)
            .fetch_one(&self.pool)
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
impl KeyValueStore for PostgresBackend {
    async fn get(&self, host: &str, user: &str, store: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_store(host, user, store)?;
        validate::kv_key(key)?;
        sqlx::query_scalar("SELECT value FROM kv WHERE host = $1 AND username = $2 AND store = $3 AND key = $4")
            .bind(host)
            .bind(user)
            .bind(store)
            .bind(key)
            .fetch_optional(&self.pool)
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
        .execute(&self.pool)
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
            .execute(&self.pool)
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
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn clear_store(&self, host: &str, user: &str, store: &str) -> Result<u64, StorageError> {
        check_store(host, user, store)?;
        let deleted = sqlx::query("DELETE FROM kv WHERE host = $1 AND username = $2 AND store = $3")
            .bind(host)
            .bind(user)
            .bind(store)
            .execute(&self.pool)
            .await
            .map_err(db_error)?
            .rows_affected();
        Ok(deleted)
    }
}
