//! Fixtures shared by the integration tests: a SQLite file in a temporary
//! directory, and a scratch PostgreSQL database per test.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;
use xmppd_storage::Storage;
use xmppd_storage::conformance::Fixture;
use xmppd_storage_sql::{SqlConfig, SqlStorage};

/// Server URL without a database name; override with
/// `XMPPD_TEST_POSTGRES_URL`.
const DEFAULT_POSTGRES_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A SQLite storage in its own temporary directory.
pub struct SqliteFixture {
    pub storage: SqlStorage,
    pub dir: TempDir,
}

pub async fn sqlite_fixture() -> SqliteFixture {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqlStorage::connect(SqlConfig::Sqlite { path: dir.path().join("xmppd.db") }).await.unwrap();
    SqliteFixture { storage, dir }
}

#[async_trait]
impl Fixture for SqliteFixture {
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }

    async fn teardown(self) {
        self.storage.close().await;
    }
}

/// A PostgreSQL storage on a freshly created database, dropped at teardown.
pub struct PostgresFixture {
    pub storage: SqlStorage,
    server: String,
    database: String,
}

fn postgres_server() -> String {
    std::env::var("XMPPD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_SERVER.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

fn unique_database_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("xmppd_test_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

async fn admin_connection(server: &str) -> Result<PgConnection, String> {
    let url = format!("{server}/postgres");
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out after 5 s".to_owned()),
    }
}

/// Creates a scratch database and connects to it, or returns `None` (after
/// saying so on stderr) when no server answers — unless
/// `XMPPD_REQUIRE_SERVICES=1`, which turns that into a failure.
pub async fn postgres_fixture() -> Option<PostgresFixture> {
    let server = postgres_server();
    let mut admin = match admin_connection(&server).await {
        Ok(connection) => connection,
        Err(error) => {
            if std::env::var("XMPPD_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("PostgreSQL at {server} is required (XMPPD_REQUIRE_SERVICES=1): {error}");
            }
            // Written to the real stderr, not the captured test output, so
            // the skip is visible in a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: PostgreSQL not reachable at {server} ({error}); \
                 set XMPPD_REQUIRE_SERVICES=1 to make this a failure"
            );
            return None;
        }
    };
    let database = unique_database_name();
    // A locale-aware collation as default, so that any query relying on the
    // database's collation instead of byte order fails the sort tests. Falls
    // back to the server default where PostgreSQL lacks ICU.
    let with_icu = format!(
        "CREATE DATABASE {database} TEMPLATE template0 \
         LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    );
    if sqlx::query(sqlx::AssertSqlSafe(with_icu)).execute(&mut admin).await.is_err() {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&mut admin).await.unwrap();
    }
    admin.close().await.unwrap();
    let storage = SqlStorage::connect(SqlConfig::Postgres { url: format!("{server}/{database}"), max_connections: 4 })
        .await
        .unwrap();
    Some(PostgresFixture { storage, server, database })
}

impl PostgresFixture {
    /// The URL of this fixture's scratch database.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.database)
    }
}

#[async_trait]
impl Fixture for PostgresFixture {
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }

    async fn teardown(self) {
        self.storage.close().await;
        let mut admin = admin_connection(&self.server).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database)))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
    }
}
