//! An in-memory [`Storage`] backend.
//!
//! Nothing is persisted: it is meant for unit tests of crates that need a
//! storage (SASL, c2s, modules) without a database, and it is the reference
//! implementation the conformance suite is checked against.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::{
    AccountImport, AuthStore, ImportOutcome, ImportedRoster, KeyValueStore, NewAccount, NodeConfig, OfflineMessage,
    OfflineStore, PendingIn, PubsubItem, PubsubNode, PubsubStore, Roster, RosterChange, RosterItem, RosterStore,
    Storage, StorageError, StoredCredential, validate,
};

/// (host, user) — the address of an account.
type AccountKey = (String, String);
/// (host, user, store) — the address of one key-value store.
type StoreKey = (String, String, String);
/// (host, user, node) — the address of one PEP node.
type NodeKey = (String, String, String);

#[derive(Default)]
struct State {
    closed: bool,
    /// Credentials by hash name, per account.
    accounts: BTreeMap<AccountKey, BTreeMap<String, StoredCredential>>,
    kv: BTreeMap<StoreKey, BTreeMap<String, Vec<u8>>>,
    /// Rosters per account; an entry exists once the roster was written.
    rosters: BTreeMap<AccountKey, MemoryRoster>,
    /// Pending-in requests per account, by contact.
    pending_in: BTreeMap<AccountKey, BTreeMap<String, PendingIn>>,
    /// Offline messages per account, by id.
    offline: BTreeMap<AccountKey, BTreeMap<i64, OfflineMessage>>,
    /// The last offline message id handed out (ids are global, so they also
    /// increase per user, and are never reused).
    last_offline_id: i64,
    /// PEP nodes.
    nodes: BTreeMap<NodeKey, MemoryNode>,
}

struct MemoryNode {
    config: NodeConfig,
    /// Oldest first.
    items: Vec<PubsubItem>,
}

impl MemoryNode {
    /// Drops the oldest items beyond `max_items` and `ceiling`; returns
    /// their ids.
    fn trim(&mut self, ceiling: u32) -> Vec<String> {
        let keep = self.config.max_items.map_or(ceiling, |max| max.min(ceiling)) as usize;
        let excess = self.items.len().saturating_sub(keep);
        self.items.drain(..excess).map(|item| item.id).collect()
    }
}

#[derive(Default)]
struct MemoryRoster {
    version: u64,
    items: BTreeMap<String, RosterItem>,
    /// The version of each item's last write.
    written: BTreeMap<String, u64>,
    /// The version at which each removed contact went.
    removed: BTreeMap<String, u64>,
}

impl MemoryRoster {
    fn write(&mut self, item: &RosterItem, version: u64) {
        self.items.insert(item.contact.clone(), item.clone());
        self.written.insert(item.contact.clone(), version);
        self.removed.remove(&item.contact);
    }
}

/// An in-memory storage; clones share the same data.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    state: Arc<Mutex<State>>,
}

impl MemoryStorage {
    /// An empty storage.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StorageError> {
        // A panic while holding the lock cannot leave a half-applied change:
        // every method validates first and mutates last.
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return Err(StorageError::Backend("storage is closed".into()));
        }
        Ok(state)
    }
}

fn account_key(host: &str, user: &str) -> AccountKey {
    (host.to_owned(), user.to_owned())
}

fn credential_map(credentials: &[StoredCredential]) -> BTreeMap<String, StoredCredential> {
    credentials.iter().map(|c| (c.mechanism_hash.clone(), c.clone())).collect()
}

