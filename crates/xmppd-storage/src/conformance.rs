//! Conformance suite every storage backend must pass.
//!
//! Each case is a `pub async fn(&dyn Storage)` that panics (like a test
//! assertion) when the backend misbehaves. Backends normally do not call them
//! one by one but instantiate them all with [`conformance_tests!`], which
//! writes one `#[tokio::test]` per case:
//!
//! ```ignore
//! mod sqlite_conformance {
//!     xmppd_storage::conformance_tests!(async || Some(make_fixture().await));
//! }
//! ```
//!
//! The factory expression is called once per case and must evaluate to
//! something callable with no argument returning a future of
//! `Option<impl Fixture>`; `None` skips the case (for example when a
//! database server is not running). Each case gets a fresh fixture.
//!
//! The calling crate needs `tokio` (with the `macros` and `rt` features) as a
//! dev-dependency.
//!
//! [`conformance_tests!`]: crate::conformance_tests

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use async_trait::async_trait;

use crate::{
    AccessModel, AccountImport, ImportOutcome, ImportedNode, NodeConfig, PendingIn, PubsubItem, Roster, RosterChange,
    RosterItem, Storage, StorageError, StoredCredential, Subscription, scram_hash_output_len,
};

/// A backend under test plus whatever must outlive it (a temporary
/// directory, a scratch database).
#[async_trait]
pub trait Fixture: Send + Sync {
    /// The storage under test.
    fn storage(&self) -> &dyn Storage;

    /// Releases the fixture after a passing case (close pools, drop a scratch
    /// database). The default just drops it.
    async fn teardown(self)
    where
        Self: Sized,
    {
    }
}

impl Fixture for crate::memory::MemoryStorage {
    fn storage(&self) -> &dyn Storage {
        self
    }
}

/// Writes one `#[tokio::test]` per conformance case against the backend made
/// by `$factory` (see the [module docs](crate::conformance)). Invoke it inside
/// its own module: the generated test functions are named after the cases.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            create_and_get_credentials,
            create_without_credentials,
            create_duplicate_is_already_exists,
            usernames_are_case_and_byte_exact,
            list_accounts_sorted_by_bytes,
            count_accounts,
            per_host_isolation,
            unicode_and_special_usernames,
            iterations_full_u32_range,
            set_credentials_replaces_all,
            set_credentials_missing_account_is_not_found,
            delete_account_cascades,
            delete_missing_account_is_not_found,
            recreate_after_delete_starts_clean,
            bulk_create_20k_accounts,
            bulk_create_is_atomic_on_existing_account,
            bulk_create_rejects_duplicates_in_batch,
            bulk_create_empty_batch,
            invalid_input_is_rejected,
            kv_crud,
            kv_isolation_by_host_user_store,
            kv_binary_values,
            kv_list_keys_sorted,
            kv_clear_store,
            kv_host_wide_entries,
            migrate_is_idempotent_and_health_ok,
            roster_put_get_remove_and_versions,
            roster_item_limit,
            roster_groups_unicode_and_order,
            roster_isolation_by_host_user,
            roster_pending_in,
            roster_deleted_with_account,
            roster_invalid_input_is_rejected,
            roster_concurrent_puts_versions_distinct,
            roster_import_reads_back,
            roster_import_is_atomic,
            roster_import_is_idempotent,
            roster_import_2100_users,
            offline_fifo_and_remove_through,
            offline_quota_is_exact,
            offline_binary_and_large,
            offline_isolation_by_host_user,
            offline_deleted_with_account,
            offline_concurrent_pushes_respect_quota,
            account_import_reads_back,
            account_import_is_idempotent,
            account_import_invalid_writes_nothing,
            account_import_batch_outcomes_per_account,
            account_import_batch_large,
            roster_changes_since,
            pubsub_nodes_create_configure_delete,
            pubsub_publish_order_replace_and_trim,
            pubsub_retract_purge_and_isolation,
            pubsub_deleted_with_account_and_imported,
            pubsub_invalid_input_is_rejected,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let factory = $factory;
                let Some(fixture) = factory().await else {
                    return;
                };
                $crate::conformance::$case(
                    $crate::conformance::Fixture::storage(&fixture),
                )
                .await;
                $crate::conformance::Fixture::teardown(fixture).await;
            }
        )+
    };
}

/// A well-formed credential for `hash` whose bytes are derived from `seed`,
/// so tests can tell credentials apart.
pub fn credential(hash: &str, seed: u8) -> StoredCredential {
    let len = scram_hash_output_len(hash).unwrap_or(32);
    StoredCredential {
        mechanism_hash: hash.to_owned(),
        salt: vec![seed, seed.wrapping_add(1), 0, 0xFF],
        iterations: 4096 + u32::from(seed),
        stored_key: (0..len).map(|i| seed ^ i as u8).collect(),
        server_key: (0..len).map(|i| seed.wrapping_add(i as u8)).collect(),
    }
}

const HOST: &str = "example.org";
const OTHER_HOST: &str = "example.net";

fn assert_already_exists<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    assert!(matches!(result, Err(StorageError::AlreadyExists)), "{what}: expected AlreadyExists, got {result:?}");
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    assert!(matches!(result, Err(StorageError::NotFound)), "{what}: expected NotFound, got {result:?}");
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    assert!(matches!(result, Err(StorageError::InvalidInput(_))), "{what}: expected InvalidInput, got {result:?}");
}

/// Conformance case: create and get credentials.
pub async fn create_and_get_credentials(storage: &dyn Storage) {
    let auth = storage.auth();
    let sha1 = credential("SHA-1", 1);
    let sha256 = credential("SHA-256", 2);
    let sha512 = credential("SHA-512", 3);
    auth.create_account(HOST, "alice", &[sha1.clone(), sha256.clone(), sha512.clone()]).await.unwrap();

    assert!(auth.account_exists(HOST, "alice").await.unwrap());
    assert!(!auth.account_exists(HOST, "bob").await.unwrap());
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-1").await.unwrap(), Some(sha1));
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-256").await.unwrap(), Some(sha256));
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-512").await.unwrap(), Some(sha512));
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-384").await.unwrap(), None);
    assert_eq!(auth.get_credential(HOST, "bob", "SHA-1").await.unwrap(), None);
}

/// Conformance case: create without credentials.
pub async fn create_without_credentials(storage: &dyn Storage) {
    let auth = storage.auth();
    auth.create_account(HOST, "locked", &[]).await.unwrap();
    assert!(auth.account_exists(HOST, "locked").await.unwrap());
    assert_eq!(auth.get_credential(HOST, "locked", "SHA-256").await.unwrap(), None);
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 1);
}

/// Conformance case: create duplicate is already exists.
pub async fn create_duplicate_is_already_exists(storage: &dyn Storage) {
    let auth = storage.auth();
    let original = credential("SHA-256", 10);
    auth.create_account(HOST, "alice", std::slice::from_ref(&original)).await.unwrap();
    assert_already_exists(
        auth.create_account(HOST, "alice", &[credential("SHA-256", 11), credential("SHA-1", 12)]).await,
        "second create",
    );
    // The failed create changed nothing.
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-256").await.unwrap(), Some(original));
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-1").await.unwrap(), None);
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 1);
}

/// Conformance case: usernames are case and byte exact.
pub async fn usernames_are_case_and_byte_exact(storage: &dyn Storage) {
    // Normalization is the caller's job (RFC 7622 §3.3): the store must not
    // fold case or compare with a locale collation.
    let auth = storage.auth();
    auth.create_account(HOST, "alice", &[credential("SHA-256", 1)]).await.unwrap();
    auth.create_account(HOST, "Alice", &[credential("SHA-256", 2)]).await.unwrap();
    auth.create_account(HOST, "stra\u{DF}e", &[]).await.unwrap();
    auth.create_account(HOST, "strasse", &[]).await.unwrap();
    // Precomposed vs decomposed "é" are different byte strings.
    auth.create_account(HOST, "caf\u{E9}", &[]).await.unwrap();
    auth.create_account(HOST, "cafe\u{301}", &[]).await.unwrap();
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 6);
    assert!(!auth.account_exists(HOST, "ALICE").await.unwrap());
    assert_eq!(auth.get_credential(HOST, "Alice", "SHA-256").await.unwrap(), Some(credential("SHA-256", 2)));
    // SQL LIKE wildcards must not match anything.
    assert!(!auth.account_exists(HOST, "al%").await.unwrap());
    assert!(!auth.account_exists(HOST, "alic_").await.unwrap());
}

/// Conformance case: list accounts sorted by bytes.
pub async fn list_accounts_sorted_by_bytes(storage: &dyn Storage) {
    let auth = storage.auth();
    let names = ["zoe", "\u{E9}mile", "Zed", "alice", "bob", "_x", "10", "2", "Bob"];
    for name in names {
        auth.create_account(HOST, name, &[]).await.unwrap();
    }
    let mut expected: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(expected, ["10", "2", "Bob", "Zed", "_x", "alice", "bob", "zoe", "\u{E9}mile"]);
    assert_eq!(auth.list_accounts(HOST).await.unwrap(), expected);
    assert!(auth.list_accounts("empty.example").await.unwrap().is_empty());
}

/// Conformance case: count accounts.
pub async fn count_accounts(storage: &dyn Storage) {
    let auth = storage.auth();
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 0);
    for i in 0..7 {
        auth.create_account(HOST, &format!("user{i}"), &[credential("SHA-1", i)]).await.unwrap();
    }
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 7);
    auth.delete_account(HOST, "user3").await.unwrap();
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 6);
}

/// Conformance case: per host isolation.
pub async fn per_host_isolation(storage: &dyn Storage) {
    let auth = storage.auth();
    auth.create_account(HOST, "alice", &[credential("SHA-256", 1)]).await.unwrap();
    // Same username on another host is a different account.
    auth.create_account(OTHER_HOST, "alice", &[credential("SHA-256", 2)]).await.unwrap();
    auth.create_account(OTHER_HOST, "carol", &[]).await.unwrap();

    assert_eq!(auth.list_accounts(HOST).await.unwrap(), ["alice"]);
    assert_eq!(auth.list_accounts(OTHER_HOST).await.unwrap(), ["alice", "carol"]);
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 1);
    assert_eq!(auth.count_accounts(OTHER_HOST).await.unwrap(), 2);
    assert!(!auth.account_exists(HOST, "carol").await.unwrap());
    assert_eq!(auth.get_credential(OTHER_HOST, "alice", "SHA-256").await.unwrap(), Some(credential("SHA-256", 2)));

    auth.set_credentials(HOST, "alice", &[credential("SHA-1", 3)]).await.unwrap();
    assert_eq!(
        auth.get_credential(OTHER_HOST, "alice", "SHA-256").await.unwrap(),
        Some(credential("SHA-256", 2)),
        "set_credentials leaked across hosts"
    );

    auth.delete_account(HOST, "alice").await.unwrap();
    assert!(auth.account_exists(OTHER_HOST, "alice").await.unwrap());
    assert_not_found(auth.delete_account(HOST, "carol").await, "delete on wrong host");
    assert_not_found(auth.set_credentials(HOST, "carol", &[]).await, "set_credentials on wrong host");
}

/// Conformance case: unicode and special usernames.
pub async fn unicode_and_special_usernames(storage: &dyn Storage) {
    let auth = storage.auth();
    let kv = storage.kv();
    let host = "\u{BCF4}\u{B4DC}.example"; // an IDN host in Unicode form
    let names = [
        "\u{F1}and\u{FA}",             // ñandú
        "\u{7528}\u{6237}",            // 用户
        "\u{1D518}\u{1D52B}\u{1D526}", // astral plane letters
        "\u{1F600}",                   // emoji
        "o'brien",
        "semi;colon",
        "back\\slash",
        "quote\"d",
        "100%",
        "a b",
    ];
    for (seed, name) in names.iter().enumerate() {
        auth.create_account(host, name, &[credential("SHA-256", seed as u8)]).await.unwrap();
        kv.set(host, name, "vcard", "", name.as_bytes()).await.unwrap();
    }
    let mut expected: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(auth.list_accounts(host).await.unwrap(), expected);
    for (seed, name) in names.iter().enumerate() {
        assert!(auth.account_exists(host, name).await.unwrap(), "{name}");
        assert_eq!(
            auth.get_credential(host, name, "SHA-256").await.unwrap(),
            Some(credential("SHA-256", seed as u8)),
            "{name}"
        );
        assert_eq!(kv.get(host, name, "vcard", "").await.unwrap().as_deref(), Some(name.as_bytes()));
    }
    auth.delete_account(host, "\u{1F600}").await.unwrap();
    assert_eq!(auth.count_accounts(host).await.unwrap(), names.len() as u64 - 1);
}

/// Conformance case: iterations full u32 range.
pub async fn iterations_full_u32_range(storage: &dyn Storage) {
    let auth = storage.auth();
    let mut big = credential("SHA-512", 7);
    big.iterations = u32::MAX;
    let mut small = credential("SHA-1", 8);
    small.iterations = 1;
    auth.create_account(HOST, "iter", &[big.clone(), small.clone()]).await.unwrap();
    assert_eq!(auth.get_credential(HOST, "iter", "SHA-512").await.unwrap(), Some(big));
    assert_eq!(auth.get_credential(HOST, "iter", "SHA-1").await.unwrap(), Some(small));
}

