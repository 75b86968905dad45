//! SQL storage backend for xmppd: SQLite and PostgreSQL through sqlx.
//!
//! [`SqlStorage::connect`] opens the database described by a [`SqlConfig`],
//! applies the schema migrations (`migrations/sqlite/`,
//! `migrations/postgres/`, embedded at build time) and returns a
//! [`Storage`] implementing the `xmppd-storage` traits. Dialect-specific code
//! lives in `sqlite.rs` (feature `sqlite`) and `postgres.rs` (feature
//! `postgres`); both are enabled by default.
//!
//! Schema: `accounts(host, username, created_at)`,
//! `credentials(host, username, mechanism, salt, iterations, stored_key,
//! server_key)` holding SCRAM verifiers only (RFC 5802 §3),
//! `kv(host, username, store, key, value)`, the roster tables
//! `roster_versions(host, username, version)`, `roster_items(host, username,
//! contact, name, subscription, ask, approved)`, `roster_groups(host,
//! username, contact, position, name)` and `roster_pending_in(host, username,
//! contact, status)` (RFC 6121 §2, §3.1.3), and `offline_messages(id, host,
//! username, stamp_ms, stanza)` (XEP-0160), and `pep_nodes(host, username,
//! node, config)` with `pep_items(seq, host, username, node, item_id,
//! publisher, published_ms, payload)` (XEP-0163).

#![warn(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("xmppd-storage-sql needs the `sqlite` or the `postgres` feature");

#[cfg(feature = "sqlite")]
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use xmppd_storage::{AuthStore, KeyValueStore, OfflineStore, PubsubStore, RosterStore, Storage, StorageError};

mod error;
#[cfg(feature = "postgres")]
pub mod postgres;
mod pubsub;
mod roster;
mod rows;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Default pool size for a PostgreSQL URL given to [`SqlConfig::from_url`].
pub const DEFAULT_POSTGRES_MAX_CONNECTIONS: u32 = 10;

/// Which database to open.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqlConfig {
    /// A SQLite database file, created if missing (its directory must
    /// exist). See the `sqlite` module for the connection settings.
    #[cfg(feature = "sqlite")]
    Sqlite {
        /// Path of the database file.
        path: PathBuf,
    },
    /// A PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres {
        /// Connection URL, `postgres://user[:password]@host[:port]/database`.
        url: String,
        /// Maximum number of pooled connections (at least 1).
        max_connections: u32,
    },
}

impl SqlConfig {
    /// Parses a database URL: `sqlite:PATH` or `sqlite://PATH` for a SQLite
    /// file (`sqlite:///var/lib/xmppd/db.sqlite` is absolute), or
    /// `postgres://…` / `postgresql://…` for PostgreSQL with
    /// [`DEFAULT_POSTGRES_MAX_CONNECTIONS`].
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        #[cfg(feature = "sqlite")]
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split_once('?').map_or(path, |(path, _)| path);
            if path.is_empty() {
                return Err(StorageError::Config("sqlite URL has no file path".into()));
            }
            return Ok(SqlConfig::Sqlite { path: path.into() });
        }
        #[cfg(feature = "postgres")]
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(SqlConfig::Postgres { url: url.to_owned(), max_connections: DEFAULT_POSTGRES_MAX_CONNECTIONS });
        }
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        Err(StorageError::Config(format!(
            "unsupported database URL scheme {scheme:?} (this build supports: {})",
            supported_schemes()
        )))
    }
}

fn supported_schemes() -> &'static str {
    match (cfg!(feature = "sqlite"), cfg!(feature = "postgres")) {
        (true, true) => "sqlite, postgres",
        (true, false) => "sqlite",
        _ => "postgres",
    }
}

#[derive(Clone)]
enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(Arc<sqlite::SqliteBackend>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<postgres::PostgresBackend>),
}

/// A connected SQL storage. Cheap to clone; clones share the pools.
#[derive(Clone)]
pub struct SqlStorage {
    backend: Backend,
}

impl SqlStorage {
    /// Connects to the configured database and applies pending migrations.
    ///
    /// Unreachable servers give a transient [`StorageError::Unavailable`];
    /// a bad configuration gives [`StorageError::Config`].
    pub async fn connect(config: SqlConfig) -> Result<Self, StorageError> {
        let backend = match config {
            #[cfg(feature = "sqlite")]
            SqlConfig::Sqlite { path } => Backend::Sqlite(Arc::new(sqlite::SqliteBackend::connect(&path).await?)),
            #[cfg(feature = "postgres")]
            SqlConfig::Postgres { url, max_connections } => {
                Backend::Postgres(Arc::new(postgres::PostgresBackend::connect(&url, max_connections).await?))
            }
        };
        Ok(Self { backend })
    }