#[async_trait]
impl AuthStore for MemoryStorage {
    async fn create_account(
        &self,
        host: &str,
        user: &str,
        credentials: &[StoredCredential],
    ) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        validate::credentials(credentials)?;
        let mut state = self.lock()?;
        let key = account_key(host, user);
        if state.accounts.contains_key(&key) {
            return Err(StorageError::AlreadyExists);
        }
        state.accounts.insert(key, credential_map(credentials));
        Ok(())
    }

    async fn create_accounts_bulk(&self, host: &str, accounts: &[NewAccount]) -> Result<(), StorageError> {
        validate::host(host)?;
        for (user, credentials) in accounts {
            validate::username(user)?;
            validate::credentials(credentials)?;
        }
        let mut state = self.lock()?;
        let mut seen = HashSet::with_capacity(accounts.len());
        for (user, _) in accounts {
            if !seen.insert(user.as_str()) || state.accounts.contains_key(&account_key(host, user)) {
                return Err(StorageError::AlreadyExists);
            }
        }
        for (user, credentials) in accounts {
            state.accounts.insert(account_key(host, user), credential_map(credentials));
        }
        Ok(())
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
        let mut state = self.lock()?;
        let entry = state.accounts.get_mut(&account_key(host, user)).ok_or(StorageError::NotFound)?;
        *entry = credential_map(credentials);
        Ok(())
    }

    async fn delete_account(&self, host: &str, user: &str) -> Result<(), StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        let mut state = self.lock()?;
        if state.accounts.remove(&account_key(host, user)).is_none() {
            return Err(StorageError::NotFound);
        }
        state.kv.retain(|(h, u, _), _| !(h.as_str() == host && u.as_str() == user));
        let key = account_key(host, user);
        state.rosters.remove(&key);
        state.pending_in.remove(&key);
        state.offline.remove(&key);
        state.nodes.retain(|(h, u, _), _| !(h.as_str() == host && u.as_str() == user));
        Ok(())
    }

    async fn import_accounts(
        &self,
        host: &str,
        accounts: &[AccountImport],
    ) -> Result<Vec<Result<ImportOutcome, StorageError>>, StorageError> {
        validate::host(host)?;
        let mut state = self.lock()?;
        Ok(accounts
            .iter()
            .map(|account| {
                validate::account_import(host, account)?;
                import_one(&mut state, host, account)
            })
            .collect())
    }

    async fn account_exists(&self, host: &str, user: &str) -> Result<bool, StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        Ok(self.lock()?.accounts.contains_key(&account_key(host, user)))
    }

    async fn get_credential(
        &self,
        host: &str,
        user: &str,
        mechanism_hash: &str,
    ) -> Result<Option<StoredCredential>, StorageError> {
        validate::host(host)?;
        validate::username(user)?;
        Ok(self
            .lock()?
            .accounts
            .get(&account_key(host, user))
            .and_then(|credentials| credentials.get(mechanism_hash))
            .cloned())
    }

    async fn list_accounts(&self, host: &str) -> Result<Vec<String>, StorageError> {
        validate::host(host)?;
        // BTreeMap order on (host, user) is byte order of the username.
        Ok(self.lock()?.accounts.keys().filter(|(h, _)| h == host).map(|(_, user)| user.clone()).collect())
    }

    async fn count_accounts(&self, host: &str) -> Result<u64, StorageError> {
        validate::host(host)?;
        let count = self.lock()?.accounts.keys().filter(|(h, _)| h == host).count();
        Ok(count as u64)
    }
}

fn check_store(host: &str, user: &str, store: &str) -> Result<StoreKey, StorageError> {
    validate::host(host)?;
    validate::kv_owner(user)?;
    validate::kv_store(store)?;
    Ok((host.to_owned(), user.to_owned(), store.to_owned()))
}

#[async_trait]
impl KeyValueStore for MemoryStorage {
    async fn get(&self, host: &str, user: &str, store: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let store_key = check_store(host, user, store)?;
        validate::kv_key(key)?;
        Ok(self.lock()?.kv.get(&store_key).and_then(|entries| entries.get(key)).cloned())
    }