/// Conformance case: set credentials replaces all.
pub async fn set_credentials_replaces_all(storage: &dyn Storage) {
    let auth = storage.auth();
    auth.create_account(HOST, "alice", &[credential("SHA-1", 1), credential("SHA-256", 2)]).await.unwrap();
    let new256 = credential("SHA-256", 20);
    let new512 = credential("SHA-512", 21);
    auth.set_credentials(HOST, "alice", &[new256.clone(), new512.clone()]).await.unwrap();
    assert_eq!(
        auth.get_credential(HOST, "alice", "SHA-1").await.unwrap(),
        None,
        "a hash not in the new set must be removed"
    );
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-256").await.unwrap(), Some(new256));
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-512").await.unwrap(), Some(new512));

    // Replacing with nothing leaves an account that cannot authenticate.
    auth.set_credentials(HOST, "alice", &[]).await.unwrap();
    assert!(auth.account_exists(HOST, "alice").await.unwrap());
    for hash in crate::SCRAM_HASHES {
        assert_eq!(auth.get_credential(HOST, "alice", hash).await.unwrap(), None);
    }

    // An invalid set is refused and leaves the old one in place.
    let kept = credential("SHA-256", 30);
    auth.set_credentials(HOST, "alice", std::slice::from_ref(&kept)).await.unwrap();
    assert_invalid(
        auth.set_credentials(HOST, "alice", &[credential("SHA-256", 31), credential("SHA-256", 32)]).await,
        "duplicate hash in set_credentials",
    );
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-256").await.unwrap(), Some(kept));
}

/// Conformance case: set credentials missing account is not found.
pub async fn set_credentials_missing_account_is_not_found(storage: &dyn Storage) {
    let auth = storage.auth();
    assert_not_found(
        auth.set_credentials(HOST, "ghost", &[credential("SHA-256", 1)]).await,
        "set_credentials on missing account",
    );
    assert!(!auth.account_exists(HOST, "ghost").await.unwrap());
    assert_eq!(auth.get_credential(HOST, "ghost", "SHA-256").await.unwrap(), None);
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 0);
}

/// Conformance case: delete account cascades.
pub async fn delete_account_cascades(storage: &dyn Storage) {
    let auth = storage.auth();
    let kv = storage.kv();
    auth.create_account(HOST, "alice", &[credential("SHA-1", 1), credential("SHA-256", 2)]).await.unwrap();
    auth.create_account(HOST, "bob", &[credential("SHA-256", 3)]).await.unwrap();
    kv.set(HOST, "alice", "vcard", "", b"<vCard/>").await.unwrap();
    kv.set(HOST, "alice", "private", "storage:bookmarks", b"x").await.unwrap();
    kv.set(HOST, "bob", "vcard", "", b"bob's").await.unwrap();
    kv.set(OTHER_HOST, "alice", "vcard", "", b"other host").await.unwrap();
    kv.set(HOST, "", "vcard", "", b"host-wide").await.unwrap();

    auth.delete_account(HOST, "alice").await.unwrap();

    assert!(!auth.account_exists(HOST, "alice").await.unwrap());
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-1").await.unwrap(), None);
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-256").await.unwrap(), None);
    assert_eq!(kv.get(HOST, "alice", "vcard", "").await.unwrap(), None);
    assert!(kv.list_keys(HOST, "alice", "private").await.unwrap().is_empty());
    // Other users, other hosts and host-wide data are untouched.
    assert!(auth.account_exists(HOST, "bob").await.unwrap());
    assert_eq!(auth.get_credential(HOST, "bob", "SHA-256").await.unwrap(), Some(credential("SHA-256", 3)));
    assert_eq!(kv.get(HOST, "bob", "vcard", "").await.unwrap().as_deref(), Some(&b"bob's"[..]));
    assert_eq!(kv.get(OTHER_HOST, "alice", "vcard", "").await.unwrap().as_deref(), Some(&b"other host"[..]));
    assert_eq!(kv.get(HOST, "", "vcard", "").await.unwrap().as_deref(), Some(&b"host-wide"[..]));
    assert_eq!(auth.list_accounts(HOST).await.unwrap(), ["bob"]);
}

/// Conformance case: delete missing account is not found.
pub async fn delete_missing_account_is_not_found(storage: &dyn Storage) {
    let auth = storage.auth();
    let kv = storage.kv();
    // Entries without an account are left alone by a failed delete.
    kv.set(HOST, "ghost", "vcard", "", b"v").await.unwrap();
    assert_not_found(auth.delete_account(HOST, "ghost").await, "delete missing");
    assert_eq!(kv.get(HOST, "ghost", "vcard", "").await.unwrap().as_deref(), Some(&b"v"[..]));

    auth.create_account(HOST, "once", &[]).await.unwrap();
    auth.delete_account(HOST, "once").await.unwrap();
    assert_not_found(auth.delete_account(HOST, "once").await, "second delete");
}

/// Conformance case: recreate after delete starts clean.
pub async fn recreate_after_delete_starts_clean(storage: &dyn Storage) {
    let auth = storage.auth();
    let kv = storage.kv();
    auth.create_account(HOST, "alice", &[credential("SHA-1", 1), credential("SHA-256", 2)]).await.unwrap();
    kv.set(HOST, "alice", "offline", "0001", b"msg").await.unwrap();
    auth.delete_account(HOST, "alice").await.unwrap();

    auth.create_account(HOST, "alice", &[credential("SHA-512", 3)]).await.unwrap();
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-1").await.unwrap(), None);
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-256").await.unwrap(), None);
    assert_eq!(auth.get_credential(HOST, "alice", "SHA-512").await.unwrap(), Some(credential("SHA-512", 3)));
    assert!(kv.list_keys(HOST, "alice", "offline").await.unwrap().is_empty());
}

/// Conformance case: bulk create 20 000 accounts.
pub async fn bulk_create_20k_accounts(storage: &dyn Storage) {
    let auth = storage.auth();
    auth.create_account(HOST, "preexisting", &[]).await.unwrap();
    let accounts: Vec<(String, Vec<StoredCredential>)> = (0..20_000u32)
        .map(|i| {
            let seed = (i % 251) as u8;
            (format!("bulk{i:05}"), vec![credential("SHA-1", seed), credential("SHA-256", seed)])
        })
        .collect();
    auth.create_accounts_bulk(HOST, &accounts).await.unwrap();

    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 20_001);
    assert_eq!(auth.count_accounts(OTHER_HOST).await.unwrap(), 0);
    let listed = auth.list_accounts(HOST).await.unwrap();
    assert_eq!(listed.len(), 20_001);
    assert_eq!(listed.first().map(String::as_str), Some("bulk00000"));
    assert_eq!(listed.get(19_999).map(String::as_str), Some("bulk19999"));
    assert_eq!(listed.last().map(String::as_str), Some("preexisting"));
    for i in [0u32, 1, 9_999, 19_999] {
        let seed = (i % 251) as u8;
        let user = format!("bulk{i:05}");
        assert_eq!(
            auth.get_credential(HOST, &user, "SHA-256").await.unwrap(),
            Some(credential("SHA-256", seed)),
            "{user}"
        );
        assert_eq!(auth.get_credential(HOST, &user, "SHA-1").await.unwrap(), Some(credential("SHA-1", seed)), "{user}");
    }
}

/// Conformance case: bulk create is atomic on existing account.
pub async fn bulk_create_is_atomic_on_existing_account(storage: &dyn Storage) {
    let auth = storage.auth();
    auth.create_account(HOST, "taken", &[credential("SHA-256", 1)]).await.unwrap();
    let accounts: Vec<(String, Vec<StoredCredential>)> =
        ["a1", "a2", "taken", "a3"].iter().map(|name| ((*name).to_owned(), vec![credential("SHA-256", 9)])).collect();
    assert_already_exists(auth.create_accounts_bulk(HOST, &accounts).await, "bulk with an existing account");
    assert_eq!(auth.list_accounts(HOST).await.unwrap(), ["taken"]);
    assert_eq!(auth.get_credential(HOST, "taken", "SHA-256").await.unwrap(), Some(credential("SHA-256", 1)));
    assert_eq!(auth.get_credential(HOST, "a1", "SHA-256").await.unwrap(), None);

    // An invalid entry anywhere rejects the whole batch too.
    let mut bad = credential("SHA-256", 2);
    bad.stored_key.truncate(3);
    let accounts = vec![("b1".to_owned(), vec![credential("SHA-256", 2)]), ("b2".to_owned(), vec![bad])];
    assert_invalid(auth.create_accounts_bulk(HOST, &accounts).await, "bulk with bad key");
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 1);
}

/// Conformance case: bulk create rejects duplicates in batch.
pub async fn bulk_create_rejects_duplicates_in_batch(storage: &dyn Storage) {
    let auth = storage.auth();
    let accounts = vec![
        ("dup".to_owned(), vec![credential("SHA-256", 1)]),
        ("other".to_owned(), vec![]),
        ("dup".to_owned(), vec![credential("SHA-256", 2)]),
    ];
    assert_already_exists(auth.create_accounts_bulk(HOST, &accounts).await, "bulk with a duplicate");
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 0);
}

/// Conformance case: bulk create empty batch.
pub async fn bulk_create_empty_batch(storage: &dyn Storage) {
    let auth = storage.auth();
    auth.create_accounts_bulk(HOST, &[]).await.unwrap();
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 0);
}

/// Conformance case: invalid input is rejected.
pub async fn invalid_input_is_rejected(storage: &dyn Storage) {
    let auth = storage.auth();
    let kv = storage.kv();
    let good = [credential("SHA-256", 1)];
    assert_invalid(auth.create_account(HOST, "", &good).await, "empty username");
    assert_invalid(auth.create_account("", "alice", &good).await, "empty host");
    assert_invalid(auth.create_account(HOST, "nul\0user", &good).await, "NUL in username");
    assert_invalid(auth.create_account(HOST, &"x".repeat(1024), &good).await, "username over 1023 bytes");
    let mut unknown = credential("SHA-256", 1);
    unknown.mechanism_hash = "MD5".into();
    assert_invalid(auth.create_account(HOST, "alice", &[unknown]).await, "unknown hash");
    let mut short = credential("SHA-256", 1);
    short.server_key.pop();
    assert_invalid(auth.create_account(HOST, "alice", &[short]).await, "short key");
    let mut zero = credential("SHA-256", 1);
    zero.iterations = 0;
    assert_invalid(auth.create_account(HOST, "alice", &[zero]).await, "zero iterations");
    assert_invalid(
        auth.create_account(HOST, "alice", &[credential("SHA-1", 1), credential("SHA-1", 2)]).await,
        "duplicate hash",
    );
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 0, "rejected creates stored something");
    // Lookups of a hash name that cannot exist simply find nothing.
    assert_eq!(auth.get_credential(HOST, "alice", "SHA\0").await.unwrap(), None);
    assert_eq!(auth.get_credential(HOST, "alice", "").await.unwrap(), None);

    assert_invalid(kv.set(HOST, "alice", "", "k", b"v").await, "empty store name");
    assert_invalid(kv.set(HOST, "alice", "s", "k\0", b"v").await, "NUL in key");
    assert_invalid(kv.get("", "alice", "s", "k").await, "empty host in kv");
    // The maximum accepted length works end to end.
    let long_user = "u".repeat(1023);
    auth.create_account(HOST, &long_user, &good).await.unwrap();
    assert!(auth.account_exists(HOST, &long_user).await.unwrap());
}

/// Conformance case: key-value: crud.
pub async fn kv_crud(storage: &dyn Storage) {
    let kv = storage.kv();
    assert_eq!(kv.get(HOST, "alice", "private", "a").await.unwrap(), None);
    kv.set(HOST, "alice", "private", "a", b"one").await.unwrap();
    assert_eq!(kv.get(HOST, "alice", "private", "a").await.unwrap().as_deref(), Some(&b"one"[..]));
    kv.set(HOST, "alice", "private", "a", b"two, longer").await.unwrap();
    assert_eq!(kv.get(HOST, "alice", "private", "a").await.unwrap().as_deref(), Some(&b"two, longer"[..]));
    kv.set(HOST, "alice", "private", "b", b"bee").await.unwrap();
    assert_eq!(kv.list_keys(HOST, "alice", "private").await.unwrap(), ["a", "b"]);

    assert!(kv.delete(HOST, "alice", "private", "a").await.unwrap());
    assert!(!kv.delete(HOST, "alice", "private", "a").await.unwrap());
    assert_eq!(kv.get(HOST, "alice", "private", "a").await.unwrap(), None);
    assert_eq!(kv.list_keys(HOST, "alice", "private").await.unwrap(), ["b"]);

    // The empty key is a normal key.
    kv.set(HOST, "alice", "vcard", "", b"<vCard xmlns='vcard-temp'/>").await.unwrap();
    assert_eq!(kv.list_keys(HOST, "alice", "vcard").await.unwrap(), [""]);
    assert!(kv.delete(HOST, "alice", "vcard", "").await.unwrap());
    assert!(kv.list_keys(HOST, "alice", "vcard").await.unwrap().is_empty());
}

