//! SQLite-specific behaviour: durability across reopen, concurrent writers,
//! file creation and error mapping.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use xmppd_storage::conformance::credential;
use xmppd_storage::{Storage, StorageError, StoredCredential};
use xmppd_storage_sql::{SqlConfig, SqlStorage};

const HOST: &str = "example.org";

fn config(dir: &tempfile::TempDir) -> SqlConfig {
    SqlConfig::Sqlite { path: dir.path().join("durable.db") }
}

async fn write_sample(storage: &SqlStorage) {
    let auth = storage.auth();
    auth.create_account(HOST, "alice", &[credential("SHA-256", 1), credential("SHA-1", 2)]).await.unwrap();
    auth.create_account(HOST, "bob", &[credential("SHA-512", 3)]).await.unwrap();
    auth.set_credentials(HOST, "bob", &[credential("SHA-256", 4)]).await.unwrap();
    storage.kv().set(HOST, "alice", "vcard", "", b"<vCard\0/>").await.unwrap();
}

async fn check_sample(storage: &SqlStorage) {
    let auth = storage.auth();
    assert_eq!(auth.list_accounts(HOST).await.unwrap(), ["alice", "bob"]);
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-1").await.unwrap(), Some(credential("SHA-1", 2)));
    assert_eq!(auth.get_credential(HOST, "bob", "SHA-512").await.unwrap(), None);
    assert_eq!(auth.get_credential(HOST, "bob", "SHA-256").await.unwrap(), Some(credential("SHA-256", 4)));
    assert_eq!(storage.kv().get(HOST, "alice", "vcard", "").await.unwrap().as_deref(), Some(&b"<vCard\0/>"[..]));
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqlStorage::connect(config(&dir)).await.unwrap();
    write_sample(&storage).await;
    storage.close().await;
    assert!(storage.auth().account_exists(HOST, "alice").await.is_err(), "a closed storage must refuse requests");

    let reopened = SqlStorage::connect(config(&dir)).await.unwrap();
    check_sample(&reopened).await;
    // Reconnecting re-runs the migrations as a no-op.
    assert_eq!(reopened.auth().count_accounts(HOST).await.unwrap(), 2);
    reopened.close().await;
}

#[tokio::test]
async fn acknowledged_writes_are_visible_to_a_second_opener() {
    // Without closing the first handle: whatever it acknowledged must already
    // be in the file (database + WAL), not only in the first process' memory.
    let dir = tempfile::tempdir().unwrap();
    let first = SqlStorage::connect(config(&dir)).await.unwrap();
    write_sample(&first).await;

    let second = SqlStorage::connect(config(&dir)).await.unwrap();
    check_sample(&second).await;
    // And the other way round, with both open at once.
    second.auth().create_account(HOST, "carol", &[]).await.unwrap();
    assert!(first.auth().account_exists(HOST, "carol").await.unwrap());
    second.close().await;
    first.close().await;
}