    async fn set(&self, host: &str, user: &str, store: &str, key: &str, value: &[u8]) -> Result<(), StorageError> {
        let store_key = check_store(host, user, store)?;
        validate::kv_key(key)?;
        self.lock()?.kv.entry(store_key).or_default().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, host: &str, user: &str, store: &str, key: &str) -> Result<bool, StorageError> {
        let store_key = check_store(host, user, store)?;
        validate::kv_key(key)?;
        let mut state = self.lock()?;
        let Some(entries) = state.kv.get_mut(&store_key) else {
            return Ok(false);
        };
        let existed = entries.remove(key).is_some();
        if entries.is_empty() {
            state.kv.remove(&store_key);
        }
        Ok(existed)
    }

    async fn list_keys(&self, host: &str, user: &str, store: &str) -> Result<Vec<String>, StorageError> {
        let store_key = check_store(host, user, store)?;
        Ok(self.lock()?.kv.get(&store_key).map(|entries| entries.keys().cloned().collect()).unwrap_or_default())
    }

    async fn clear_store(&self, host: &str, user: &str, store: &str) -> Result<u64, StorageError> {
        let store_key = check_store(host, user, store)?;
        let removed = self.lock()?.kv.remove(&store_key);
        Ok(removed.map_or(0, |entries| entries.len() as u64))
    }
}

fn check_account(host: &str, user: &str) -> Result<AccountKey, StorageError> {
    validate::host(host)?;
    validate::username(user)?;
    Ok(account_key(host, user))
}

#[async_trait]
impl RosterStore for MemoryStorage {
    async fn roster(&self, host: &str, user: &str) -> Result<Roster, StorageError> {
        let key = check_account(host, user)?;
        let state = self.lock()?;
        Ok(state.rosters.get(&key).map_or_else(Roster::default, |roster| Roster {
            version: roster.version,
            // BTreeMap order is byte order of the contact.
            items: roster.items.values().cloned().collect(),
        }))
    }

    async fn item(&self, host: &str, user: &str, contact: &str) -> Result<Option<RosterItem>, StorageError> {
        let key = check_account(host, user)?;
        validate::contact(contact)?;
        Ok(self.lock()?.rosters.get(&key).and_then(|roster| roster.items.get(contact)).cloned())
    }

    async fn put_item(
        &self,
        host: &str,
        user: &str,
        item: &RosterItem,
        max_items: Option<u64>,
    ) -> Result<u64, StorageError> {
        let key = check_account(host, user)?;
        validate::roster_item(item)?;
        let mut state = self.lock()?;
        let roster = state.rosters.entry(key).or_default();
        if let Some(max) = max_items
            && !roster.items.contains_key(&item.contact)
            && roster.items.len() as u64 >= max
        {
            return Err(StorageError::LimitExceeded);
        }
        roster.version += 1;
        let version = roster.version;
        roster.write(item, version);
        Ok(version)
    }

    async fn remove_item(&self, host: &str, user: &str, contact: &str) -> Result<Option<u64>, StorageError> {
        let key = check_account(host, user)?;
        validate::contact(contact)?;
        let mut state = self.lock()?;
        let Some(roster) = state.rosters.get_mut(&key) else {
            return Ok(None);
        };
        if roster.items.remove(contact).is_none() {
            return Ok(None);
        }
        roster.version += 1;
        roster.written.remove(contact);
        roster.removed.insert(contact.to_owned(), roster.version);
        Ok(Some(roster.version))
    }

    async fn changes_since(
        &self,
        host: &str,
        user: &str,
        since: u64,
    ) -> Result<Option<(u64, Vec<RosterChange>)>, StorageError> {
        let key = check_account(host, user)?;
        let state = self.lock()?;
        let Some(roster) = state.rosters.get(&key) else { return Ok(None) };
        if since == 0 || since > roster.version {
            return Ok(None);
        }
        let mut changes: Vec<RosterChange> =
            roster
                .written
                .iter()
                .filter(|(_, version)| **version > since)
                .filter_map(|(contact, version)| {
                    roster.items.get(contact).map(|item| RosterChange::Put { version: *version, item: item.clone() })
                })
                .chain(
                    roster.removed.iter().filter(|(_, version)| **version > since).map(|(contact, version)| {
                        RosterChange::Removed { version: *version, contact: contact.clone() }
                    }),
                )
                .collect();
        changes.sort_by_key(RosterChange::version);
        Ok(Some((roster.version, changes)))
    }