/// Conformance case: key-value: isolation by host user store.
pub async fn kv_isolation_by_host_user_store(storage: &dyn Storage) {
    let kv = storage.kv();
    let scopes = [
        (HOST, "alice", "private"),
        (HOST, "alice", "vcard"),
        (HOST, "bob", "private"),
        (OTHER_HOST, "alice", "private"),
        (HOST, "", "private"),
    ];
    for (i, (host, user, store)) in scopes.iter().enumerate() {
        kv.set(host, user, store, "k", format!("value {i}").as_bytes()).await.unwrap();
    }
    for (i, (host, user, store)) in scopes.iter().enumerate() {
        assert_eq!(
            kv.get(host, user, store, "k").await.unwrap(),
            Some(format!("value {i}").into_bytes()),
            "{host}/{user}/{store}"
        );
        assert_eq!(kv.list_keys(host, user, store).await.unwrap(), ["k"]);
    }
    assert!(kv.delete(HOST, "alice", "private", "k").await.unwrap());
    for (i, (host, user, store)) in scopes.iter().enumerate().skip(1) {
        assert_eq!(
            kv.get(host, user, store, "k").await.unwrap(),
            Some(format!("value {i}").into_bytes()),
            "delete leaked into {host}/{user}/{store}"
        );
    }
    assert_eq!(kv.clear_store(HOST, "bob", "private").await.unwrap(), 1);
    assert_eq!(kv.get(OTHER_HOST, "alice", "private", "k").await.unwrap().as_deref(), Some(&b"value 3"[..]));
    assert_eq!(kv.get(HOST, "", "private", "k").await.unwrap().as_deref(), Some(&b"value 4"[..]));
}

/// Conformance case: key-value: binary values.
pub async fn kv_binary_values(storage: &dyn Storage) {
    let kv = storage.kv();
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    let nul_heavy = vec![0u8; 64];
    let invalid_utf8 = vec![0xC3, 0x28, 0x00, 0xFF, 0xFE, b'x', 0x00];
    let large: Vec<u8> = (0..(1usize << 20)).map(|i| (i * 31 % 256) as u8).collect();
    let empty: Vec<u8> = Vec::new();
    let values =
        [("all", &all_bytes), ("nul", &nul_heavy), ("utf8", &invalid_utf8), ("large", &large), ("empty", &empty)];
    for (key, value) in values {
        kv.set(HOST, "alice", "bin", key, value).await.unwrap();
    }
    for (key, value) in values {
        assert_eq!(kv.get(HOST, "alice", "bin", key).await.unwrap().as_ref(), Some(value), "value under {key}");
    }
    // An empty value is stored, not the same as "absent".
    assert_eq!(kv.get(HOST, "alice", "bin", "empty").await.unwrap(), Some(Vec::new()));
}

/// Conformance case: key-value: list keys sorted.
pub async fn kv_list_keys_sorted(storage: &dyn Storage) {
    let kv = storage.kv();
    let keys = ["b", "a", "B", "10", "9", "\u{E9}", "z", "urn:xmpp:bookmarks:1", "_"];
    for key in keys {
        kv.set(HOST, "alice", "s", key, key.as_bytes()).await.unwrap();
    }
    let mut expected: Vec<String> = keys.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(kv.list_keys(HOST, "alice", "s").await.unwrap(), expected);
    assert!(kv.list_keys(HOST, "alice", "unknown").await.unwrap().is_empty());
}

/// Conformance case: key-value: clear store.
pub async fn kv_clear_store(storage: &dyn Storage) {
    let kv = storage.kv();
    for i in 0..5 {
        kv.set(HOST, "alice", "offline", &format!("{i:04}"), b"m").await.unwrap();
    }
    kv.set(HOST, "alice", "vcard", "", b"keep").await.unwrap();
    assert_eq!(kv.clear_store(HOST, "alice", "offline").await.unwrap(), 5);
    assert_eq!(kv.clear_store(HOST, "alice", "offline").await.unwrap(), 0);
    assert!(kv.list_keys(HOST, "alice", "offline").await.unwrap().is_empty());
    assert_eq!(kv.get(HOST, "alice", "vcard", "").await.unwrap().as_deref(), Some(&b"keep"[..]));
}

/// Conformance case: key-value: host wide entries.
pub async fn kv_host_wide_entries(storage: &dyn Storage) {
    let kv = storage.kv();
    let auth = storage.auth();
    kv.set(HOST, "", "settings", "motd", b"hello").await.unwrap();
    assert_eq!(kv.list_keys(HOST, "", "settings").await.unwrap(), ["motd"]);
    // Host-wide entries are not an account.
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 0);
    assert_invalid(auth.delete_account(HOST, "").await, "delete of the empty user");
    assert_eq!(kv.get(HOST, "", "settings", "motd").await.unwrap().as_deref(), Some(&b"hello"[..]));
}

/// Conformance case: migrate is idempotent and health ok.
pub async fn migrate_is_idempotent_and_health_ok(storage: &dyn Storage) {
    storage.health_check().await.unwrap();
    storage.auth().create_account(HOST, "alice", &[credential("SHA-256", 1)]).await.unwrap();
    storage.migrate().await.unwrap();
    storage.migrate().await.unwrap();
    storage.health_check().await.unwrap();
    assert_eq!(
        storage.auth().get_credential(HOST, "alice", "SHA-256").await.unwrap(),
        Some(credential("SHA-256", 1)),
        "re-running migrations lost data"
    );
}

/// Runs all `futures` concurrently on the current task and returns their
/// outputs in order (a minimal `futures::future::join_all`, so the suite
/// needs no extra dependency).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

fn assert_limit_exceeded<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    assert!(matches!(result, Err(StorageError::LimitExceeded)), "{what}: expected LimitExceeded, got {result:?}");
}

/// A roster item with the given contact and groups and default state.
fn roster_item(contact: &str, groups: &[&str]) -> RosterItem {
    RosterItem {
        contact: contact.to_owned(),
        groups: groups.iter().map(|group| (*group).to_owned()).collect(),
        ..RosterItem::default()
    }
}

/// Conformance case: roster put, get, remove and versions (RFC 6121 §2.1.1,
/// §2.6: the version changes with every roster change and only then).
pub async fn roster_put_get_remove_and_versions(storage: &dyn Storage) {
    let roster = storage.roster();
    let empty = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(empty.version, 0);
    assert!(empty.items.is_empty());
    assert_eq!(roster.item(HOST, "alice", "juliet@example.com").await.unwrap(), None);

    let juliet = RosterItem {
        contact: "juliet@example.com".into(),
        name: Some("Juliet".into()),
        subscription: Subscription::Both,
        ask: false,
        approved: true,
        groups: vec!["Friends".into()],
    };
    assert_eq!(roster.put_item(HOST, "alice", &juliet, None).await.unwrap(), 1, "first write is version 1");
    let nurse = RosterItem {
        contact: "Nurse@example.com".into(),
        name: Some(String::new()),
        subscription: Subscription::To,
        ask: true,
        approved: false,
        groups: vec![],
    };
    assert_eq!(roster.put_item(HOST, "alice", &nurse, None).await.unwrap(), 2);
    let benvolio = RosterItem { subscription: Subscription::From, ..roster_item("benvolio@example.net", &[]) };
    assert_eq!(roster.put_item(HOST, "alice", &benvolio, None).await.unwrap(), 3);

    assert_eq!(roster.item(HOST, "alice", "juliet@example.com").await.unwrap(), Some(juliet.clone()));
    assert_eq!(roster.item(HOST, "alice", "Nurse@example.com").await.unwrap(), Some(nurse.clone()));
    // Contacts are compared byte for byte: no case folding.
    assert_eq!(roster.item(HOST, "alice", "nurse@example.com").await.unwrap(), None);
    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.version, 3);
    // Sorted by contact in byte order ('N' < 'b' < 'j').
    assert_eq!(whole.items, [nurse.clone(), benvolio.clone(), juliet.clone()]);

    // Replacing an item overwrites every field and bumps the version.
    let juliet2 = RosterItem {
        name: None,
        subscription: Subscription::None,
        ask: true,
        approved: false,
        groups: vec!["Capulets".into(), "Verona".into()],
        ..juliet.clone()
    };
    assert_eq!(roster.put_item(HOST, "alice", &juliet2, None).await.unwrap(), 4);
    assert_eq!(roster.item(HOST, "alice", "juliet@example.com").await.unwrap(), Some(juliet2.clone()));
    assert_eq!(roster.roster(HOST, "alice").await.unwrap().items.len(), 3);

    // Every subscription state round-trips.
    for (i, subscription) in
        [Subscription::None, Subscription::To, Subscription::From, Subscription::Both].into_iter().enumerate()
    {
        let item = RosterItem { subscription, ..benvolio.clone() };
        assert_eq!(roster.put_item(HOST, "alice", &item, None).await.unwrap(), 5 + i as u64);
        assert_eq!(roster.item(HOST, "alice", &item.contact).await.unwrap(), Some(item), "{subscription:?}");
    }
    let version = roster.roster(HOST, "alice").await.unwrap().version;
    assert_eq!(version, 8);

    assert_eq!(roster.remove_item(HOST, "alice", "Nurse@example.com").await.unwrap(), Some(9));
    assert_eq!(roster.item(HOST, "alice", "Nurse@example.com").await.unwrap(), None);
    // Removing a missing item changes nothing, the version included.
    assert_eq!(roster.remove_item(HOST, "alice", "Nurse@example.com").await.unwrap(), None);
    assert_eq!(roster.remove_item(HOST, "alice", "nobody@example.com").await.unwrap(), None);
    assert_eq!(roster.remove_item(HOST, "nobody", "juliet@example.com").await.unwrap(), None);
    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.version, 9);
    assert_eq!(
        whole.items.iter().map(|item| item.contact.as_str()).collect::<Vec<_>>(),
        ["benvolio@example.net", "juliet@example.com"]
    );

    // Emptying the roster keeps the version counting up.
    assert_eq!(roster.remove_item(HOST, "alice", "benvolio@example.net").await.unwrap(), Some(10));
    assert_eq!(roster.remove_item(HOST, "alice", "juliet@example.com").await.unwrap(), Some(11));
    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.version, 11);
    assert!(whole.items.is_empty());
    assert_eq!(roster.put_item(HOST, "alice", &juliet, None).await.unwrap(), 12);
}

/// Conformance case: the `max_items` limit refuses new contacts only, and a
/// refused write changes nothing (RFC 6121 §2.3.3 `<not-allowed/>` /
/// `<resource-constraint/>` on a full roster).
pub async fn roster_item_limit(storage: &dyn Storage) {
    let roster = storage.roster();
    assert_limit_exceeded(roster.put_item(HOST, "alice", &roster_item("a@x", &[]), Some(0)).await, "limit 0");
    assert_eq!(roster.roster(HOST, "alice").await.unwrap().version, 0, "refused write bumped the version");

    assert_eq!(roster.put_item(HOST, "alice", &roster_item("a@x", &[]), Some(2)).await.unwrap(), 1);
    assert_eq!(roster.put_item(HOST, "alice", &roster_item("b@x", &[]), Some(2)).await.unwrap(), 2);
    assert_limit_exceeded(roster.put_item(HOST, "alice", &roster_item("c@x", &["g"]), Some(2)).await, "third item");
    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.version, 2, "refused write bumped the version");
    assert_eq!(whole.items.len(), 2);
    assert_eq!(roster.item(HOST, "alice", "c@x").await.unwrap(), None);

    // Updating a contact already in a full roster is allowed.
    let updated = RosterItem { name: Some("A".into()), ..roster_item("a@x", &["g"]) };
    assert_eq!(roster.put_item(HOST, "alice", &updated, Some(2)).await.unwrap(), 3);
    assert_eq!(roster.item(HOST, "alice", "a@x").await.unwrap(), Some(updated));
    // Even when the limit has been lowered below the current size.
    assert_eq!(roster.put_item(HOST, "alice", &roster_item("b@x", &[]), Some(1)).await.unwrap(), 4);
    // A larger limit, or none, lets new contacts in again.
    assert_eq!(roster.put_item(HOST, "alice", &roster_item("c@x", &[]), Some(3)).await.unwrap(), 5);
    assert_eq!(roster.put_item(HOST, "alice", &roster_item("d@x", &[]), None).await.unwrap(), 6);
    // Removing frees a place.
    assert_limit_exceeded(roster.put_item(HOST, "alice", &roster_item("e@x", &[]), Some(4)).await, "fifth item");
    assert_eq!(roster.remove_item(HOST, "alice", "a@x").await.unwrap(), Some(7));
    assert_eq!(roster.put_item(HOST, "alice", &roster_item("e@x", &[]), Some(4)).await.unwrap(), 8);
    // The limit counts this user's roster only.
    assert_eq!(roster.put_item(HOST, "bob", &roster_item("a@x", &[]), Some(1)).await.unwrap(), 1);
    assert_eq!(roster.put_item(OTHER_HOST, "alice", &roster_item("a@x", &[]), Some(1)).await.unwrap(), 1);
}

