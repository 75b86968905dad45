//! Input checks shared by every backend, so all of them accept and refuse
//! exactly the same values.
//!
//! Callers are expected to pass names that are already normalized (RFC 7622
//! §3.2 / §3.3 PRECIS and IDNA handling happens in the JID layer); these checks
//! only guard the storage layer itself: nothing empty where a key is needed,
//! nothing longer than an XMPP address part may be, and no U+0000, which
//! PostgreSQL `TEXT` cannot hold.

use std::collections::HashSet;

use crate::{
    AccountImport, ImportedNode, ImportedRoster, NodeConfig, PendingIn, PubsubItem, RosterItem, StorageError,
    StoredCredential, scram_hash_output_len,
};

/// Longest host or username accepted, in bytes: RFC 7622 §3.2.1 and §3.3.1
/// limit a domainpart and a localpart to 1023 octets each.
pub const MAX_NAME_BYTES: usize = 1023;

/// Longest key-value store name or key accepted, in bytes.
pub const MAX_KV_NAME_BYTES: usize = 1023;

/// Longest contact address accepted, in bytes: RFC 7622 §3.1 allows up to
/// 1023 octets for each of the localpart, domainpart and resourcepart, so a
/// full JID is at most 1023 × 3 + 2 separators = 3071 octets.
pub const MAX_JID_BYTES: usize = 3071;

/// Longest roster item handle (`name` attribute, RFC 6121 §2.1.2.4)
/// accepted, in bytes. RFC 6121 leaves the limit to the server (§2.3.3
/// lets it refuse an over-long handle with `<not-acceptable/>`).
pub const MAX_ROSTER_NAME_BYTES: usize = 1023;

/// Longest roster group name (`<group/>`, RFC 6121 §2.1.2.2) accepted, in
/// bytes; the server-chosen limit that §2.3.3 allows.
pub const MAX_GROUP_BYTES: usize = 1023;

/// Longest `<status/>` text of a pending subscription request accepted, in
/// bytes. Callers truncate longer texts before storing them.
pub const MAX_STATUS_BYTES: usize = 4096;

/// Checks a host (domainpart): non-empty, at most [`MAX_NAME_BYTES`], no NUL.
pub fn host(host: &str) -> Result<(), StorageError> {
    text("host", host, MAX_NAME_BYTES, false)
}

/// Checks an account username (localpart): non-empty, at most
/// [`MAX_NAME_BYTES`], no NUL.
pub fn username(user: &str) -> Result<(), StorageError> {
    text("username", user, MAX_NAME_BYTES, false)
}

/// Checks the owner of a key-value entry: like [`username`], except that the
/// empty string is allowed and means "host-wide data".
pub fn kv_owner(user: &str) -> Result<(), StorageError> {
    text("username", user, MAX_NAME_BYTES, true)
}

/// Checks a key-value store name: non-empty, at most [`MAX_KV_NAME_BYTES`],
/// no NUL.
pub fn kv_store(store: &str) -> Result<(), StorageError> {
    text("store", store, MAX_KV_NAME_BYTES, false)
}

/// Checks a key-value key: may be empty (a store holding one value), at most
/// [`MAX_KV_NAME_BYTES`], no NUL.
pub fn kv_key(key: &str) -> Result<(), StorageError> {
    text("key", key, MAX_KV_NAME_BYTES, true)
}

/// Checks one SCRAM credential (RFC 5802 §3): a known hash name, a non-empty
/// salt, at least one iteration, and `StoredKey` / `ServerKey` exactly as long
/// as the hash output.
pub fn credential(credential: &StoredCredential) -> Result<(), StorageError> {
    let Some(output_len) = scram_hash_output_len(&credential.mechanism_hash) else {
        return Err(StorageError::invalid_input(format!(
            "unknown SCRAM hash {:?} (expected SHA-1, SHA-256 or SHA-512)",
            credential.mechanism_hash
        )));
    };
    if credential.salt.is_empty() {
        return Err(StorageError::invalid_input("SCRAM salt is empty"));
    }
    if credential.iterations == 0 {
        return Err(StorageError::invalid_input("SCRAM iteration count is zero"));
    }
    if credential.stored_key.len() != output_len || credential.server_key.len() != output_len {
        return Err(StorageError::invalid_input(format!(
            "{} StoredKey and ServerKey must be {output_len} bytes",
            credential.mechanism_hash
        )));
    }
    Ok(())
}