    async fn import_rosters(&self, host: &str, rosters: &[ImportedRoster]) -> Result<(), StorageError> {
        // Everything is checked before the first change, so a refused
        // import leaves the state as it was.
        validate::roster_import(host, rosters)?;
        let mut state = self.lock()?;
        for (user, items) in rosters.iter().filter(|(_, items)| !items.is_empty()) {
            let roster = state.rosters.entry(account_key(host, user)).or_default();
            roster.version += 1;
            let version = roster.version;
            for item in items {
                roster.write(item, version);
            }
        }
        Ok(())
    }

    async fn add_pending_in(&self, host: &str, user: &str, pending: &PendingIn) -> Result<(), StorageError> {
        let key = check_account(host, user)?;
        validate::contact(&pending.contact)?;
        if let Some(status) = &pending.status {
            validate::status(status)?;
        }
        if let Some(stanza) = &pending.stanza {
            validate::pending_stanza(stanza)?;
        }
        self.lock()?.pending_in.entry(key).or_default().insert(pending.contact.clone(), pending.clone());
        Ok(())
    }

    async fn remove_pending_in(&self, host: &str, user: &str, contact: &str) -> Result<bool, StorageError> {
        let key = check_account(host, user)?;
        validate::contact(contact)?;
        let mut state = self.lock()?;
        let Some(requests) = state.pending_in.get_mut(&key) else {
            return Ok(false);
        };
        let existed = requests.remove(contact).is_some();
        if requests.is_empty() {
            state.pending_in.remove(&key);
        }
        Ok(existed)
    }

    async fn pending_in(&self, host: &str, user: &str) -> Result<Vec<PendingIn>, StorageError> {
        let key = check_account(host, user)?;
        Ok(self.lock()?.pending_in.get(&key).map(|requests| requests.values().cloned().collect()).unwrap_or_default())
    }
}

#[async_trait]
impl OfflineStore for MemoryStorage {
    async fn push(
        &self,
        host: &str,
        user: &str,
        stamp_ms: i64,
        stanza: &[u8],
        max_messages: u64,
    ) -> Result<i64, StorageError> {
        let key = check_account(host, user)?;
        let mut state = self.lock()?;
        let stored = state.offline.get(&key).map_or(0, BTreeMap::len);
        if stored as u64 >= max_messages {
            return Err(StorageError::LimitExceeded);
        }
        let id = state
            .last_offline_id
            .checked_add(1)
            .ok_or_else(|| StorageError::Backend("offline message ids exhausted".into()))?;
        state.last_offline_id = id;
        state.offline.entry(key).or_default().insert(id, OfflineMessage { id, stamp_ms, stanza: stanza.to_vec() });
        Ok(id)
    }

    async fn peek(&self, host: &str, user: &str, limit: u32) -> Result<Vec<OfflineMessage>, StorageError> {
        let key = check_account(host, user)?;
        Ok(self
            .lock()?
            .offline
            .get(&key)
            .map(|messages| messages.values().take(limit as usize).cloned().collect())
            .unwrap_or_default())
    }

    async fn remove_through(&self, host: &str, user: &str, through_id: i64) -> Result<u64, StorageError> {
        let key = check_account(host, user)?;
        let mut state = self.lock()?;
        let Some(messages) = state.offline.get_mut(&key) else {
            return Ok(0);
        };
        let before = messages.len();
        messages.retain(|id, _| *id > through_id);
        let removed = before - messages.len();
        if messages.is_empty() {
            state.offline.remove(&key);
        }
        Ok(removed as u64)
    }