/// Conformance case: roster groups keep their order and any Unicode text,
/// including commas, quotes and brackets (RFC 6121 §2.1.2.2).
pub async fn roster_groups_unicode_and_order(storage: &dyn Storage) {
    let roster = storage.roster();
    let long_group = "\u{E9}".repeat(511) + "x"; // 1023 bytes
    let groups = [
        "Zeta",
        "Friends, close",
        "\u{5BB6}\u{65CF}",
        "\u{1F389} party",
        "a \"quoted\" 'group'",
        "[\"json\", 1]",
        "back\\slash;semi|pipe",
        " spaced ",
        "Alpha",
        "tab\there\nnewline",
        "\u{202E}rtl",
        long_group.as_str(),
    ];
    let item = RosterItem { name: Some("\u{C9}milie, \u{1F600}".into()), ..roster_item("emilie@example.fr", &groups) };
    roster.put_item(HOST, "alice", &item, None).await.unwrap();
    assert_eq!(roster.item(HOST, "alice", &item.contact).await.unwrap().as_ref(), Some(&item));

    // Reversed order is a different item.
    let mut reversed = item.clone();
    reversed.groups.reverse();
    roster.put_item(HOST, "alice", &reversed, None).await.unwrap();
    assert_eq!(roster.item(HOST, "alice", &item.contact).await.unwrap().as_ref(), Some(&reversed));

    // Fewer groups, then none: no leftovers of the earlier lists.
    let fewer = RosterItem { groups: vec!["Alpha".into(), "Zeta".into()], ..item.clone() };
    roster.put_item(HOST, "alice", &fewer, None).await.unwrap();
    assert_eq!(roster.item(HOST, "alice", &item.contact).await.unwrap().as_ref(), Some(&fewer));
    let other = roster_item("other@example.fr", &["Zeta", "Alpha"]);
    roster.put_item(HOST, "alice", &other, None).await.unwrap();
    let none = RosterItem { groups: vec![], ..item.clone() };
    roster.put_item(HOST, "alice", &none, None).await.unwrap();
    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.items, [none, other]);

    // Many groups on many items, read back as a whole roster.
    let many: Vec<RosterItem> = (0..50)
        .map(|i| RosterItem {
            groups: (0..(i % 7)).rev().map(|g| format!("g{g}, item {i}")).collect(),
            ..roster_item(&format!("c{i:03}@example.com"), &[])
        })
        .collect();
    for item in &many {
        roster.put_item(HOST, "bob", item, None).await.unwrap();
    }
    assert_eq!(roster.roster(HOST, "bob").await.unwrap().items, many);
    // A single item with a lot of groups.
    let crowded = RosterItem {
        groups: (0..2000).rev().map(|g| format!("group {g}")).collect(),
        ..roster_item("crowded@example.com", &[])
    };
    roster.put_item(HOST, "carol", &crowded, None).await.unwrap();
    assert_eq!(roster.item(HOST, "carol", &crowded.contact).await.unwrap(), Some(crowded));
}

/// Conformance case: rosters of different users and hosts are independent,
/// versions included.
pub async fn roster_isolation_by_host_user(storage: &dyn Storage) {
    let roster = storage.roster();
    let owners = [(HOST, "alice"), (HOST, "bob"), (OTHER_HOST, "alice"), (HOST, "Alice")];
    for (i, (host, user)) in owners.iter().enumerate() {
        for n in 0..=i {
            let item = RosterItem { name: Some(format!("{host}/{user}")), ..roster_item(&format!("c{n}@x"), &[]) };
            assert_eq!(roster.put_item(host, user, &item, None).await.unwrap(), n as u64 + 1, "{host}/{user}");
        }
    }
    for (i, (host, user)) in owners.iter().enumerate() {
        let whole = roster.roster(host, user).await.unwrap();
        assert_eq!(whole.version, i as u64 + 1, "{host}/{user}");
        assert_eq!(whole.items.len(), i + 1, "{host}/{user}");
        let expected = format!("{host}/{user}");
        assert!(whole.items.iter().all(|item| item.name.as_deref() == Some(expected.as_str())), "{host}/{user}");
    }
    assert_eq!(roster.remove_item(HOST, "alice", "c0@x").await.unwrap(), Some(2));
    assert_eq!(
        roster.item(HOST, "bob", "c0@x").await.unwrap().and_then(|item| item.name).as_deref(),
        Some("example.org/bob")
    );
    assert!(roster.item(OTHER_HOST, "alice", "c0@x").await.unwrap().is_some());
    assert!(roster.item(HOST, "Alice", "c0@x").await.unwrap().is_some());
    assert_eq!(roster.roster(HOST, "bob").await.unwrap().version, 2);
    assert_eq!(roster.roster(OTHER_HOST, "alice").await.unwrap().version, 3);
    assert_eq!(roster.roster(HOST, "carol").await.unwrap().version, 0);
}

/// Conformance case: pending-in subscription requests (RFC 6121 §3.1.3)
/// are kept per contact, replaced by a newer request, and do not change
/// the roster version.
pub async fn roster_pending_in(storage: &dyn Storage) {
    let roster = storage.roster();
    assert!(roster.pending_in(HOST, "alice").await.unwrap().is_empty());
    let romeo = PendingIn {
        contact: "romeo@example.net".into(),
        status: Some("Hi, it's me \u{1F339}".into()),
        stanza: Some(
            b"<presence type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>R\x00</nick></presence>"
                .to_vec(),
        ),
    };
    let mercutio = PendingIn { contact: "mercutio@example.com".into(), status: None, stanza: None };
    let empty_status = PendingIn { contact: "Tybalt@example.com".into(), status: Some(String::new()), stanza: None };
    roster.add_pending_in(HOST, "alice", &romeo).await.unwrap();
    roster.add_pending_in(HOST, "alice", &mercutio).await.unwrap();
    roster.add_pending_in(HOST, "alice", &empty_status).await.unwrap();
    assert_eq!(
        roster.pending_in(HOST, "alice").await.unwrap(),
        [empty_status.clone(), mercutio.clone(), romeo.clone()]
    );

    // A new request from the same contact replaces the old one.
    let romeo2 = PendingIn { contact: romeo.contact.clone(), status: None, stanza: None };
    roster.add_pending_in(HOST, "alice", &romeo2).await.unwrap();
    assert_eq!(
        roster.pending_in(HOST, "alice").await.unwrap(),
        [empty_status.clone(), mercutio.clone(), romeo2.clone()]
    );

    // Other owners see nothing.
    assert!(roster.pending_in(HOST, "bob").await.unwrap().is_empty());
    assert!(roster.pending_in(OTHER_HOST, "alice").await.unwrap().is_empty());
    roster.add_pending_in(OTHER_HOST, "alice", &romeo).await.unwrap();

    assert!(roster.remove_pending_in(HOST, "alice", "mercutio@example.com").await.unwrap());
    assert!(!roster.remove_pending_in(HOST, "alice", "mercutio@example.com").await.unwrap());
    assert!(!roster.remove_pending_in(HOST, "alice", "tybalt@example.com").await.unwrap());
    assert_eq!(roster.pending_in(HOST, "alice").await.unwrap(), [empty_status, romeo2]);
    assert_eq!(roster.pending_in(OTHER_HOST, "alice").await.unwrap(), [romeo]);

    // Pending requests are not roster items and have no version.
    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.version, 0);
    assert!(whole.items.is_empty());

    // The longest accepted status round-trips.
    let long = PendingIn { contact: "long@example.com".into(), status: Some("s".repeat(4096)), stanza: None };
    roster.add_pending_in(HOST, "bob", &long).await.unwrap();
    assert_eq!(roster.pending_in(HOST, "bob").await.unwrap(), [long]);
}

/// Conformance case: deleting an account removes its roster, version and
/// pending-in requests, and nobody else's.
pub async fn roster_deleted_with_account(storage: &dyn Storage) {
    let auth = storage.auth();
    let roster = storage.roster();
    auth.create_account(HOST, "alice", &[]).await.unwrap();
    auth.create_account(HOST, "bob", &[]).await.unwrap();
    for (host, user) in [(HOST, "alice"), (HOST, "bob"), (OTHER_HOST, "alice")] {
        roster.put_item(host, user, &roster_item("juliet@example.com", &["Friends", "Verona"]), None).await.unwrap();
        roster.put_item(host, user, &roster_item("romeo@example.net", &[]), None).await.unwrap();
        roster
            .add_pending_in(host, user, &PendingIn { contact: "tybalt@example.com".into(), status: None, stanza: None })
            .await
            .unwrap();
    }

    auth.delete_account(HOST, "alice").await.unwrap();

    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.version, 0);
    assert!(whole.items.is_empty());
    assert_eq!(roster.item(HOST, "alice", "juliet@example.com").await.unwrap(), None);
    assert!(roster.pending_in(HOST, "alice").await.unwrap().is_empty());
    for (host, user) in [(HOST, "bob"), (OTHER_HOST, "alice")] {
        let whole = roster.roster(host, user).await.unwrap();
        assert_eq!(whole.version, 2, "{host}/{user}");
        assert_eq!(whole.items.len(), 2, "{host}/{user}");
        assert_eq!(whole.items[0].groups, ["Friends", "Verona"], "{host}/{user}");
        assert_eq!(roster.pending_in(host, user).await.unwrap().len(), 1, "{host}/{user}");
    }

    // A re-created account starts with an empty roster, counting from 1.
    auth.create_account(HOST, "alice", &[]).await.unwrap();
    assert_eq!(roster.roster(HOST, "alice").await.unwrap(), crate::Roster::default());
    let item = roster_item("juliet@example.com", &[]);
    assert_eq!(roster.put_item(HOST, "alice", &item, None).await.unwrap(), 1);
    assert_eq!(roster.item(HOST, "alice", "juliet@example.com").await.unwrap(), Some(item));
}

/// Conformance case: roster and offline input that the store refuses.
pub async fn roster_invalid_input_is_rejected(storage: &dyn Storage) {
    let roster = storage.roster();
    let offline = storage.offline();
    let put = async |item: RosterItem| roster.put_item(HOST, "alice", &item, None).await;
    assert_invalid(put(roster_item("", &[])).await, "empty contact");
    assert_invalid(put(roster_item("a\0b@x", &[])).await, "NUL in contact");
    assert_invalid(put(roster_item(&"c".repeat(3072), &[])).await, "contact over 3071 bytes");
    assert_invalid(put(roster_item("a@x", &[""])).await, "empty group");
    assert_invalid(put(roster_item("a@x", &["g", "h", "g"])).await, "duplicate group");
    assert_invalid(put(roster_item("a@x", &["g\0"])).await, "NUL in group");
    assert_invalid(put(roster_item("a@x", &[&"g".repeat(1024)])).await, "group over 1023 bytes");
    assert_invalid(put(RosterItem { name: Some("n\0".into()), ..roster_item("a@x", &[]) }).await, "NUL in name");
    assert_invalid(
        put(RosterItem { name: Some("n".repeat(1024)), ..roster_item("a@x", &[]) }).await,
        "name over 1023 bytes",
    );
    assert_invalid(roster.put_item(HOST, "", &roster_item("a@x", &[]), None).await, "empty user");
    assert_invalid(roster.put_item("", "alice", &roster_item("a@x", &[]), None).await, "empty host");
    assert_invalid(roster.roster(HOST, "").await, "roster of the empty user");
    assert_invalid(roster.item(HOST, "alice", "").await, "item with empty contact");
    assert_invalid(roster.remove_item(HOST, "alice", "a\0").await, "remove with NUL");
    let bad_pending = PendingIn { contact: String::new(), status: None, stanza: None };
    assert_invalid(roster.add_pending_in(HOST, "alice", &bad_pending).await, "pending with empty contact");
    let bad_status = PendingIn { contact: "a@x".into(), status: Some("s\0".into()), stanza: None };
    assert_invalid(roster.add_pending_in(HOST, "alice", &bad_status).await, "pending with NUL in status");
    let long_status = PendingIn { contact: "a@x".into(), status: Some("s".repeat(4097)), stanza: None };
    assert_invalid(roster.add_pending_in(HOST, "alice", &long_status).await, "pending status over 4096 bytes");
    let long_stanza = PendingIn { contact: "a@x".into(), status: None, stanza: Some(vec![b'x'; 16 * 1024 + 1]) };
    assert_invalid(roster.add_pending_in(HOST, "alice", &long_stanza).await, "pending stanza over 16 KiB");
    assert_invalid(offline.push(HOST, "", 0, b"m", 10).await, "offline push to the empty user");
    assert_invalid(offline.push("", "alice", 0, b"m", 10).await, "offline push to the empty host");
    assert_invalid(offline.peek(HOST, "a\0", 1).await, "offline peek with NUL");

    // Nothing was stored by the refused calls.
    assert_eq!(roster.roster(HOST, "alice").await.unwrap(), crate::Roster::default());
    assert!(roster.pending_in(HOST, "alice").await.unwrap().is_empty());
    // The longest accepted values work end to end.
    let longest = RosterItem {
        name: Some("n".repeat(1023)),
        ..roster_item(&"c".repeat(3071), &[&"g".repeat(1023), &"h".repeat(1023)])
    };
    assert_eq!(put(longest.clone()).await.unwrap(), 1);
    assert_eq!(roster.item(HOST, "alice", &longest.contact).await.unwrap(), Some(longest));
}

