//! The registry of bound local sessions (RFC 6120 §7, RFC 6121 §8.5).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use rand::Rng as _;
use xmppd_jid::{BareJid, FullJid, Jid};
use xmppd_proto::StreamErrorCondition;

use crate::queue::{Outbound, SessionQueue};

/// What to do when a client binds a resource that is already in use
/// (RFC 6120 §7.7.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceConflict {
    /// Terminate the older session with a `conflict` stream error and give
    /// the resource to the new one (Prosody's and ejabberd's default).
    #[default]
    Replace,
    /// Refuse the new bind with a `conflict` stanza error.
    Reject,
    /// Give the new session a server-generated resource instead.
    Rename,
}

/// Why a bind failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The resource is taken and the policy is [`ResourceConflict::Reject`].
    #[error("resource conflict")]
    Conflict,
    /// The user has too many sessions.
    #[error("too many resources")]
    TooManyResources,
}

/// One bound session as seen by the router.
#[derive(Debug)]
pub struct SessionEntry {
    id: u64,
    jid: FullJid,
    /// Outbound queue: the only way to reach the session.
    pub queue: SessionQueue,
    available: AtomicBool,
    priority: AtomicI32,
    flags: AtomicU8,
    /// Boxed and absent until the session sends presence, so an idle
    /// session that never does pays one pointer.
    presence: Mutex<Option<Box<PresenceData>>>,
}

/// What the server remembers of a session's presence (RFC 6121 §4).
#[derive(Debug, Default)]
struct PresenceData {
    /// The last available presence broadcast, as routed (from = full JID,
    /// no `to`): answers probes (§4.3.2) and informs new resources.
    last: Option<Bytes>,
    /// Entities that got directed presence (§4.6) and must get unavailable
    /// when the session ends (§4.6.3).
    directed: Vec<Jid>,
}

/// The session requested the roster: it is an "interested resource" that
/// gets roster pushes (RFC 6121 §2.1.6).
const INTERESTED: u8 = 1;
/// The session sent initial presence (RFC 6121 §4.2).
const INITIAL_PRESENCE: u8 = 2;
/// The session asked for the blocklist and gets its pushes (XEP-0191 §3.1).
const BLOCKLIST_INTERESTED: u8 = 4;

impl SessionEntry {
    /// The registry-unique session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The bound full JID.
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    /// Whether the session has sent available presence (RFC 6121 §4.2).
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// The priority of its last available presence (RFC 6121 §4.7.2.3).
    pub fn priority(&self) -> i32 {
        self.priority.load(Ordering::Relaxed)
    }

    /// Records the session's availability and priority.
    pub fn set_presence(&self, available: bool, priority: i32) {
        self.priority.store(priority, Ordering::Relaxed);
        self.available.store(available, Ordering::Relaxed);
    }

    /// Whether the session asked for the roster and so gets roster pushes
    /// (RFC 6121 §2.1.6).
    pub fn is_interested(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & INTERESTED != 0
    }

    /// Marks the session as interested in roster pushes.
    pub fn set_interested(&self) {
        self.flags.fetch_or(INTERESTED, Ordering::Relaxed);
    }

    /// Whether the session requested the blocklist (XEP-0191 §3.1).
    pub fn is_blocklist_interested(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & BLOCKLIST_INTERESTED != 0
    }

    /// Marks the session as interested in blocklist pushes.
    pub fn set_blocklist_interested(&self) {
        self.flags.fetch_or(BLOCKLIST_INTERESTED, Ordering::Relaxed);
    }

    /// Marks initial presence as sent; returns whether this is the first
    /// time (RFC 6121 §4.2: the first available presence is the initial one).
    pub fn mark_initial_presence(&self) -> bool {
        self.flags.fetch_or(INITIAL_PRESENCE, Ordering::Relaxed) & INITIAL_PRESENCE == 0
    }

    /// Whether the session has sent initial presence.
    pub fn sent_initial_presence(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & INITIAL_PRESENCE != 0
    }

    /// The last available presence the session broadcast.
    pub fn last_presence(&self) -> Option<Bytes> {
        self.presence_data().as_ref().and_then(|data| data.last.clone())
    }

    /// Records (or clears) the session's broadcast presence.
    pub fn set_last_presence(&self, presence: Option<Bytes>) {
        let mut data = self.presence_data();
        data.get_or_insert_with(Box::default).last = presence;
        Self::shrink(&mut data);
    }

    /// Records an entity that got directed presence (RFC 6121 §4.6.2).
    pub fn add_directed(&self, to: &Jid) {
        let mut data = self.presence_data();
        let directed = &mut data.get_or_insert_with(Box::default).directed;
        if !directed.contains(to) {
            directed.push(to.clone());
        }
    }

    /// Forgets an entity that got directed unavailable presence.
    pub fn remove_directed(&self, to: &Jid) {
        let mut data = self.presence_data();
        if let Some(d) = data.as_mut() {
            d.directed.retain(|j| j != to);
        }
        Self::shrink(&mut data);
    }