    async fn count(&self, host: &str, user: &str) -> Result<u64, StorageError> {
        let key = check_account(host, user)?;
        Ok(self.lock()?.offline.get(&key).map_or(0, |messages| messages.len() as u64))
    }
}

fn check_node(host: &str, user: &str, node: &str) -> Result<NodeKey, StorageError> {
    validate::host(host)?;
    validate::username(user)?;
    validate::pubsub_node(node)?;
    Ok((host.to_owned(), user.to_owned(), node.to_owned()))
}

#[async_trait]
impl PubsubStore for MemoryStorage {
    async fn node(&self, host: &str, user: &str, node: &str) -> Result<Option<NodeConfig>, StorageError> {
        let key = check_node(host, user, node)?;
        Ok(self.lock()?.nodes.get(&key).map(|stored| stored.config.clone()))
    }

    async fn nodes(&self, host: &str, user: &str) -> Result<Vec<PubsubNode>, StorageError> {
        let key = check_account(host, user)?;
        let state = self.lock()?;
        Ok(state
            .nodes
            .iter()
            .filter(|((h, u, _), _)| *h == key.0 && *u == key.1)
            .map(|((_, _, name), stored)| PubsubNode { name: name.clone(), config: stored.config.clone() })
            .collect())
    }

    async fn create_node(&self, host: &str, user: &str, node: &str, config: &NodeConfig) -> Result<(), StorageError> {
        let key = check_node(host, user, node)?;
        validate::node_config(config)?;
        let mut state = self.lock()?;
        if state.nodes.contains_key(&key) {
            return Err(StorageError::AlreadyExists);
        }
        state.nodes.insert(key, MemoryNode { config: config.clone(), items: Vec::new() });
        Ok(())
    }

    async fn configure_node(
        &self,
        host: &str,
        user: &str,
        node: &str,
        config: &NodeConfig,
    ) -> Result<(), StorageError> {
        let key = check_node(host, user, node)?;
        validate::node_config(config)?;
        let mut state = self.lock()?;
        let stored = state.nodes.get_mut(&key).ok_or(StorageError::NotFound)?;
        stored.config = config.clone();
        stored.trim(u32::MAX);
        Ok(())
    }

    async fn delete_node(&self, host: &str, user: &str, node: &str) -> Result<bool, StorageError> {
        let key = check_node(host, user, node)?;
        Ok(self.lock()?.nodes.remove(&key).is_some())
    }

    async fn publish(
        &self,
        host: &str,
        user: &str,
        node: &str,
        item: &PubsubItem,
        ceiling: u32,
    ) -> Result<Vec<String>, StorageError> {
        let key = check_node(host, user, node)?;
        validate::pubsub_item(item)?;
        let mut state = self.lock()?;
        let stored = state.nodes.get_mut(&key).ok_or(StorageError::NotFound)?;
        stored.items.retain(|existing| existing.id != item.id);
        stored.items.push(item.clone());
        Ok(stored.trim(ceiling))
    }

    async fn items(
        &self,
        host: &str,
        user: &str,
        node: &str,
        limit: Option<u32>,
    ) -> Result<Vec<PubsubItem>, StorageError> {
        let key = check_node(host, user, node)?;
        let state = self.lock()?;
        let Some(stored) = state.nodes.get(&key) else { return Ok(Vec::new()) };
        let limit = limit.map_or(usize::MAX, |limit| limit as usize);
        Ok(stored.items.iter().rev().take(limit).cloned().collect())
    }

    async fn item(&self, host: &str, user: &str, node: &str, id: &str) -> Result<Option<PubsubItem>, StorageError> {
        let key = check_node(host, user, node)?;
        let state = self.lock()?;
        Ok(state.nodes.get(&key).and_then(|stored| stored.items.iter().find(|item| item.id == id)).cloned())
    }