/// Conformance case: concurrent writes to one roster each get their own
/// version, and none is lost (RFC 6121 §2.6.1: a version identifies one
/// state of the roster).
pub async fn roster_concurrent_puts_versions_distinct(storage: &dyn Storage) {
    let roster = storage.roster();
    let items: Vec<RosterItem> =
        (0..20).map(|i| roster_item(&format!("contact{i:02}@example.com"), &[&format!("g{i}"), "all"])).collect();
    let results = join_all(items.iter().map(|item| roster.put_item(HOST, "alice", item, Some(100))).collect()).await;
    let mut versions: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=20).collect::<Vec<u64>>(), "versions must be distinct and gap-free");
    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.version, 20);
    assert_eq!(whole.items, items);

    // Concurrent adds against a limit: exactly enough succeed to fill it.
    let extra: Vec<RosterItem> = (0..10).map(|i| roster_item(&format!("extra{i}@example.com"), &[])).collect();
    let results = join_all(extra.iter().map(|item| roster.put_item(HOST, "alice", item, Some(25))).collect()).await;
    let mut versions = Vec::new();
    for result in results {
        match result {
            Ok(version) => versions.push(version),
            Err(StorageError::LimitExceeded) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    versions.sort_unstable();
    assert_eq!(versions, (21..=25).collect::<Vec<u64>>());
    let whole = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(whole.version, 25);
    assert_eq!(whole.items.len(), 25);
}

/// Conformance case: a roster import writes every user's items with their
/// groups in order, replaces the items it names (every field, groups
/// included), keeps the others, and bumps each user's version once.
pub async fn roster_import_reads_back(storage: &dyn Storage) {
    let roster = storage.roster();
    // alice has a roster already: juliet (to be replaced) and nurse (kept).
    let juliet = RosterItem { name: Some("Juliet".into()), ..roster_item("juliet@example.com", &["Old", "Older"]) };
    let nurse = roster_item("nurse@example.com", &["Capulets"]);
    roster.put_item(HOST, "alice", &juliet, None).await.unwrap();
    roster.put_item(HOST, "alice", &nurse, None).await.unwrap();
    roster.put_item(OTHER_HOST, "bob", &juliet, None).await.unwrap();

    let juliet2 = RosterItem {
        name: None,
        subscription: Subscription::Both,
        ..roster_item("juliet@example.com", &["Zeta", "Friends, close", "\u{5BB6}\u{65CF}"])
    };
    let romeo = RosterItem {
        name: Some("R\u{F6}meo".into()),
        subscription: Subscription::From,
        ask: true,
        approved: true,
        ..roster_item("romeo@example.net", &[])
    };
    let tybalt = RosterItem { subscription: Subscription::To, ..roster_item("Tybalt@example.com", &["b", "a"]) };
    let imported = vec![
        // Given out of order on purpose: the stores sort.
        ("bob".to_owned(), vec![romeo.clone(), tybalt.clone(), juliet2.clone()]),
        ("alice".to_owned(), vec![romeo.clone(), juliet2.clone()]),
        ("carol".to_owned(), vec![]),
        ("Alice".to_owned(), vec![tybalt.clone()]),
    ];
    roster.import_rosters(HOST, &imported).await.unwrap();

    let alice = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(alice.version, 3, "two puts, then one bump for the whole import");
    assert_eq!(alice.items, [juliet2.clone(), nurse.clone(), romeo.clone()]);
    let bob = roster.roster(HOST, "bob").await.unwrap();
    assert_eq!(bob.version, 1, "a new roster starts at 1");
    // Byte order: 'T' < 'j' < 'r'.
    assert_eq!(bob.items, [tybalt.clone(), juliet2.clone(), romeo.clone()]);
    assert_eq!(roster.roster(HOST, "Alice").await.unwrap(), Roster { version: 1, items: vec![tybalt.clone()] });
    // A user listed without items is left alone.
    assert_eq!(roster.roster(HOST, "carol").await.unwrap(), Roster::default());
    // Other hosts are untouched.
    assert_eq!(roster.roster(OTHER_HOST, "bob").await.unwrap(), Roster { version: 1, items: vec![juliet.clone()] });
    assert_eq!(roster.item(HOST, "bob", "juliet@example.com").await.unwrap(), Some(juliet2.clone()));

    // Single-item writes carry on from the imported version.
    assert_eq!(roster.put_item(HOST, "bob", &nurse, None).await.unwrap(), 2);
    assert_eq!(roster.remove_item(HOST, "alice", "romeo@example.net").await.unwrap(), Some(4));
    // An empty import is fine and changes nothing.
    roster.import_rosters(HOST, &[]).await.unwrap();
    assert_eq!(roster.roster(HOST, "alice").await.unwrap().version, 4);
}

/// Conformance case: a roster import with anything invalid in it is refused
/// as a whole: nothing is written and no version changes.
pub async fn roster_import_is_atomic(storage: &dyn Storage) {
    let roster = storage.roster();
    let kept = roster_item("kept@example.com", &["G"]);
    roster.put_item(HOST, "alice", &kept, None).await.unwrap();
    let before = roster.roster(HOST, "alice").await.unwrap();
    let good = |user: &str| -> crate::ImportedRoster {
        (user.to_owned(), vec![roster_item("juliet@example.com", &["Friends"]), roster_item("kept@example.com", &[])])
    };
    let with_last = |last: crate::ImportedRoster| vec![good("alice"), good("bob"), last];
    let cases: Vec<(&str, Vec<crate::ImportedRoster>)> = vec![
        ("empty group", with_last(("carol".into(), vec![roster_item("a@x", &["ok"]), roster_item("b@x", &[""])]))),
        ("NUL in contact", with_last(("carol".into(), vec![roster_item("a\0b@x", &[])]))),
        ("duplicate group", with_last(("carol".into(), vec![roster_item("a@x", &["g", "g"])]))),
        ("contact twice", with_last(("carol".into(), vec![roster_item("a@x", &[]), roster_item("a@x", &["g"])]))),
        ("user twice", with_last(good("alice"))),
        ("empty user", with_last((String::new(), vec![roster_item("a@x", &[])]))),
        (
            "NUL in name",
            with_last(("carol".into(), vec![RosterItem { name: Some("n\0".into()), ..roster_item("a@x", &[]) }])),
        ),
    ];
    for (what, rosters) in cases {
        assert_invalid(roster.import_rosters(HOST, &rosters).await, what);
        assert_eq!(roster.roster(HOST, "alice").await.unwrap(), before, "{what}");
        assert_eq!(roster.roster(HOST, "bob").await.unwrap(), Roster::default(), "{what}");
        assert_eq!(roster.roster(HOST, "carol").await.unwrap(), Roster::default(), "{what}");
    }
    assert_invalid(roster.import_rosters("", &[good("bob")]).await, "empty host");
    assert_eq!(roster.roster(HOST, "bob").await.unwrap(), Roster::default());
}

/// Conformance case: importing the same rosters again leaves the same
/// content (only the versions move on, once per import).
pub async fn roster_import_is_idempotent(storage: &dyn Storage) {
    let roster = storage.roster();
    let rosters: Vec<crate::ImportedRoster> = (0..5)
        .map(|u| {
            let items = (0..4)
                .map(|c| RosterItem {
                    subscription: Subscription::Both,
                    name: (c % 2 == 0).then(|| format!("contact {c}")),
                    ..roster_item(&format!("c{c}@example.net"), if c == 3 { &["x", "y"] } else { &[] })
                })
                .collect();
            (format!("user{u}"), items)
        })
        .collect();
    roster.import_rosters(HOST, &rosters).await.unwrap();
    let first: Vec<Roster> = join_all(rosters.iter().map(|(user, _)| roster.roster(HOST, user)).collect())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    roster.import_rosters(HOST, &rosters).await.unwrap();
    for ((user, items), before) in rosters.iter().zip(&first) {
        let after = roster.roster(HOST, user).await.unwrap();
        assert_eq!(before.version, 1, "{user}");
        assert_eq!(after.version, 2, "{user}");
        assert_eq!(&after.items, items, "{user}");
        assert_eq!(after.items, before.items, "{user}");
    }
}

/// Conformance case: the fan-out benchmark's rosters, 2100 users in groups
/// of 21 with 20 contacts each (42 000 items), in one import.
pub async fn roster_import_2100_users(storage: &dyn Storage) {
    let roster = storage.roster();
    let contacts_of = |user: u32| -> Vec<RosterItem> {
        let start = user / 21 * 21;
        (start..start + 21)
            .filter(|&other| other != user)
            .map(|other| RosterItem {
                subscription: Subscription::Both,
                ..roster_item(&format!("fan{other}@{HOST}"), &[])
            })
            .collect()
    };
    let rosters: Vec<crate::ImportedRoster> = (0..2100).map(|user| (format!("fan{user}"), contacts_of(user))).collect();
    roster.import_rosters(HOST, &rosters).await.unwrap();
    for user in [0u32, 20, 21, 1049, 2099] {
        let mut expected = contacts_of(user);
        expected.sort_by(|a, b| a.contact.cmp(&b.contact));
        let whole = roster.roster(HOST, &format!("fan{user}")).await.unwrap();
        assert_eq!(whole.version, 1, "fan{user}");
        assert_eq!(whole.items, expected, "fan{user}");
    }
    assert_eq!(roster.roster(HOST, "fan2100").await.unwrap(), Roster::default());
}

/// Conformance case: offline messages come back oldest first and are removed
/// through an id once delivered (XEP-0160 §3, §4).
pub async fn offline_fifo_and_remove_through(storage: &dyn Storage) {
    let offline = storage.offline();
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 0);
    assert!(offline.peek(HOST, "alice", 10).await.unwrap().is_empty());
    assert_eq!(offline.remove_through(HOST, "alice", i64::MAX).await.unwrap(), 0);

    let mut ids = Vec::new();
    for i in 0..5i64 {
        let stanza = format!("<message>{i}</message>");
        ids.push(offline.push(HOST, "alice", 1_700_000_000_000 + i, stanza.as_bytes(), 100).await.unwrap());
    }
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids must increase: {ids:?}");
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 5);

    let first = offline.peek(HOST, "alice", 3).await.unwrap();
    assert_eq!(first.len(), 3);
    for (i, message) in first.iter().enumerate() {
        assert_eq!(message.id, ids[i]);
        assert_eq!(message.stamp_ms, 1_700_000_000_000 + i as i64);
        assert_eq!(message.stanza, format!("<message>{i}</message>").into_bytes());
    }
    assert!(offline.peek(HOST, "alice", 0).await.unwrap().is_empty());
    // Peeking does not remove.
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 5);
    assert_eq!(offline.peek(HOST, "alice", u32::MAX).await.unwrap().len(), 5);

    assert_eq!(offline.remove_through(HOST, "alice", ids[1]).await.unwrap(), 2);
    assert_eq!(offline.remove_through(HOST, "alice", ids[1]).await.unwrap(), 0);
    assert_eq!(offline.remove_through(HOST, "alice", ids[0] - 1).await.unwrap(), 0);
    let rest = offline.peek(HOST, "alice", 10).await.unwrap();
    assert_eq!(rest.iter().map(|message| message.id).collect::<Vec<_>>(), &ids[2..]);
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 3);

    // Messages pushed later come after the remaining ones.
    let late = offline.push(HOST, "alice", 1, b"late", 100).await.unwrap();
    assert!(late > ids[4]);
    assert_eq!(offline.peek(HOST, "alice", 10).await.unwrap().last().map(|message| message.id), Some(late));

    // Ids are never reused, even once the queue has been emptied.
    assert_eq!(offline.remove_through(HOST, "alice", late).await.unwrap(), 4);
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 0);
    let after_empty = offline.push(HOST, "alice", 2, b"after", 100).await.unwrap();
    assert!(after_empty > late, "id {after_empty} reused after {late}");
    // A stale remove_through with an old id does not touch the new message.
    assert_eq!(offline.remove_through(HOST, "alice", late).await.unwrap(), 0);
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 1);
}

/// Conformance case: the quota is exact. The push that would exceed it fails
/// with `LimitExceeded` and stores nothing (XEP-0160 §5: the server bounces
/// the message instead of dropping it silently).
pub async fn offline_quota_is_exact(storage: &dyn Storage) {
    let offline = storage.offline();
    assert_limit_exceeded(offline.push(HOST, "alice", 0, b"m", 0).await, "quota 0");
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 0);

    let mut ids = Vec::new();
    for i in 0..3u8 {
        ids.push(offline.push(HOST, "alice", i64::from(i), &[i], 3).await.unwrap());
    }
    assert_limit_exceeded(offline.push(HOST, "alice", 9, b"over", 3).await, "push at the quota");
    assert_limit_exceeded(offline.push(HOST, "alice", 9, b"over", 2).await, "push over a lowered quota");
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 3);
    let stored = offline.peek(HOST, "alice", 10).await.unwrap();
    assert_eq!(stored.iter().map(|message| message.stanza.clone()).collect::<Vec<_>>(), [[0u8], [1], [2]]);

    // A larger quota admits more; delivering frees room.
    ids.push(offline.push(HOST, "alice", 3, &[3], 4).await.unwrap());
    assert_limit_exceeded(offline.push(HOST, "alice", 9, b"over", 4).await, "push at the raised quota");
    assert_eq!(offline.remove_through(HOST, "alice", ids[0]).await.unwrap(), 1);
    let id = offline.push(HOST, "alice", 4, &[4], 4).await.unwrap();
    assert!(id > ids[3]);
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 4);
    // The quota is per user.
    offline.push(HOST, "bob", 0, b"m", 1).await.unwrap();
    offline.push(OTHER_HOST, "alice", 0, b"m", 1).await.unwrap();
    assert_limit_exceeded(offline.push(HOST, "bob", 0, b"m", 1).await, "bob's quota");
}