    /// Parses `url` with [`SqlConfig::from_url`] and connects.
    pub async fn connect_url(url: &str) -> Result<Self, StorageError> {
        Self::connect(SqlConfig::from_url(url)?).await
    }

    /// `"sqlite"` or `"postgres"`, for logs.
    #[must_use]
    pub fn dialect(&self) -> &'static str {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgres",
        }
    }

    #[cfg(all(test, feature = "sqlite"))]
    fn sqlite_backend(&self) -> Option<&sqlite::SqliteBackend> {
        match &self.backend {
            Backend::Sqlite(backend) => Some(backend),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => None,
        }
    }
}

impl std::fmt::Debug for SqlStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStorage").field("dialect", &self.dialect()).finish_non_exhaustive()
    }
}

#[async_trait]
impl Storage for SqlStorage {
    fn auth(&self) -> Arc<dyn AuthStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => backend.clone(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => backend.clone(),
        }
    }

    fn kv(&self) -> Arc<dyn KeyValueStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => backend.clone(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => backend.clone(),
        }
    }

    fn roster(&self) -> Arc<dyn RosterStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => backend.clone(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => backend.clone(),
        }
    }

    fn offline(&self) -> Arc<dyn OfflineStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => backend.clone(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => backend.clone(),
        }
    }

    fn pubsub(&self) -> Arc<dyn PubsubStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => backend.clone(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => backend.clone(),
        }
    }

    async fn migrate(&self) -> Result<(), StorageError> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => backend.migrate().await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => backend.migrate().await,
        }
    }

    async fn health_check(&self) -> Result<(), StorageError> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => backend.health_check().await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => backend.health_check().await,
        }
    }

    async fn close(&self) {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => backend.close().await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => backend.close().await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_urls() {
        assert_eq!(
            SqlConfig::from_url("sqlite:///var/lib/xmppd/db.sqlite").unwrap(),
            SqlConfig::Sqlite { path: "/var/lib/xmppd/db.sqlite".into() }
        );
        assert_eq!(
            SqlConfig::from_url("sqlite:data/xmppd.db?mode=rwc").unwrap(),
            SqlConfig::Sqlite { path: "data/xmppd.db".into() }
        );
        assert_eq!(
            SqlConfig::from_url("postgresql://xmppd@db.internal/xmppd").unwrap(),
            SqlConfig::Postgres {
                url: "postgresql://xmppd@db.internal/xmppd".into(),
                max_connections: DEFAULT_POSTGRES_MAX_CONNECTIONS,
            }
        );
        assert!(matches!(SqlConfig::from_url("sqlite:"), Err(StorageError::Config(_))));
        assert!(matches!(
            SqlConfig::from_url("mysql://x/y"),
            Err(StorageError::Config(message)) if message.contains("\"mysql\"")
        ));
        assert!(matches!(SqlConfig::from_url("no scheme"), Err(StorageError::Config(_))));
    }

    #[tokio::test]
    async fn sqlite_connection_settings() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqlStorage::connect(SqlConfig::Sqlite { path: dir.path().join("settings.db") }).await.unwrap();
        let backend = storage.sqlite_backend().unwrap();
        let (write, read) = backend.pools();
        for (name, pool) in [("write", write), ("read", read)] {
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.unwrap();
            assert_eq!(journal, "wal", "{name} pool");
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(pool).await.unwrap();
            assert_eq!(synchronous, 2, "{name} pool: synchronous=FULL");
            let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(pool).await.unwrap();
            assert_eq!(foreign_keys, 1, "{name} pool");
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(pool).await.unwrap();
            assert_eq!(busy, 5000, "{name} pool");
        }
        assert_eq!(write.options().get_max_connections(), 1);
        assert_eq!(read.options().get_max_connections(), sqlite::READ_POOL_SIZE);
        // The read pool really is read-only.
        let refused = sqlx::query("INSERT INTO accounts (host, username) VALUES ('h', 'u')").execute(read).await;
        assert!(refused.is_err());
        storage.close().await;
    }
}
