//! The roster service (RFC 6121 §2): rosters of local users, cached in
//! memory while the user has a bound session, written through to the
//! [`RosterStore`]. Presence broadcast reads the cache, so a broadcast to
//! twenty contacts costs no storage round trip.
//!
//! Invariant: every roster write of the process goes through this service,
//! so a cached roster is never stale. A write whose version is not the
//! cached version plus one (a concurrent write got in between) drops the
//! cached copy instead of patching it; the next read reloads it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use xmppd_jid::BareJid;
use xmppd_proto::ns;
use xmppd_storage::{PendingIn, Roster, RosterItem, RosterStore, StorageError};
use xmppd_xml::Element;

/// Cached rosters plus the store behind them.
pub struct RosterService {
    store: Arc<dyn RosterStore>,
    cache: RwLock<HashMap<BareJid, Arc<Roster>>>,
    /// One lock per user with a write in progress: a write and its push
    /// happen under it, so pushes go out in version order (RFC 6121
    /// §2.6.3 "in the order the changes were made").
    write_order: Mutex<HashMap<BareJid, Weak<tokio::sync::Mutex<()>>>>,
}

/// A roster write whose push has not gone out yet: it holds the user's
/// write order until [`crate::Server::push_roster_item`] consumes it.
pub struct RosterWrite {
    /// The roster version the write produced.
    pub version: u64,
    _order: tokio::sync::OwnedMutexGuard<()>,
}

/// Live entries of `write_order` above which dead ones are swept.
const WRITE_ORDER_SWEEP: usize = 1024;

impl RosterService {
    pub(crate) fn new(store: Arc<dyn RosterStore>) -> Self {
        RosterService { store, cache: RwLock::new(HashMap::new()), write_order: Mutex::new(HashMap::new()) }
    }