/// Conformance case: stanzas are stored as bytes, exactly: NUL, invalid
/// UTF-8, empty, and a 256 KiB stanza; extreme stamps round-trip.
pub async fn offline_binary_and_large(storage: &dyn Storage) {
    let offline = storage.offline();
    let large: Vec<u8> = (0..256 * 1024).map(|i: usize| (i * 131 % 256) as u8).collect();
    let stanzas: [(i64, Vec<u8>); 5] = [
        (0, large),
        (i64::MAX, (0..=255u8).collect()),
        (i64::MIN, vec![0xC3, 0x28, 0x00, 0xFF, 0xFE]),
        (-1, Vec::new()),
        (1_700_000_000_123, "<message xml:lang='ja'>\u{3053}\u{3093}\u{306B}\u{3061}\u{306F}</message>".into()),
    ];
    for (stamp, stanza) in &stanzas {
        offline.push(HOST, "alice", *stamp, stanza, 10).await.unwrap();
    }
    let stored = offline.peek(HOST, "alice", 10).await.unwrap();
    assert_eq!(stored.len(), stanzas.len());
    for (message, (stamp, stanza)) in stored.iter().zip(&stanzas) {
        assert_eq!(message.stamp_ms, *stamp);
        assert_eq!(message.stanza.len(), stanza.len());
        assert!(message.stanza == *stanza, "stanza of {} bytes changed", stanza.len());
    }
}

/// Conformance case: offline queues of different users and hosts are
/// independent.
pub async fn offline_isolation_by_host_user(storage: &dyn Storage) {
    let offline = storage.offline();
    let owners = [(HOST, "alice"), (HOST, "bob"), (OTHER_HOST, "alice"), (HOST, "Alice")];
    let mut last_ids = Vec::new();
    for (i, (host, user)) in owners.iter().enumerate() {
        let mut last = 0;
        for n in 0..=i {
            last = offline.push(host, user, n as i64, format!("{host}/{user}/{n}").as_bytes(), 10).await.unwrap();
        }
        last_ids.push(last);
    }
    for (i, (host, user)) in owners.iter().enumerate() {
        assert_eq!(offline.count(host, user).await.unwrap(), i as u64 + 1, "{host}/{user}");
        let messages = offline.peek(host, user, 10).await.unwrap();
        for (n, message) in messages.iter().enumerate() {
            assert_eq!(message.stanza, format!("{host}/{user}/{n}").into_bytes());
        }
    }
    // remove_through with another user's (larger) id only touches the named
    // user's queue.
    let largest = last_ids.iter().copied().max().unwrap();
    assert_eq!(offline.remove_through(HOST, "alice", largest).await.unwrap(), 1);
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 0);
    assert_eq!(offline.count(HOST, "bob").await.unwrap(), 2);
    assert_eq!(offline.count(OTHER_HOST, "alice").await.unwrap(), 3);
    assert_eq!(offline.count(HOST, "Alice").await.unwrap(), 4);
}

/// Conformance case: deleting an account removes its offline messages, and
/// nobody else's.
pub async fn offline_deleted_with_account(storage: &dyn Storage) {
    let auth = storage.auth();
    let offline = storage.offline();
    auth.create_account(HOST, "alice", &[]).await.unwrap();
    auth.create_account(HOST, "bob", &[]).await.unwrap();
    let mut last = 0;
    for (host, user) in [(HOST, "alice"), (HOST, "bob"), (OTHER_HOST, "alice")] {
        for i in 0..3 {
            last = offline.push(host, user, i, b"<message/>", 10).await.unwrap();
        }
    }
    auth.delete_account(HOST, "alice").await.unwrap();
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 0);
    assert!(offline.peek(HOST, "alice", 10).await.unwrap().is_empty());
    assert_eq!(offline.count(HOST, "bob").await.unwrap(), 3);
    assert_eq!(offline.count(OTHER_HOST, "alice").await.unwrap(), 3);

    // A re-created account starts with an empty queue; ids keep increasing.
    auth.create_account(HOST, "alice", &[]).await.unwrap();
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 0);
    let id = offline.push(HOST, "alice", 0, b"new", 10).await.unwrap();
    assert!(id > last);
    assert_eq!(offline.peek(HOST, "alice", 10).await.unwrap().len(), 1);
}

/// Conformance case: concurrent pushes never overshoot the quota, and ids
/// still follow insertion order.
pub async fn offline_concurrent_pushes_respect_quota(storage: &dyn Storage) {
    let offline = storage.offline();
    let stanzas: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 64]).collect();
    let results =
        join_all(stanzas.iter().map(|stanza| offline.push(HOST, "alice", 0, stanza.as_slice(), 10)).collect()).await;
    let mut ids = Vec::new();
    for result in results {
        match result {
            Ok(id) => ids.push(id),
            Err(StorageError::LimitExceeded) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(ids.len(), 10, "exactly the quota must be accepted");
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 10);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "ids must be distinct");
    let stored = offline.peek(HOST, "alice", 20).await.unwrap();
    assert_eq!(stored.iter().map(|message| message.id).collect::<Vec<_>>(), ids);
}

/// A full account import for `user`, every kind of data filled in.
fn full_import(user: &str) -> AccountImport {
    AccountImport {
        username: user.to_owned(),
        credentials: vec![credential("SHA-1", 1), credential("SHA-256", 2), credential("SHA-512", 3)],
        roster: vec![
            // Out of order on purpose: the stores sort.
            RosterItem {
                name: Some("R\u{F6}meo".into()),
                subscription: Subscription::Both,
                ask: true,
                approved: true,
                ..roster_item("romeo@example.net", &["Friends", "\u{5BB6}\u{65CF}"])
            },
            RosterItem { subscription: Subscription::To, ..roster_item("Tybalt@example.com", &["b", "a"]) },
            roster_item("juliet@example.com", &[]),
        ],
        pending_in: vec![
            PendingIn {
                contact: "nurse@example.com".into(),
                status: Some("Hi".into()),
                stanza: Some(b"<presence type='subscribe'><status>Hi</status></presence>".to_vec()),
            },
            PendingIn { contact: "mercutio@example.com".into(), status: None, stanza: None },
        ],
        kv: vec![
            ("vcard".into(), String::new(), b"<vCard xmlns='vcard-temp'><FN>A</FN></vCard>".to_vec()),
            ("private".into(), "storage storage:bookmarks".into(), b"<storage xmlns='storage:bookmarks'/>".to_vec()),
            ("private".into(), "a b".into(), vec![0, 1, 2, 0xFF]),
        ],
        offline: vec![(1_000, b"<message>first</message>".to_vec()), (500, b"<message>second</message>".to_vec())],
        pep: vec![ImportedNode {
            name: "urn:xmpp:avatar:metadata".into(),
            config: NodeConfig { access_model: AccessModel::Open, ..NodeConfig::default() },
            items: vec![pubsub_item("abc", 7)],
        }],
    }
}

/// Conformance case: an imported account reads back through the normal
/// trait methods, and data left behind without an account is replaced.
pub async fn account_import_reads_back(storage: &dyn Storage) {
    let auth = storage.auth();
    let roster = storage.roster();
    let kv = storage.kv();
    let offline = storage.offline();
    // Leftovers of a name that has no account: replaced by the import.
    roster.import_rosters(HOST, &[("alice".to_owned(), vec![roster_item("old@example.com", &[])])]).await.unwrap();
    roster
        .add_pending_in(HOST, "alice", &PendingIn { contact: "old@example.com".into(), status: None, stanza: None })
        .await
        .unwrap();
    kv.set(HOST, "alice", "vcard", "", b"old").await.unwrap();
    kv.set(HOST, "alice", "other", "k", b"old").await.unwrap();
    offline.push(HOST, "alice", 1, b"old", 10).await.unwrap();
    // Another user's data, and the same name on another host, stay.
    auth.create_account(HOST, "bob", &[credential("SHA-1", 9)]).await.unwrap();
    kv.set(HOST, "bob", "vcard", "", b"bob").await.unwrap();
    kv.set(OTHER_HOST, "alice", "vcard", "", b"other").await.unwrap();

    let import = full_import("alice");
    assert_eq!(auth.import_account(HOST, &import).await.unwrap(), ImportOutcome::Created);

    assert!(auth.account_exists(HOST, "alice").await.unwrap());
    assert!(!auth.account_exists(OTHER_HOST, "alice").await.unwrap());
    for expected in &import.credentials {
        let stored = auth.get_credential(HOST, "alice", &expected.mechanism_hash).await.unwrap();
        assert_eq!(stored.as_ref(), Some(expected));
    }
    let stored_roster = roster.roster(HOST, "alice").await.unwrap();
    assert_eq!(stored_roster.version, 1, "an imported roster starts at 1");
    let mut expected_items = import.roster.clone();
    expected_items.sort_by(|a, b| a.contact.cmp(&b.contact));
    assert_eq!(stored_roster.items, expected_items);
    let mut expected_pending = import.pending_in.clone();
    expected_pending.sort_by(|a, b| a.contact.cmp(&b.contact));
    assert_eq!(roster.pending_in(HOST, "alice").await.unwrap(), expected_pending);
    for (store, key, value) in &import.kv {
        assert_eq!(kv.get(HOST, "alice", store, key).await.unwrap().as_ref(), Some(value), "{store}/{key}");
    }
    assert_eq!(kv.list_keys(HOST, "alice", "private").await.unwrap(), ["a b", "storage storage:bookmarks"]);
    assert!(kv.list_keys(HOST, "alice", "other").await.unwrap().is_empty(), "leftover kv entry replaced");
    let messages = offline.peek(HOST, "alice", 10).await.unwrap();
    let got: Vec<(i64, Vec<u8>)> = messages.iter().map(|m| (m.stamp_ms, m.stanza.clone())).collect();
    assert_eq!(got, import.offline, "list order kept, stamps as given, leftover removed");
    assert!(messages[0].id < messages[1].id);
    let nodes = storage.pubsub().nodes(HOST, "alice").await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].config, import.pep[0].config);
    assert_eq!(storage.pubsub().items(HOST, "alice", &nodes[0].name, None).await.unwrap(), import.pep[0].items);

    // Others untouched.
    assert_eq!(kv.get(HOST, "bob", "vcard", "").await.unwrap().as_deref(), Some(&b"bob"[..]));
    assert_eq!(kv.get(OTHER_HOST, "alice", "vcard", "").await.unwrap().as_deref(), Some(&b"other"[..]));
    assert_eq!(auth.list_accounts(HOST).await.unwrap(), ["alice", "bob"]);

    // The imported data behaves like any other: writes carry on, and
    // deleting the account removes all of it.
    assert_eq!(roster.put_item(HOST, "alice", &roster_item("new@example.com", &[]), None).await.unwrap(), 2);
    let id = offline.push(HOST, "alice", 2_000, b"third", 10).await.unwrap();
    assert!(id > messages[1].id);
    auth.delete_account(HOST, "alice").await.unwrap();
    assert_eq!(roster.roster(HOST, "alice").await.unwrap(), Roster::default());
    assert_eq!(offline.count(HOST, "alice").await.unwrap(), 0);
    assert!(kv.list_keys(HOST, "alice", "private").await.unwrap().is_empty());

    // A minimal import: an account with no data at all.
    let bare = AccountImport { username: "carol".into(), ..AccountImport::default() };
    assert_eq!(auth.import_account(HOST, &bare).await.unwrap(), ImportOutcome::Created);
    assert!(auth.account_exists(HOST, "carol").await.unwrap());
    assert_eq!(roster.roster(HOST, "carol").await.unwrap(), Roster::default());
    assert!(auth.get_credential(HOST, "carol", "SHA-1").await.unwrap().is_none());
}

/// Conformance case: importing an account that exists writes nothing at
/// all, whatever the import holds.
pub async fn account_import_is_idempotent(storage: &dyn Storage) {
    let auth = storage.auth();
    let roster = storage.roster();
    let kv = storage.kv();
    let offline = storage.offline();
    let import = full_import("alice");
    assert_eq!(auth.import_account(HOST, &import).await.unwrap(), ImportOutcome::Created);
    let before_roster = roster.roster(HOST, "alice").await.unwrap();
    let before_offline = offline.peek(HOST, "alice", 10).await.unwrap();

    assert_eq!(auth.import_account(HOST, &import).await.unwrap(), ImportOutcome::AlreadyExists);
    let mut changed = full_import("alice");
    changed.credentials = vec![credential("SHA-256", 42)];
    changed.roster = vec![roster_item("other@example.com", &[])];
    changed.kv = vec![("vcard".into(), String::new(), b"changed".to_vec()), ("new".into(), "k".into(), b"v".to_vec())];
    changed.offline = vec![(7, b"more".to_vec())];
    assert_eq!(auth.import_account(HOST, &changed).await.unwrap(), ImportOutcome::AlreadyExists);

    assert_eq!(roster.roster(HOST, "alice").await.unwrap(), before_roster, "roster and version unchanged");
    assert_eq!(offline.peek(HOST, "alice", 10).await.unwrap(), before_offline);
    assert_eq!(
        auth.get_credential(HOST, "alice", "SHA-256").await.unwrap().as_ref(),
        import.credentials.iter().find(|c| c.mechanism_hash == "SHA-256")
    );
    assert_eq!(kv.get(HOST, "alice", "vcard", "").await.unwrap(), Some(import.kv[0].2.clone()));
    assert!(kv.list_keys(HOST, "alice", "new").await.unwrap().is_empty());

    // An account made by other means counts as existing too.
    auth.create_account(HOST, "bob", &[]).await.unwrap();
    assert_eq!(auth.import_account(HOST, &full_import("bob")).await.unwrap(), ImportOutcome::AlreadyExists);
    assert_eq!(roster.roster(HOST, "bob").await.unwrap(), Roster::default());
    assert_eq!(offline.count(HOST, "bob").await.unwrap(), 0);
    assert!(auth.get_credential(HOST, "bob", "SHA-1").await.unwrap().is_none());
}