/// Checks a credential set: each entry valid, at most one per hash.
pub fn credentials(credentials: &[StoredCredential]) -> Result<(), StorageError> {
    let mut seen = HashSet::with_capacity(credentials.len());
    for entry in credentials {
        credential(entry)?;
        if !seen.insert(entry.mechanism_hash.as_str()) {
            return Err(StorageError::invalid_input(format!("two credentials for {}", entry.mechanism_hash)));
        }
    }
    Ok(())
}

/// Checks a contact's address (a roster item, a pending request): non-empty,
/// at most [`MAX_JID_BYTES`], no NUL.
pub fn contact(contact: &str) -> Result<(), StorageError> {
    text("contact", contact, MAX_JID_BYTES, false)
}

/// Checks a roster item (RFC 6121 §2.1.2): a valid [`contact`], a handle of
/// at most [`MAX_ROSTER_NAME_BYTES`] without NUL (it may be empty), and
/// groups that are each non-empty, at most [`MAX_GROUP_BYTES`], without NUL
/// and without duplicates (RFC 6121 §2.3.3 makes an empty or repeated group
/// an error).
pub fn roster_item(item: &RosterItem) -> Result<(), StorageError> {
    contact(&item.contact)?;
    if let Some(name) = &item.name {
        text("roster item name", name, MAX_ROSTER_NAME_BYTES, true)?;
    }
    let mut seen = HashSet::with_capacity(item.groups.len());
    for group in &item.groups {
        text("group", group, MAX_GROUP_BYTES, false)?;
        if !seen.insert(group.as_str()) {
            return Err(StorageError::invalid_input(format!("group {group:?} given twice")));
        }
    }
    Ok(())
}

/// Checks a bulk roster import
/// ([`RosterStore::import_rosters`](crate::RosterStore::import_rosters)):
/// the [`host`], every [`username`] and [`roster_item`], no user listed
/// twice and no contact twice in one user's list.
pub fn roster_import(host_name: &str, rosters: &[ImportedRoster]) -> Result<(), StorageError> {
    host(host_name)?;
    let mut users = HashSet::with_capacity(rosters.len());
    for (user, items) in rosters {
        username(user)?;
        if !users.insert(user.as_str()) {
            return Err(StorageError::invalid_input(format!("roster of {user:?} given twice")));
        }
        let mut contacts = HashSet::with_capacity(items.len());
        for item in items {
            roster_item(item)?;
            if !contacts.insert(item.contact.as_str()) {
                return Err(StorageError::invalid_input(format!(
                    "contact {:?} given twice in the roster of {user:?}",
                    item.contact
                )));
            }
        }
    }
    Ok(())
}

/// Longest stored subscription request stanza (RFC 6121 §3.1.3 keeps the
/// whole stanza; §11 warns about storing unbounded data for strangers).
pub const MAX_PENDING_STANZA_BYTES: usize = 16 * 1024;