    /// Waits for the user's earlier roster writes to be pushed.
    pub(crate) async fn write_order(&self, user: &BareJid) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.write_order.lock().unwrap_or_else(PoisonError::into_inner);
            if locks.len() >= WRITE_ORDER_SWEEP {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(user).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(user.clone(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// [`RosterService::put`] under the user's write order, which the
    /// result keeps until its push.
    pub(crate) async fn put_ordered(
        &self,
        user: &BareJid,
        item: &RosterItem,
        max_items: Option<u64>,
    ) -> Result<RosterWrite, StorageError> {
        let order = self.write_order(user).await;
        let version = self.put(user, item, max_items).await?;
        Ok(RosterWrite { version, _order: order })
    }

    /// The user's roster; kept in the cache when `keep` (the user is online).
    pub(crate) async fn roster(&self, user: &BareJid, keep: bool) -> Result<Arc<Roster>, StorageError> {
        if let Some(cached) = self.read_cache().get(user) {
            return Ok(cached.clone());
        }
        let (host, node) = split(user)?;
        let roster = Arc::new(self.store.roster(host, node).await?);
        if keep {
            self.write_cache().entry(user.clone()).or_insert_with(|| roster.clone());
        }
        Ok(roster)
    }

    /// Inserts or replaces an item; returns the new version.
    pub(crate) async fn put(
        &self,
        user: &BareJid,
        item: &RosterItem,
        max_items: Option<u64>,
    ) -> Result<u64, StorageError> {
        let (host, node) = split(user)?;
        let version = self.store.put_item(host, node, item, max_items).await?;
        self.patch(user, version, |items| match items.binary_search_by(|i| i.contact.cmp(&item.contact)) {
            Ok(index) => items[index] = item.clone(),
            Err(index) => items.insert(index, item.clone()),
        });
        Ok(version)
    }

    /// Removes an item; returns the new version if it existed.
    pub(crate) async fn remove(&self, user: &BareJid, contact: &str) -> Result<Option<u64>, StorageError> {
        let (host, node) = split(user)?;
        let version = self.store.remove_item(host, node, contact).await?;
        if let Some(version) = version {
            self.patch(user, version, |items| items.retain(|i| i.contact != contact));
        }
        Ok(version)
    }

    /// The changes after version `since` (RFC 6121 §2.6.3), if the store
    /// can tell.
    pub(crate) async fn changes_since(
        &self,
        user: &BareJid,
        since: u64,
    ) -> Result<Option<(u64, Vec<xmppd_storage::RosterChange>)>, StorageError> {
        let (host, node) = split(user)?;
        self.store.changes_since(host, node, since).await
    }

    /// Pending inbound subscription requests (RFC 6121 §3.1.3).
    pub(crate) async fn pending_in(&self, user: &BareJid) -> Result<Vec<PendingIn>, StorageError> {
        let (host, node) = split(user)?;
        self.store.pending_in(host, node).await
    }

    pub(crate) async fn add_pending_in(&self, user: &BareJid, pending: &PendingIn) -> Result<(), StorageError> {
        let (host, node) = split(user)?;
        self.store.add_pending_in(host, node, pending).await
    }

    pub(crate) async fn remove_pending_in(&self, user: &BareJid, contact: &str) -> Result<bool, StorageError> {
        let (host, node) = split(user)?;
        self.store.remove_pending_in(host, node, contact).await
    }

    /// Drops the cached roster (the user's last session ended).
    pub(crate) fn evict(&self, user: &BareJid) {
        self.write_cache().remove(user);
    }

    fn patch(&self, user: &BareJid, version: u64, change: impl FnOnce(&mut Vec<RosterItem>)) {
        let mut cache = self.write_cache();
        let Some(cached) = cache.get_mut(user) else { return };
        if cached.version.checked_add(1) != Some(version) {
            cache.remove(user);
            return;
        }
        let roster = Arc::make_mut(cached);
        change(&mut roster.items);
        roster.version = version;
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<BareJid, Arc<Roster>>> {
        self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<BareJid, Arc<Roster>>> {
        self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn split(user: &BareJid) -> Result<(&str, &str), StorageError> {
    let node = user.node().ok_or_else(|| StorageError::invalid_input("a roster belongs to an account JID"))?;
    Ok((user.domain(), node))
}

/// Serialises one item for a roster result or push (RFC 6121 §2.1.2).
/// `ask='subscribe'` marks pending-out (§2.1.2.2), `approved='true'` a
/// pre-approval (§2.1.2.1).
pub fn item_element(item: &RosterItem) -> Element {
    let mut builder = Element::builder("item", ns::ROSTER)
        .attr("jid", item.contact.as_str())
        .attr("subscription", item.subscription.as_str());
    if let Some(name) = &item.name {
        builder = builder.attr("name", name.as_str());
    }
    if item.ask {
        builder = builder.attr("ask", "subscribe");
    }
    if item.approved {
        builder = builder.attr("approved", "true");
    }
    for group in &item.groups {
        builder = builder.append(Element::builder("group", ns::ROSTER).text(group).build());
    }
    builder.build()
}

/// The `<item subscription='remove'/>` of a roster push after a removal
/// (RFC 6121 §2.5.2).
pub fn removed_item_element(contact: &str) -> Element {
    Element::builder("item", ns::ROSTER).attr("jid", contact).attr("subscription", "remove").build()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use xmppd_storage::memory::MemoryStorage;

    use crate::{Config, ServerBuilder, Stores};

    use super::*;

    /// RFC 6121 §2.6.3: a second write waits until the first one's push
    /// went out, so pushes leave in version order.
    #[tokio::test]
    async fn writes_wait_for_the_previous_push() {
        let storage = MemoryStorage::new();
        let mut config = Config::default();
        config.modules.enabled.clear();
        let server = ServerBuilder::new(Arc::new(config), Stores::of(&storage)).build();
        let Ok(server) = server else { panic!("server builds") };
        let user: BareJid = "alice@localhost".parse().expect("valid");
        let item = |contact: &str| RosterItem { contact: contact.to_owned(), ..RosterItem::default() };
        let first = server.write_roster_item(&user, &item("a@x")).await.expect("first write");
        assert_eq!(first.version, 1);
        let second = {
            let server = server.clone();
            let user = user.clone();
            tokio::spawn(async move { server.put_roster_item(&user, &item("b@x"), None).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the second write went ahead of the first push");
        server.push_roster_item(&user, &item("a@x"), first).await;
        let version = tokio::time::timeout(Duration::from_secs(5), second).await;
        assert!(matches!(version, Ok(Ok(Ok(2)))), "{version:?}");
    }
}