/// Conformance case: an import with anything invalid in it is refused
/// before anything is written: the account does not exist afterwards and
/// none of its data was stored.
pub async fn account_import_invalid_writes_nothing(storage: &dyn Storage) {
    let auth = storage.auth();
    let roster = storage.roster();
    let kv = storage.kv();
    let offline = storage.offline();
    let base = full_import("alice");
    let mut cases: Vec<(&str, AccountImport)> = Vec::new();
    let mut bad = base.clone();
    bad.roster.push(roster_item("bad\0contact@example.com", &[]));
    cases.push(("NUL in a roster contact", bad));
    let mut bad = base.clone();
    bad.roster.push(roster_item("", &[]));
    cases.push(("empty roster contact", bad));
    let mut bad = base.clone();
    bad.roster.push(roster_item("romeo@example.net", &[]));
    cases.push(("roster contact twice", bad));
    let mut bad = base.clone();
    bad.roster.push(roster_item("x@example.com", &["g", "g"]));
    cases.push(("group twice", bad));
    let mut bad = base.clone();
    bad.credentials.push(credential("SHA-1", 7));
    cases.push(("two credentials for one hash", bad));
    let mut bad = base.clone();
    bad.credentials[0].stored_key.pop();
    cases.push(("short StoredKey", bad));
    let mut bad = base.clone();
    bad.pending_in.push(PendingIn { contact: "p@example.com".into(), status: Some("\0".into()), stanza: None });
    cases.push(("NUL in a status", bad));
    let mut bad = base.clone();
    bad.pending_in.push(PendingIn {
        contact: "p@example.com".into(),
        status: None,
        stanza: Some(vec![b'x'; crate::validate::MAX_PENDING_STANZA_BYTES + 1]),
    });
    cases.push(("over-long pending stanza", bad));
    let mut bad = base.clone();
    bad.pending_in.push(bad.pending_in[0].clone());
    cases.push(("pending request twice", bad));
    let mut bad = base.clone();
    bad.kv.push((String::new(), "k".into(), Vec::new()));
    cases.push(("empty store name", bad));
    let mut bad = base.clone();
    bad.kv.push(("vcard".into(), String::new(), b"again".to_vec()));
    cases.push(("kv entry twice", bad));
    let mut bad = base.clone();
    bad.username = String::new();
    cases.push(("empty username", bad));
    let mut bad = base.clone();
    bad.username = "a\0b".into();
    cases.push(("NUL in the username", bad));

    for (what, import) in &cases {
        assert_invalid(auth.import_account(HOST, import).await, what);
        assert!(!auth.account_exists(HOST, "alice").await.unwrap(), "{what}: account created");
        assert_eq!(roster.roster(HOST, "alice").await.unwrap(), Roster::default(), "{what}: roster written");
        assert!(roster.pending_in(HOST, "alice").await.unwrap().is_empty(), "{what}: requests written");
        assert!(kv.get(HOST, "alice", "vcard", "").await.unwrap().is_none(), "{what}: vCard written");
        assert_eq!(offline.count(HOST, "alice").await.unwrap(), 0, "{what}: offline messages written");
    }
    assert_invalid(auth.import_account("", &base).await, "empty host");
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 0);

    // The valid import still goes through afterwards.
    assert_eq!(auth.import_account(HOST, &base).await.unwrap(), ImportOutcome::Created);
}

/// Conformance case: a batch import gives one outcome per account, in
/// order; an account that exists, an invalid one and a name given twice
/// do not stop the others, and only the valid new accounts are written.
pub async fn account_import_batch_outcomes_per_account(storage: &dyn Storage) {
    let auth = storage.auth();
    let roster = storage.roster();
    let kv = storage.kv();
    let offline = storage.offline();
    auth.create_account(HOST, "bob", &[credential("SHA-1", 9)]).await.unwrap();
    let mut invalid = full_import("carol");
    invalid.roster.push(roster_item("", &[]));
    let mut twice = full_import("alice");
    twice.kv = vec![("vcard".into(), String::new(), b"second".to_vec())];
    let batch = [full_import("alice"), full_import("bob"), invalid, full_import("dave"), twice];
    let outcomes = auth.import_accounts(HOST, &batch).await.unwrap();
    assert_eq!(outcomes.len(), batch.len());
    assert_eq!(outcomes[0].as_ref().ok(), Some(&ImportOutcome::Created), "alice: {:?}", outcomes[0]);
    assert_eq!(outcomes[1].as_ref().ok(), Some(&ImportOutcome::AlreadyExists), "bob: {:?}", outcomes[1]);
    assert!(matches!(&outcomes[2], Err(StorageError::InvalidInput(_))), "carol (invalid): {:?}", outcomes[2]);
    assert_eq!(outcomes[3].as_ref().ok(), Some(&ImportOutcome::Created), "dave: {:?}", outcomes[3]);
    assert_eq!(outcomes[4].as_ref().ok(), Some(&ImportOutcome::AlreadyExists), "alice twice: {:?}", outcomes[4]);

    assert_eq!(auth.list_accounts(HOST).await.unwrap(), ["alice", "bob", "dave"]);
    for user in ["alice", "dave"] {
        assert_eq!(roster.roster(HOST, user).await.unwrap().items.len(), 3, "{user}: roster");
        assert_eq!(offline.count(HOST, user).await.unwrap(), 2, "{user}: offline");
        assert_eq!(auth.get_credential(HOST, user, "SHA-512").await.unwrap(), Some(credential("SHA-512", 3)));
    }
    assert_eq!(
        kv.get(HOST, "alice", "vcard", "").await.unwrap(),
        Some(full_import("alice").kv[0].2.clone()),
        "the first record of a name wins"
    );
    // The existing account and the invalid one: nothing written.
    assert_eq!(roster.roster(HOST, "bob").await.unwrap(), Roster::default());
    assert_eq!(offline.count(HOST, "bob").await.unwrap(), 0);
    assert_eq!(auth.get_credential(HOST, "bob", "SHA-1").await.unwrap(), Some(credential("SHA-1", 9)));
    assert!(auth.get_credential(HOST, "bob", "SHA-256").await.unwrap().is_none());
    assert!(!auth.account_exists(HOST, "carol").await.unwrap());
    assert_eq!(roster.roster(HOST, "carol").await.unwrap(), Roster::default());
    assert_eq!(offline.count(HOST, "carol").await.unwrap(), 0);
    assert!(kv.get(HOST, "carol", "vcard", "").await.unwrap().is_none());

    // Batch-wide refusals, and the empty batch.
    assert_invalid(auth.import_accounts("", &[full_import("erin")]).await, "empty host");
    assert!(!auth.account_exists(HOST, "erin").await.unwrap());
    assert!(auth.import_accounts(HOST, &[]).await.unwrap().is_empty());
    // A batch of only invalid accounts.
    let mut bad = full_import("erin");
    bad.username = String::new();
    let outcomes = auth.import_accounts(HOST, &[bad]).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(matches!(&outcomes[0], Err(StorageError::InvalidInput(_))), "empty username: {:?}", outcomes[0]);
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 3);
}

/// Conformance case: a batch of many accounts with rosters reads back.
pub async fn account_import_batch_large(storage: &dyn Storage) {
    let auth = storage.auth();
    let roster = storage.roster();
    let batch: Vec<AccountImport> = (0..300)
        .map(|n| AccountImport {
            username: format!("user{n:03}"),
            credentials: vec![credential("SHA-256", 2)],
            roster: (0..20).map(|c| roster_item(&format!("contact{c}@example.net"), &["Friends"])).collect(),
            ..AccountImport::default()
        })
        .collect();
    let outcomes = auth.import_accounts(HOST, &batch).await.unwrap();
    assert!(outcomes.iter().all(|outcome| matches!(outcome, Ok(ImportOutcome::Created))), "{outcomes:?}");
    assert_eq!(auth.count_accounts(HOST).await.unwrap(), 300);
    let stored = roster.roster(HOST, "user299").await.unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.items.len(), 20);
    assert_eq!(stored.items[0].groups, ["Friends"]);
    // Again: all exist, nothing changes.
    let outcomes = auth.import_accounts(HOST, &batch).await.unwrap();
    assert!(outcomes.iter().all(|outcome| matches!(outcome, Ok(ImportOutcome::AlreadyExists))));
    assert_eq!(roster.roster(HOST, "user299").await.unwrap(), stored);
}

/// A PEP item with a payload derived from `id`.
fn pubsub_item(id: &str, published_ms: i64) -> PubsubItem {
    PubsubItem {
        id: id.to_owned(),
        publisher: Some("alice@example.org/phone".to_owned()),
        published_ms,
        payload: format!("<x xmlns='urn:test'>{id} \u{e9}\u{0}</x>").into_bytes(),
    }
}

fn ids(items: &[PubsubItem]) -> Vec<&str> {
    items.iter().map(|item| item.id.as_str()).collect()
}

/// Conformance case: nodes are created once, configured, listed sorted
/// and deleted; every configuration field round-trips.
pub async fn pubsub_nodes_create_configure_delete(storage: &dyn Storage) {
    let pubsub = storage.pubsub();
    assert_eq!(pubsub.node(HOST, "alice", "urn:a").await.unwrap(), None);
    let config = NodeConfig {
        access_model: AccessModel::Roster,
        max_items: None,
        roster_groups_allowed: vec!["Friends".into(), "Fam, ily \u{1F600}".into()],
        title: Some("T\u{e9}st".into()),
        description: Some(String::new()),
        payload_type: Some("urn:a".into()),
        notify_config: true,
        ..NodeConfig::default()
    };
    pubsub.create_node(HOST, "alice", "urn:b", &NodeConfig::default()).await.unwrap();
    pubsub.create_node(HOST, "alice", "urn:a", &config).await.unwrap();
    let again = pubsub.create_node(HOST, "alice", "urn:a", &NodeConfig::default()).await;
    assert!(matches!(again, Err(StorageError::AlreadyExists)), "{again:?}");
    assert_eq!(pubsub.node(HOST, "alice", "urn:a").await.unwrap(), Some(config.clone()));
    let nodes = pubsub.nodes(HOST, "alice").await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["urn:a", "urn:b"]);
    assert_eq!(nodes[0].config, config);
    assert!(pubsub.nodes(HOST, "bob").await.unwrap().is_empty());

    let open = NodeConfig { access_model: AccessModel::Open, max_items: Some(2), ..config };
    pubsub.configure_node(HOST, "alice", "urn:a", &open).await.unwrap();
    assert_eq!(pubsub.node(HOST, "alice", "urn:a").await.unwrap(), Some(open.clone()));
    let missing = pubsub.configure_node(HOST, "alice", "urn:none", &open).await;
    assert!(matches!(missing, Err(StorageError::NotFound)), "{missing:?}");

    assert!(pubsub.delete_node(HOST, "alice", "urn:a").await.unwrap());
    assert!(!pubsub.delete_node(HOST, "alice", "urn:a").await.unwrap());
    assert_eq!(pubsub.node(HOST, "alice", "urn:a").await.unwrap(), None);
    // A node created again starts empty.
    pubsub.create_node(HOST, "alice", "urn:a", &open).await.unwrap();
    assert!(pubsub.items(HOST, "alice", "urn:a", None).await.unwrap().is_empty());
}

