//! PostgreSQL-specific behaviour: concurrency on one account, connection
//! errors, bulk import speed. Skipped (with a message) when no server is
//! reachable, unless `XMPPD_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Instant;

use xmppd_storage::conformance::{Fixture, credential};
use xmppd_storage::{Storage, StorageError, StoredCredential};
use xmppd_storage_sql::{SqlConfig, SqlStorage};

const HOST: &str = "example.org";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_set_credentials_on_one_account() {
    let Some(fixture) = common::postgres_fixture().await else {
        return;
    };
    let auth = fixture.storage.auth();
    auth.create_account(HOST, "alice", &[credential("SHA-256", 0)]).await.unwrap();
    let mut tasks = Vec::new();
    for seed in 1..=16u8 {
        let auth = fixture.storage.auth();
        tasks.push(tokio::spawn(async move {
            auth.set_credentials(HOST, "alice", &[credential("SHA-256", seed), credential("SHA-1", seed)]).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // Whichever replacement ran last, its two credentials belong together.
    let sha256 = auth.get_credential(HOST, "alice", "SHA-256").await.unwrap().unwrap();
    let seed = sha256.salt[0];
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-1").await.unwrap(), Some(credential("SHA-1", seed)));
    fixture.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_of_one_account() {
    let Some(fixture) = common::postgres_fixture().await else {
        return;
    };
    let mut tasks = Vec::new();
    for seed in 0..8u8 {
        let auth = fixture.storage.auth();
        tasks
            .push(tokio::spawn(async move { auth.create_account(HOST, "race", &[credential("SHA-256", seed)]).await }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => created += 1,
            Err(StorageError::AlreadyExists) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(fixture.storage.auth().count_accounts(HOST).await.unwrap(), 1);
    fixture.teardown().await;
}

#[tokio::test]
async fn data_survives_reconnect() {
    let Some(fixture) = common::postgres_fixture().await else {
        return;
    };
    fixture.storage.auth().create_account(HOST, "alice", &[credential("SHA-512", 5)]).await.unwrap();
    let second = SqlStorage::connect_url(&fixture.url()).await.unwrap();
    assert_eq!(second.dialect(), "postgres");
    assert_eq!(second.auth().get_credential(HOST, "alice", "SHA-512").await.unwrap(), Some(credential("SHA-512", 5)));
    second.close().await;
    fixture.teardown().await;
}

#[tokio::test]
async fn unreachable_server_is_a_transient_error() {
    // Port 1 on loopback: nothing listens there, the connection is refused.
    let result = SqlStorage::connect(SqlConfig::Postgres {
        url: "postgres://postgres@127.0.0.1:1/none".into(),
        max_connections: 1,
    })
    .await;
    let error = result.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn zero_max_connections_is_a_config_error() {
    let result = SqlStorage::connect(SqlConfig::Postgres {
        url: "postgres://postgres@127.0.0.1:1/none".into(),
        max_connections: 0,
    })
    .await;
    assert!(matches!(result, Err(StorageError::Config(_))), "{result:?}");
}

#[tokio::test]
async fn bulk_import_timing() {
    let Some(fixture) = common::postgres_fixture().await else {
        return;
    };
    let accounts: Vec<(String, Vec<StoredCredential>)> =
        (0..20_000u32).map(|i| (format!("user{i}"), vec![credential("SHA-1", 1), credential("SHA-256", 2)])).collect();
    let started = Instant::now();
    fixture.storage.auth().create_accounts_bulk(HOST, &accounts).await.unwrap();
    let elapsed = started.elapsed();
    let _ = writeln!(std::io::stderr(), "postgres: 20000 accounts with 2 credentials each imported in {elapsed:?}");
    assert_eq!(fixture.storage.auth().count_accounts(HOST).await.unwrap(), 20_000);
    fixture.teardown().await;
}
