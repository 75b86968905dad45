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

use async_trait::async_trait;

use crate::{Storage, StorageError, StoredCredential, scram_hash_output_len};

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