/// Conformance case: items come newest first; republishing an id replaces
/// it and makes it the newest; `max_items` trims the oldest (also when
/// lowered by a reconfiguration); payload bytes round-trip.
pub async fn pubsub_publish_order_replace_and_trim(storage: &dyn Storage) {
    let pubsub = storage.pubsub();
    let missing = pubsub.publish(HOST, "alice", "urn:none", &pubsub_item("1", 1), 1000).await;
    assert!(matches!(missing, Err(StorageError::NotFound)), "{missing:?}");

    let config = NodeConfig { max_items: Some(3), ..NodeConfig::default() };
    pubsub.create_node(HOST, "alice", "urn:n", &config).await.unwrap();
    for (n, id) in ["a", "b", "c"].iter().enumerate() {
        let removed = pubsub.publish(HOST, "alice", "urn:n", &pubsub_item(id, n as i64), 1000).await.unwrap();
        assert!(removed.is_empty());
    }
    assert_eq!(ids(&pubsub.items(HOST, "alice", "urn:n", None).await.unwrap()), ["c", "b", "a"]);
    // Republishing "a" replaces it and makes it newest; nothing is trimmed.
    let mut newer_a = pubsub_item("a", 10);
    newer_a.payload = b"<x xmlns='urn:test'>new</x>".to_vec();
    newer_a.publisher = None;
    assert!(pubsub.publish(HOST, "alice", "urn:n", &newer_a, 1000).await.unwrap().is_empty());
    let items = pubsub.items(HOST, "alice", "urn:n", None).await.unwrap();
    assert_eq!(ids(&items), ["a", "c", "b"]);
    assert_eq!(items[0], newer_a);
    assert_eq!(items[1], pubsub_item("c", 2));
    // A fourth distinct id trims the oldest.
    assert_eq!(pubsub.publish(HOST, "alice", "urn:n", &pubsub_item("d", 11), 1000).await.unwrap(), ["b"]);
    assert_eq!(ids(&pubsub.items(HOST, "alice", "urn:n", None).await.unwrap()), ["d", "a", "c"]);
    assert_eq!(ids(&pubsub.items(HOST, "alice", "urn:n", Some(2)).await.unwrap()), ["d", "a"]);
    assert_eq!(pubsub.item(HOST, "alice", "urn:n", "a").await.unwrap(), Some(newer_a));
    assert_eq!(pubsub.item(HOST, "alice", "urn:n", "b").await.unwrap(), None);
    // Lowering max_items trims at once.
    let one = NodeConfig { max_items: Some(1), ..config.clone() };
    pubsub.configure_node(HOST, "alice", "urn:n", &one).await.unwrap();
    assert_eq!(ids(&pubsub.items(HOST, "alice", "urn:n", None).await.unwrap()), ["d"]);
    // Unlimited ("max") keeps everything.
    let unlimited = NodeConfig { max_items: None, ..config };
    pubsub.create_node(HOST, "alice", "urn:many", &unlimited).await.unwrap();
    for n in 0..250 {
        pubsub.publish(HOST, "alice", "urn:many", &pubsub_item(&format!("i{n}"), n), 1000).await.unwrap();
    }
    let many = pubsub.items(HOST, "alice", "urn:many", None).await.unwrap();
    assert_eq!(many.len(), 250);
    assert_eq!(many[0].id, "i249");
    assert_eq!(many[249].id, "i0");
    // The service's ceiling bounds "max" and a higher max_items alike.
    let removed = pubsub.publish(HOST, "alice", "urn:many", &pubsub_item("last", 999), 100).await.unwrap();
    assert_eq!(removed.len(), 151);
    assert!(removed.iter().any(|id| id == "i0") && removed.iter().any(|id| id == "i150"));
    let kept = pubsub.items(HOST, "alice", "urn:many", None).await.unwrap();
    assert_eq!(kept.len(), 100);
    assert_eq!((kept[0].id.as_str(), kept[99].id.as_str()), ("last", "i151"));
}

/// Conformance case: retract and purge; nodes and items are kept apart
/// per host, user and node.
pub async fn pubsub_retract_purge_and_isolation(storage: &dyn Storage) {
    let pubsub = storage.pubsub();
    let config = NodeConfig { max_items: Some(10), ..NodeConfig::default() };
    for (host, user, node) in
        [(HOST, "alice", "n1"), (HOST, "alice", "n2"), (HOST, "bob", "n1"), (OTHER_HOST, "alice", "n1")]
    {
        pubsub.create_node(host, user, node, &config).await.unwrap();
        pubsub.publish(host, user, node, &pubsub_item("x", 1), 1000).await.unwrap();
        pubsub.publish(host, user, node, &pubsub_item("y", 2), 1000).await.unwrap();
    }
    assert!(pubsub.retract(HOST, "alice", "n1", "x").await.unwrap());
    assert!(!pubsub.retract(HOST, "alice", "n1", "x").await.unwrap());
    assert!(!pubsub.retract(HOST, "alice", "nope", "x").await.unwrap());
    assert_eq!(ids(&pubsub.items(HOST, "alice", "n1", None).await.unwrap()), ["y"]);
    assert_eq!(pubsub.purge(HOST, "alice", "n2").await.unwrap(), 2);
    assert!(pubsub.items(HOST, "alice", "n2", None).await.unwrap().is_empty());
    assert!(pubsub.node(HOST, "alice", "n2").await.unwrap().is_some(), "purge keeps the node");
    for (host, user, node) in [(HOST, "bob", "n1"), (OTHER_HOST, "alice", "n1")] {
        assert_eq!(ids(&pubsub.items(host, user, node, None).await.unwrap()), ["y", "x"], "{host} {user} {node}");
    }
    assert!(pubsub.items(HOST, "alice", "nope", None).await.unwrap().is_empty());
}

/// Conformance case: deleting an account removes its nodes; an import
/// writes nodes with their items (oldest first in, newest first out).
pub async fn pubsub_deleted_with_account_and_imported(storage: &dyn Storage) {
    let auth = storage.auth();
    let pubsub = storage.pubsub();
    auth.create_account(HOST, "alice", &[credential("SHA-1", 1)]).await.unwrap();
    pubsub.create_node(HOST, "alice", "urn:n", &NodeConfig::default()).await.unwrap();
    pubsub.publish(HOST, "alice", "urn:n", &pubsub_item("1", 1), 1000).await.unwrap();
    pubsub.create_node(HOST, "bob", "urn:n", &NodeConfig::default()).await.unwrap();
    auth.delete_account(HOST, "alice").await.unwrap();
    assert!(pubsub.nodes(HOST, "alice").await.unwrap().is_empty());
    assert_eq!(pubsub.nodes(HOST, "bob").await.unwrap().len(), 1, "another user's node stays");

    // Leftover node of a name without account: replaced by the import.
    pubsub.create_node(HOST, "carol", "urn:old", &NodeConfig::default()).await.unwrap();
    let bookmarks = ImportedNode {
        name: "urn:xmpp:bookmarks:1".into(),
        config: NodeConfig { access_model: AccessModel::Whitelist, max_items: None, ..NodeConfig::default() },
        items: vec![pubsub_item("room1", 1), pubsub_item("room2", 2)],
    };
    let nick = ImportedNode {
        name: "http://jabber.org/protocol/nick".into(),
        config: NodeConfig { access_model: AccessModel::Open, ..NodeConfig::default() },
        items: vec![pubsub_item("current", 3)],
    };
    let import = AccountImport {
        username: "carol".into(),
        pep: vec![bookmarks.clone(), nick.clone()],
        ..AccountImport::default()
    };
    assert_eq!(auth.import_account(HOST, &import).await.unwrap(), ImportOutcome::Created);
    let nodes = pubsub.nodes(HOST, "carol").await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["http://jabber.org/protocol/nick", "urn:xmpp:bookmarks:1"]);
    assert_eq!(nodes[1].config, bookmarks.config);
    assert_eq!(ids(&pubsub.items(HOST, "carol", "urn:xmpp:bookmarks:1", None).await.unwrap()), ["room2", "room1"]);
    assert_eq!(
        pubsub.item(HOST, "carol", "urn:xmpp:bookmarks:1", "room1").await.unwrap(),
        Some(pubsub_item("room1", 1))
    );
    // Publishing after the import makes the new item the newest.
    pubsub.publish(HOST, "carol", "urn:xmpp:bookmarks:1", &pubsub_item("room0", 0), 1000).await.unwrap();
    assert_eq!(pubsub.items(HOST, "carol", "urn:xmpp:bookmarks:1", Some(1)).await.unwrap()[0].id, "room0");
    // A second import changes nothing.
    assert_eq!(auth.import_account(HOST, &import).await.unwrap(), ImportOutcome::AlreadyExists);
    assert_eq!(pubsub.items(HOST, "carol", "urn:xmpp:bookmarks:1", None).await.unwrap().len(), 3);

    // An invalid node (an item id twice) refuses the whole account.
    let mut twice = nick;
    twice.items.push(pubsub_item("current", 4));
    let bad = AccountImport { username: "dave".into(), pep: vec![twice], ..AccountImport::default() };
    assert!(matches!(auth.import_account(HOST, &bad).await, Err(StorageError::InvalidInput(_))));
    assert!(!auth.account_exists(HOST, "dave").await.unwrap());
    assert!(pubsub.nodes(HOST, "dave").await.unwrap().is_empty());
}

/// Conformance case: invalid names are refused with `InvalidInput`.
pub async fn pubsub_invalid_input_is_rejected(storage: &dyn Storage) {
    let pubsub = storage.pubsub();
    let config = NodeConfig::default();
    let long = "n".repeat(1024);
    for node in ["", "a\0b", long.as_str()] {
        let result = pubsub.create_node(HOST, "alice", node, &config).await;
        assert!(matches!(result, Err(StorageError::InvalidInput(_))), "{node:?}: {result:?}");
    }
    let result = pubsub.create_node(HOST, "", "n", &config).await;
    assert!(matches!(result, Err(StorageError::InvalidInput(_))), "{result:?}");
    let bad_title = NodeConfig { title: Some("a\0".into()), ..NodeConfig::default() };
    let result = pubsub.create_node(HOST, "alice", "n", &bad_title).await;
    assert!(matches!(result, Err(StorageError::InvalidInput(_))), "{result:?}");
    pubsub.create_node(HOST, "alice", "n", &config).await.unwrap();
    for id in ["", "a\0", long.as_str()] {
        let result = pubsub.publish(HOST, "alice", "n", &pubsub_item(id, 1), 1000).await;
        assert!(matches!(result, Err(StorageError::InvalidInput(_))), "{id:?}: {result:?}");
    }
    assert!(pubsub.items(HOST, "alice", "n", None).await.unwrap().is_empty());
}

/// Conformance case: the changes since a roster version (RFC 6121 §2.6.3)
/// come in version order, each contact once in its latest state, removals
/// included; an unknown or future version gives `None`.
pub async fn roster_changes_since(storage: &dyn Storage) {
    let roster = storage.roster();
    assert_eq!(roster.changes_since(HOST, "alice", 1).await.unwrap(), None, "no roster yet");
    let a = roster_item("a@example.com", &["g"]);
    let b = roster_item("b@example.com", &[]);
    let c = roster_item("c@example.com", &[]);
    assert_eq!(roster.put_item(HOST, "alice", &a, None).await.unwrap(), 1);
    assert_eq!(roster.put_item(HOST, "alice", &b, None).await.unwrap(), 2);
    assert_eq!(roster.put_item(HOST, "alice", &c, None).await.unwrap(), 3);
    assert_eq!(roster.remove_item(HOST, "alice", "b@example.com").await.unwrap(), Some(4));
    let a2 = RosterItem { name: Some("A".into()), ..a.clone() };
    assert_eq!(roster.put_item(HOST, "alice", &a2, None).await.unwrap(), 5);

    let put = |version, item: &RosterItem| RosterChange::Put { version, item: item.clone() };
    let removed = |version, contact: &str| RosterChange::Removed { version, contact: contact.to_owned() };
    assert_eq!(
        roster.changes_since(HOST, "alice", 1).await.unwrap(),
        Some((5, vec![put(3, &c), removed(4, "b@example.com"), put(5, &a2)]))
    );
    assert_eq!(roster.changes_since(HOST, "alice", 4).await.unwrap(), Some((5, vec![put(5, &a2)])));
    assert_eq!(roster.changes_since(HOST, "alice", 5).await.unwrap(), Some((5, vec![])));
    assert_eq!(roster.changes_since(HOST, "alice", 6).await.unwrap(), None, "a future version");
    assert_eq!(roster.changes_since(HOST, "alice", 0).await.unwrap(), None, "version 0 means no roster");
    // Adding a removed contact again replaces its removal.
    assert_eq!(roster.put_item(HOST, "alice", &b, None).await.unwrap(), 6);
    assert_eq!(roster.changes_since(HOST, "alice", 3).await.unwrap(), Some((6, vec![put(5, &a2), put(6, &b)])));
    // After a bulk import the store may no longer tell (SQL backends keep
    // no history for it); if it does, it is exact.
    let d = roster_item("d@example.com", &[]);
    roster.import_rosters(HOST, &[("alice".to_owned(), vec![d.clone()])]).await.unwrap();
    if let Some(changes) = roster.changes_since(HOST, "alice", 6).await.unwrap() {
        assert_eq!(changes, (7, vec![put(7, &d)]));
    }
    // Deleting the account forgets the history.
    storage.auth().create_account(HOST, "alice", &[]).await.unwrap();
    storage.auth().delete_account(HOST, "alice").await.unwrap();
    assert_eq!(roster.changes_since(HOST, "alice", 1).await.unwrap(), None);
    // An imported account's roster starts at version 1 with its items.
    let import = AccountImport { username: "bob".into(), roster: vec![a.clone()], ..AccountImport::default() };
    storage.auth().import_account(HOST, &import).await.unwrap();
    assert_eq!(roster.changes_since(HOST, "bob", 1).await.unwrap(), Some((1, vec![])));
    assert_eq!(roster.put_item(HOST, "bob", &b, None).await.unwrap(), 2);
    assert_eq!(roster.changes_since(HOST, "bob", 1).await.unwrap(), Some((2, vec![put(2, &b)])));
}