    /// Whether `to` got directed presence from this session.
    pub fn has_directed(&self, to: &Jid) -> bool {
        self.presence_data().as_ref().is_some_and(|d| d.directed.contains(to))
    }

    /// Whether some entity at `bare` (the bare JID itself or any of its
    /// resources, e.g. a MUC room's occupants) got directed presence from
    /// this session.
    pub fn has_directed_to_bare(&self, bare: &BareJid) -> bool {
        self.presence_data().as_ref().is_some_and(|d| d.directed.iter().any(|jid| jid.to_bare() == *bare))
    }

    /// Takes the list of directed-presence recipients (on unavailable).
    pub fn take_directed(&self) -> Vec<Jid> {
        let mut data = self.presence_data();
        let taken = data.as_mut().map(|d| std::mem::take(&mut d.directed)).unwrap_or_default();
        Self::shrink(&mut data);
        taken
    }

    fn presence_data(&self) -> std::sync::MutexGuard<'_, Option<Box<PresenceData>>> {
        self.presence.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn shrink(data: &mut Option<Box<PresenceData>>) {
        if data.as_ref().is_some_and(|d| d.last.is_none() && d.directed.is_empty()) {
            *data = None;
        }
    }
}

/// Maps bare JIDs to their bound sessions.
#[derive(Debug)]
pub struct SessionRegistry {
    by_bare: RwLock<HashMap<BareJid, Vec<Arc<SessionEntry>>>>,
    next_id: AtomicU64,
    queue_capacity: usize,
    max_resources: usize,
}

impl SessionRegistry {
    /// An empty registry; every session queue holds `queue_capacity` stanzas.
    pub fn new(queue_capacity: usize, max_resources: usize) -> Self {
        SessionRegistry {
            by_bare: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            queue_capacity,
            max_resources,
        }
    }

    /// Binds `jid` (RFC 6120 §7.6). With `resource = None` the server picks a
    /// resource (§7.6.2.1). A conflict is settled by `policy` (§7.7.2.2).
    pub fn bind(
        &self,
        bare: &BareJid,
        resource: Option<&str>,
        policy: ResourceConflict,
    ) -> Result<Arc<SessionEntry>, BindError> {
        let mut map = self.by_bare.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let sessions = map.entry(bare.clone()).or_default();
        let mut chosen: Option<FullJid> = None;
        if let Some(jid) = resource.and_then(|resource| bare.with_resource(resource).ok()) {
            match sessions.iter().position(|s| s.jid == jid) {
                None => chosen = Some(jid),
                Some(index) => match policy {
                    ResourceConflict::Reject => return Err(BindError::Conflict),
                    ResourceConflict::Rename => {}
                    ResourceConflict::Replace => {
                        let old = sessions.remove(index);
                        old.queue
                            .push(Outbound::Close(
                                StreamErrorCondition::Conflict,
                                Some("replaced by a new session for the same resource"),
                            ))
                            .ok();
                        chosen = Some(jid);
                    }
                },
            }
        }
        if sessions.len() >= self.max_resources {
            return Err(BindError::TooManyResources);
        }
        let jid = match chosen {
            Some(jid) => jid,
            None => loop {
                let candidate = generate_resource();
                if let Ok(jid) = bare.with_resource(&candidate)
                    && !sessions.iter().any(|s| s.jid == jid)
                {
                    break jid;
                }
            },
        };
        let entry = Arc::new(SessionEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            jid,
            queue: SessionQueue::new(self.queue_capacity),
            available: AtomicBool::new(false),
            priority: AtomicI32::new(0),
            flags: AtomicU8::new(0),
            presence: Mutex::new(None),
        });
        sessions.push(entry.clone());
        Ok(entry)
    }

    /// Removes a session (only if it is still the one bound to its JID).
    /// Returns whether the account has no session left.
    pub fn unbind(&self, entry: &SessionEntry) -> bool {
        entry.queue.close();
        let bare = entry.jid.to_bare();
        let mut map = self.by_bare.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        match map.get_mut(&bare) {
            Some(sessions) => {
                sessions.retain(|s| s.id != entry.id);
                if sessions.is_empty() {
                    map.remove(&bare);
                    true
                } else {
                    false
                }
            }
            None => true,
        }
    }

    /// Takes a session out of the registry without closing its queue, so
    /// that a `Close` already queued still reaches it (an account deleted
    /// while online must stop counting as present at once).
    pub fn detach(&self, entry: &SessionEntry) {
        let bare = entry.jid.to_bare();
        let mut map = self.by_bare.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sessions) = map.get_mut(&bare) {
            sessions.retain(|s| s.id != entry.id);
            if sessions.is_empty() {
                map.remove(&bare);
            }
        }
    }

    /// Whether the account has at least one bound session.
    pub fn is_online(&self, bare: &BareJid) -> bool {
        let map = self.by_bare.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.contains_key(bare)
    }

    /// The session bound to a full JID.
    pub fn get(&self, jid: &FullJid) -> Option<Arc<SessionEntry>> {
        let map = self.by_bare.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&jid.to_bare())?.iter().find(|s| &s.jid == jid).cloned()
    }

    /// All sessions of an account.
    pub fn sessions_of(&self, bare: &BareJid) -> Vec<Arc<SessionEntry>> {
        let map = self.by_bare.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(bare).cloned().unwrap_or_default()
    }

    /// Number of bound sessions.
    pub fn len(&self) -> usize {
        let map = self.by_bare.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.values().map(Vec::len).sum()
    }

    /// Whether no session is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The accounts of `domain` with at least one bound session, sorted,
    /// at most `limit` of them, and how many there are in all.
    /// The lock is held only to copy the JIDs, not to sort them.
    pub fn online_accounts(&self, domain: &str, limit: usize) -> (Vec<BareJid>, usize) {
        let mut accounts: Vec<BareJid> = {
            let map = self.by_bare.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            if limit == 0 {
                return (Vec::new(), map.keys().filter(|bare| bare.domain() == domain).count());
            }
            map.keys().filter(|bare| bare.domain() == domain).cloned().collect()
        };
        let total = accounts.len();
        accounts.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        accounts.truncate(limit);
        (accounts, total)
    }

    /// Asks every session to close with `condition` (e.g. `system-shutdown`).
    pub fn close_all(&self, condition: StreamErrorCondition, text: &'static str) {
        let map = self.by_bare.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        for entry in map.values().flatten() {
            entry.queue.push(Outbound::Close(condition, Some(text))).ok();
        }
    }
}