#[tokio::test]
async fn data_survives_drop_without_close() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = SqlStorage::connect(config(&dir)).await.unwrap();
        write_sample(&storage).await;
        drop(storage);
    }
    let reopened = SqlStorage::connect(config(&dir)).await.unwrap();
    check_sample(&reopened).await;
    reopened.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_do_not_see_busy_errors() {
    let fixture = common::sqlite_fixture().await;
    let storage = Arc::new(fixture.storage.clone());
    let mut tasks = Vec::new();
    for task in 0..16u8 {
        let storage = Arc::clone(&storage);
        tasks.push(tokio::spawn(async move {
            let auth = storage.auth();
            let kv = storage.kv();
            for i in 0..20u8 {
                let user = format!("t{task}u{i}");
                auth.create_account(HOST, &user, &[credential("SHA-256", i)]).await?;
                kv.set(HOST, &user, "s", "k", &[task, i]).await?;
                auth.set_credentials(HOST, &user, &[credential("SHA-1", i)]).await?;
                assert!(auth.account_exists(HOST, &user).await?);
            }
            Ok::<(), StorageError>(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(storage.auth().count_accounts(HOST).await.unwrap(), 16 * 20);
    fixture.storage.close().await;
}

#[tokio::test]
async fn creates_missing_file_but_not_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let storage = SqlStorage::connect(SqlConfig::Sqlite { path: path.clone() }).await.unwrap();
    assert!(path.exists());
    storage.close().await;

    let missing = SqlStorage::connect(SqlConfig::Sqlite { path: dir.path().join("no/such/dir/x.db") }).await;
    assert!(missing.is_err(), "opening in a missing directory must fail");
}

#[tokio::test]
async fn connect_url_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("url.db").display());
    let storage = SqlStorage::connect_url(&url).await.unwrap();
    assert_eq!(storage.dialect(), "sqlite");
    storage.health_check().await.unwrap();
    storage.close().await;
}

#[tokio::test]
async fn bulk_import_timing() {
    // Functional check plus a printed duration for the record; no assertion
    // on time, which depends on the machine.
    let fixture = common::sqlite_fixture().await;
    let accounts: Vec<(String, Vec<StoredCredential>)> =
        (0..20_000u32).map(|i| (format!("user{i}"), vec![credential("SHA-1", 1), credential("SHA-256", 2)])).collect();
    let started = Instant::now();
    fixture.storage.auth().create_accounts_bulk(HOST, &accounts).await.unwrap();
    let elapsed = started.elapsed();
    let _ = writeln!(std::io::stderr(), "sqlite: 20000 accounts with 2 credentials each imported in {elapsed:?}");
    assert_eq!(fixture.storage.auth().count_accounts(HOST).await.unwrap(), 20_000);
    fixture.storage.close().await;
}

#[tokio::test]
async fn account_import_batch_failure_falls_back_per_account() {
    // A statement that fails after validation (here: a trigger; in real
    // life a full disk) makes the multi-row fast path roll back; the batch
    // is then written account by account, and only the failing account is
    // refused.
    use xmppd_storage::{AccountImport, ImportOutcome, RosterItem, Subscription};
    let dir = tempfile::tempdir().unwrap();
    let storage = SqlStorage::connect(config(&dir)).await.unwrap();
    {
        let url = format!("sqlite://{}", dir.path().join("durable.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON kv WHEN NEW.username = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let import = |name: &str| AccountImport {
        username: name.to_owned(),
        credentials: vec![credential("SHA-256", 2)],
        roster: vec![RosterItem {
            contact: "c@example.net".into(),
            name: None,
            subscription: Subscription::Both,
            ask: false,
            approved: false,
            groups: vec!["g".into()],
        }],
        kv: vec![("vcard".into(), String::new(), b"<vCard/>".to_vec())],
        offline: vec![(1, b"<message/>".to_vec())],
        ..AccountImport::default()
    };
    let auth = storage.auth();
    let outcomes = auth.import_accounts(HOST, &[import("alice"), import("bad"), import("bob")]).await.unwrap();
    assert!(matches!(outcomes[0], Ok(ImportOutcome::Created)), "{outcomes:?}");
    assert!(outcomes[1].is_err(), "{outcomes:?}");
    assert!(matches!(outcomes[2], Ok(ImportOutcome::Created)), "{outcomes:?}");
    assert_eq!(auth.list_accounts(HOST).await.unwrap(), ["alice", "bob"]);
    for user in ["alice", "bob"] {
        assert_eq!(storage.roster().roster(HOST, user).await.unwrap().items.len(), 1);
        assert_eq!(storage.offline().count(HOST, user).await.unwrap(), 1);
        assert!(storage.kv().get(HOST, user, "vcard", "").await.unwrap().is_some());
    }
    assert_eq!(storage.roster().roster(HOST, "bad").await.unwrap().items.len(), 0);
    assert_eq!(storage.offline().count(HOST, "bad").await.unwrap(), 0);
    assert!(auth.get_credential(HOST, "bad", "SHA-256").await.unwrap().is_none());
    storage.close().await;
}