/// Checks the stored bytes of a pending subscription request.
pub fn pending_stanza(stanza: &[u8]) -> Result<(), StorageError> {
    if stanza.len() > MAX_PENDING_STANZA_BYTES {
        return Err(StorageError::invalid_input(format!(
            "subscription request is longer than {MAX_PENDING_STANZA_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Checks the `<status/>` text of a pending subscription request: at most
/// [`MAX_STATUS_BYTES`], no NUL (it may be empty).
pub fn status(status: &str) -> Result<(), StorageError> {
    text("status", status, MAX_STATUS_BYTES, true)
}

/// Checks a pending subscription request: its [`contact`], its [`status`]
/// and its stored stanza ([`pending_stanza`]).
pub fn pending(pending: &PendingIn) -> Result<(), StorageError> {
    contact(&pending.contact)?;
    if let Some(text) = &pending.status {
        status(text)?;
    }
    if let Some(stanza) = &pending.stanza {
        pending_stanza(stanza)?;
    }
    Ok(())
}

/// Checks an account import
/// ([`AuthStore::import_account`](crate::AuthStore::import_account)): the
/// [`host`], the [`username`], the [`credentials`], every [`roster_item`]
/// (no contact twice), every [`pending`] request (no contact twice) and
/// every key-value entry ([`kv_store`], [`kv_key`], no (store, key) twice)
/// and every PEP node ([`imported_node`], no name twice).
pub fn account_import(host_name: &str, account: &AccountImport) -> Result<(), StorageError> {
    host(host_name)?;
    username(&account.username)?;
    credentials(&account.credentials)?;
    let mut contacts = HashSet::with_capacity(account.roster.len());
    for item in &account.roster {
        roster_item(item)?;
        if !contacts.insert(item.contact.as_str()) {
            return Err(StorageError::invalid_input(format!("roster contact {:?} given twice", item.contact)));
        }
    }
    let mut requesters = HashSet::with_capacity(account.pending_in.len());
    for request in &account.pending_in {
        pending(request)?;
        if !requesters.insert(request.contact.as_str()) {
            return Err(StorageError::invalid_input(format!(
                "subscription request of {:?} given twice",
                request.contact
            )));
        }
    }
    let mut keys = HashSet::with_capacity(account.kv.len());
    for (store, key, _) in &account.kv {
        kv_store(store)?;
        kv_key(key)?;
        if !keys.insert((store.as_str(), key.as_str())) {
            return Err(StorageError::invalid_input(format!("key-value entry {store:?}/{key:?} given twice")));
        }
    }
    let mut nodes = HashSet::with_capacity(account.pep.len());
    for node in &account.pep {
        imported_node(node)?;
        if !nodes.insert(node.name.as_str()) {
            return Err(StorageError::invalid_input(format!("PEP node {:?} given twice", node.name)));
        }
    }
    Ok(())
}

/// Longest pubsub node name or item id accepted, in bytes (XEP-0060 sets
/// no limit; PEP node names are namespace URIs).
pub const MAX_PUBSUB_NAME_BYTES: usize = 1023;

/// Longest pubsub configuration text (title, description, payload type,
/// roster group) accepted, in bytes.
pub const MAX_PUBSUB_TEXT_BYTES: usize = 1023;

/// Checks a pubsub node name: non-empty, at most [`MAX_PUBSUB_NAME_BYTES`],
/// no NUL.
pub fn pubsub_node(node: &str) -> Result<(), StorageError> {
    text("node", node, MAX_PUBSUB_NAME_BYTES, false)
}

/// Checks a node configuration's texts: each at most
/// [`MAX_PUBSUB_TEXT_BYTES`], no NUL, roster groups non-empty.
pub fn node_config(config: &NodeConfig) -> Result<(), StorageError> {
    for value in [&config.title, &config.description, &config.payload_type].into_iter().flatten() {
        text("node option", value, MAX_PUBSUB_TEXT_BYTES, true)?;
    }
    for group in &config.roster_groups_allowed {
        text("roster group", group, MAX_GROUP_BYTES, false)?;
    }
    Ok(())
}

/// Checks a pubsub item: an id that is non-empty, at most
/// [`MAX_PUBSUB_NAME_BYTES`] and without NUL, and a publisher that is a
/// valid [`contact`] when present.
pub fn pubsub_item(item: &PubsubItem) -> Result<(), StorageError> {
    text("item id", &item.id, MAX_PUBSUB_NAME_BYTES, false)?;
    if let Some(publisher) = &item.publisher {
        contact(publisher)?;
    }
    Ok(())
}

/// Checks an imported node: its name, configuration and items (no id
/// twice).
pub fn imported_node(node: &ImportedNode) -> Result<(), StorageError> {
    pubsub_node(&node.name)?;
    node_config(&node.config)?;
    let mut ids = HashSet::with_capacity(node.items.len());
    for item in &node.items {
        pubsub_item(item)?;
        if !ids.insert(item.id.as_str()) {
            return Err(StorageError::invalid_input(format!("item {:?} given twice in node {:?}", item.id, node.name)));
        }
    }
    Ok(())
}

fn text(what: &str, value: &str, max_bytes: usize, allow_empty: bool) -> Result<(), StorageError> {
    if value.is_empty() && !allow_empty {
        return Err(StorageError::invalid_input(format!("{what} is empty")));
    }
    if value.len() > max_bytes {
        return Err(StorageError::invalid_input(format!("{what} is longer than {max_bytes} bytes")));
    }
    if value.contains('\0') {
        return Err(StorageError::invalid_input(format!("{what} contains NUL")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_credential() -> StoredCredential {
        StoredCredential {
            mechanism_hash: "SHA-256".into(),
            salt: vec![1, 2, 3],
            iterations: 4096,
            stored_key: vec![0; 32],
            server_key: vec![0; 32],
        }
    }

    #[test]
    fn names() {
        assert!(host("example.org").is_ok());
        assert!(host("").is_err());
        assert!(username("").is_err());
        assert!(kv_owner("").is_ok());
        assert!(kv_key("").is_ok());
        assert!(kv_store("").is_err());
        assert!(username("a\0b").is_err());
        assert!(username(&"a".repeat(1023)).is_ok());
        assert!(username(&"a".repeat(1024)).is_err());
        // 1023 bytes counted in UTF-8, not characters: 341 × 3 bytes = 1023.
        assert!(username(&"€".repeat(341)).is_ok());
        assert!(username(&"€".repeat(342)).is_err());
    }

    #[test]
    fn roster_checks() {
        let item = |contact: &str, groups: &[&str]| RosterItem {
            contact: contact.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..RosterItem::default()
        };
        assert!(roster_item(&item("juliet@example.com", &["Friends", "a, b", "日本"])).is_ok());
        assert!(roster_item(&item("", &[])).is_err());
        assert!(roster_item(&item("a\0b@example.com", &[])).is_err());
        assert!(roster_item(&item(&"j".repeat(3071), &[])).is_ok());
        assert!(roster_item(&item(&"j".repeat(3072), &[])).is_err());
        assert!(roster_item(&item("j@x", &[""])).is_err());
        assert!(roster_item(&item("j@x", &["g", "g"])).is_err());
        assert!(roster_item(&item("j@x", &["g\0"])).is_err());
        assert!(roster_item(&item("j@x", &[&"g".repeat(1023)])).is_ok());
        assert!(roster_item(&item("j@x", &[&"g".repeat(1024)])).is_err());
        let named = |name: &str| RosterItem { name: Some(name.to_owned()), ..item("j@x", &[]) };
        assert!(roster_item(&named("")).is_ok());
        assert!(roster_item(&named("Juliet")).is_ok());
        assert!(roster_item(&named("Jul\0iet")).is_err());
        assert!(roster_item(&named(&"n".repeat(1024))).is_err());
        assert!(status("").is_ok());
        assert!(status("hi\0").is_err());
        assert!(status(&"s".repeat(4096)).is_ok());
        assert!(status(&"s".repeat(4097)).is_err());
    }

    #[test]
    fn credential_checks() {
        assert!(credential(&sha256_credential()).is_ok());

        let mut wrong_len = sha256_credential();
        wrong_len.server_key.pop();
        assert!(credential(&wrong_len).is_err());

        let mut unknown = sha256_credential();
        unknown.mechanism_hash = "sha-256".into();
        assert!(credential(&unknown).is_err());

        let mut no_salt = sha256_credential();
        no_salt.salt.clear();
        assert!(credential(&no_salt).is_err());

        let mut zero = sha256_credential();
        zero.iterations = 0;
        assert!(credential(&zero).is_err());

        let sha1 = StoredCredential {
            mechanism_hash: "SHA-1".into(),
            stored_key: vec![0; 20],
            server_key: vec![0; 20],
            ..sha256_credential()
        };
        assert!(credentials(&[sha256_credential(), sha1]).is_ok());
        assert!(credentials(&[sha256_credential(), sha256_credential()]).is_err());
        assert!(credentials(&[]).is_ok());
    }
}