/// A server-generated resourcepart (RFC 6120 §7.6.2.1): random, URL-safe.
fn generate_resource() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..12).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bare(s: &str) -> BareJid {
        s.parse().unwrap()
    }

    #[test]
    fn replace_kicks_the_old_session() {
        let registry = SessionRegistry::new(8, 10);
        let juliet = bare("juliet@example.com");
        let first = registry.bind(&juliet, Some("balcony"), ResourceConflict::Replace).unwrap();
        let second = registry.bind(&juliet, Some("balcony"), ResourceConflict::Replace).unwrap();
        assert_ne!(first.id(), second.id());
        let mut out = Vec::new();
        first.queue.drain_into(&mut out);
        assert!(matches!(out.as_slice(), [Outbound::Close(StreamErrorCondition::Conflict, _)]));
        assert_eq!(registry.sessions_of(&juliet).len(), 1);
        // The old session unbinding later must not remove the new one.
        registry.unbind(&first);
        assert_eq!(registry.get(second.jid()).map(|s| s.id()), Some(second.id()));
    }

    #[test]
    fn reject_and_rename_policies() {
        let registry = SessionRegistry::new(8, 10);
        let juliet = bare("juliet@example.com");
        registry.bind(&juliet, Some("balcony"), ResourceConflict::Reject).unwrap();
        assert_eq!(registry.bind(&juliet, Some("balcony"), ResourceConflict::Reject).unwrap_err(), BindError::Conflict);
        let renamed = registry.bind(&juliet, Some("balcony"), ResourceConflict::Rename).unwrap();
        assert_ne!(renamed.jid().resource(), "balcony");
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn server_generated_resources_are_unique() {
        let registry = SessionRegistry::new(8, 100);
        let juliet = bare("juliet@example.com");
        let a = registry.bind(&juliet, None, ResourceConflict::Replace).unwrap();
        let b = registry.bind(&juliet, None, ResourceConflict::Replace).unwrap();
        assert_ne!(a.jid(), b.jid());
        assert_eq!(a.jid().resource().len(), 12);
    }

    #[test]
    fn online_accounts_per_domain() {
        let registry = SessionRegistry::new(8, 10);
        for jid in ["romeo@a.example", "juliet@a.example", "juliet@a.example", "nurse@b.example"] {
            registry.bind(&bare(jid), None, ResourceConflict::Replace).unwrap();
        }
        let (accounts, total) = registry.online_accounts("a.example", 1);
        assert_eq!((accounts, total), (vec![bare("juliet@a.example")], 2));
        assert_eq!(registry.online_accounts("a.example", 0), (vec![], 2));
        assert_eq!(registry.online_accounts("b.example", 10), (vec![bare("nurse@b.example")], 1));
    }

    #[test]
    fn resource_limit() {
        let registry = SessionRegistry::new(8, 2);
        let juliet = bare("juliet@example.com");
        registry.bind(&juliet, None, ResourceConflict::Replace).unwrap();
        registry.bind(&juliet, None, ResourceConflict::Replace).unwrap();
        assert_eq!(registry.bind(&juliet, None, ResourceConflict::Replace).unwrap_err(), BindError::TooManyResources);
    }
}