    async fn retract(&self, host: &str, user: &str, node: &str, id: &str) -> Result<bool, StorageError> {
        let key = check_node(host, user, node)?;
        let mut state = self.lock()?;
        let Some(stored) = state.nodes.get_mut(&key) else { return Ok(false) };
        let before = stored.items.len();
        stored.items.retain(|item| item.id != id);
        Ok(stored.items.len() != before)
    }

    async fn purge(&self, host: &str, user: &str, node: &str) -> Result<u64, StorageError> {
        let key = check_node(host, user, node)?;
        let mut state = self.lock()?;
        let Some(stored) = state.nodes.get_mut(&key) else { return Ok(0) };
        let removed = stored.items.len() as u64;
        stored.items.clear();
        Ok(removed)
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    fn auth(&self) -> Arc<dyn AuthStore> {
        Arc::new(self.clone())
    }

    fn kv(&self) -> Arc<dyn KeyValueStore> {
        Arc::new(self.clone())
    }

    fn roster(&self) -> Arc<dyn RosterStore> {
        Arc::new(self.clone())
    }

    fn offline(&self) -> Arc<dyn OfflineStore> {
        Arc::new(self.clone())
    }

    fn pubsub(&self) -> Arc<dyn PubsubStore> {
        Arc::new(self.clone())
    }

    async fn migrate(&self) -> Result<(), StorageError> {
        self.lock().map(drop)
    }

    async fn health_check(&self) -> Result<(), StorageError> {
        self.lock().map(drop)
    }

    async fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
    }
}

/// Writes one validated account of an import into `state`, all of it or
/// nothing.
fn import_one(state: &mut State, host: &str, account: &AccountImport) -> Result<ImportOutcome, StorageError> {
    let key = account_key(host, &account.username);
    if state.accounts.contains_key(&key) {
        return Ok(ImportOutcome::AlreadyExists);
    }
    // Offline ids first: the only step that can fail, before any change.
    let first_id = state.last_offline_id;
    let last_id = i64::try_from(account.offline.len())
        .ok()
        .and_then(|count| first_id.checked_add(count))
        .ok_or_else(|| StorageError::Backend("offline message ids exhausted".into()))?;
    // Data left behind without an account is replaced.
    state.kv.retain(|(h, u, _), _| !(h.as_str() == host && *u == account.username));
    state.rosters.remove(&key);
    state.pending_in.remove(&key);
    state.offline.remove(&key);
    state.nodes.retain(|(h, u, _), _| !(h.as_str() == host && *u == account.username));

    state.accounts.insert(key.clone(), credential_map(&account.credentials));
    if !account.roster.is_empty() {
        let mut roster = MemoryRoster { version: 1, ..MemoryRoster::default() };
        for item in &account.roster {
            roster.write(item, 1);
        }
        state.rosters.insert(key.clone(), roster);
    }
    if !account.pending_in.is_empty() {
        let requests = account.pending_in.iter().map(|request| (request.contact.clone(), request.clone())).collect();
        state.pending_in.insert(key.clone(), requests);
    }
    for (store, entry_key, value) in &account.kv {
        state
            .kv
            .entry((host.to_owned(), account.username.clone(), store.clone()))
            .or_default()
            .insert(entry_key.clone(), value.clone());
    }
    if !account.offline.is_empty() {
        let messages = (first_id + 1..)
            .zip(&account.offline)
            .map(|(id, (stamp_ms, stanza))| (id, OfflineMessage { id, stamp_ms: *stamp_ms, stanza: stanza.clone() }))
            .collect();
        state.offline.insert(key, messages);
    }
    for node in &account.pep {
        let mut stored = MemoryNode { config: node.config.clone(), items: node.items.clone() };
        stored.trim(u32::MAX);
        state.nodes.insert((host.to_owned(), account.username.clone(), node.name.clone()), stored);
    }
    state.last_offline_id = last_id;
    Ok(ImportOutcome::Created)
}
