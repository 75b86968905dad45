//! Who wants which PEP notifications (XEP-0163 §4.3, §4.4): the `+notify`
//! features of entity capabilities (XEP-0115) of every available resource
//! that may see an account's nodes.
//!
//! * The caps of local sessions are read once from their own presence
//!   broadcast (not once per delivery).
//! * A `ver` seen for the first time is resolved with one disco#info query
//!   (XEP-0115 §6.2) to an entity announcing it, and verified (§5.4) before
//!   it is shared by everyone announcing the same `ver`.
//! * Per account owner, the available resources that may receive its
//!   notifications (its own, and contacts with a presence subscription to
//!   it, §4.3.1) and their `ver`, as Prosody's mod_pep keeps them. An entry
//!   goes with the resource's unavailable presence.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use xmppd_jid::{BareJid, FullJid};
use xmppd_proto::ns;
use xmppd_xml::Element;

/// The node names a capabilities `ver` subscribes to (`<node>+notify`).
pub(crate) type NotifySet = Arc<BTreeSet<String>>;

/// A session's announced caps: `ver` and `node` (XEP-0115 §4).
pub(crate) type SessionCaps = (Arc<str>, Arc<str>);

/// What is known of one `ver`.
enum CapsState {
    /// Resolved and verified.
    Known(NotifySet),
    /// A query to `queried` is under way; these (owner, resource) pairs
    /// wait for it.
    Pending { queried: FullJid, waiting: Vec<(BareJid, FullJid)> },
}

/// What became of a query ([`Interest::resolved`]).
pub(crate) enum Resolution {
    /// Known now: these (owner, resource) pairs waited for it.
    Known(NotifySet, Vec<(BareJid, FullJid)>),
    /// The queried entity did not answer well; ask this one, which
    /// announced the same `ver` (XEP-0115 §5.4 lets any announcer answer).
    AskNext(FullJid),
    /// Nobody else to ask; the waiting resources ask again at their next
    /// announcement.
    Failed,
}

/// Resolved `ver`s kept at most: each is a client configuration, so a
/// real deployment has a few hundred; a client that makes up new ones
/// cannot grow the cache beyond this (the oldest are dropped first and
/// resolved again when announced again).
pub(crate) const MAX_KNOWN_CAPS: usize = 4096;

/// disco#info queries in flight at most; a `ver` announced while this
/// many are under way is asked again at its next announcement.
pub(crate) const MAX_PENDING_CAPS: usize = 256;

/// Queries in flight to one entity at most, so that a client announcing
/// made-up `ver`s it never answers cannot use up [`MAX_PENDING_CAPS`].
pub(crate) const MAX_PENDING_PER_ENTITY: usize = 2;

/// The caps cache: what is known of each `ver`, and the order in which
/// the known ones were resolved.
#[derive(Default)]
struct CapsCache {
    states: HashMap<Arc<str>, CapsState>,
    resolved_order: VecDeque<Arc<str>>,
    /// How many `states` are `Pending`.
    pending: usize,
    /// Queries in flight per queried entity.
    pending_by_entity: HashMap<FullJid, usize>,
}

impl CapsCache {
    fn start_query(&mut self, entity: &FullJid) {
        self.pending += 1;
        *self.pending_by_entity.entry(entity.clone()).or_default() += 1;
    }

    fn end_query(&mut self, entity: &FullJid) {
        self.pending = self.pending.saturating_sub(1);
        if let Some(count) = self.pending_by_entity.get_mut(entity) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.pending_by_entity.remove(entity);
            }
        }
    }

    fn may_query(&self, entity: &FullJid) -> bool {
        self.pending < MAX_PENDING_CAPS
            && self.pending_by_entity.get(entity).is_none_or(|count| *count < MAX_PENDING_PER_ENTITY)
    }
}

/// Notification interest of one host.
#[derive(Default)]
pub(crate) struct Interest {
    caps: Mutex<CapsCache>,
    /// The caps (`ver`, `node`) of each local session that announced them.
    session_caps: Mutex<HashMap<FullJid, SessionCaps>>,
    /// Per owner: the resources that receive its notifications, with their
    /// `ver`.
    recipients: Mutex<HashMap<BareJid, HashMap<FullJid, Arc<str>>>>,
    /// Per resource: the owners whose recipient it is (to forget it
    /// everywhere when it goes, whatever the roster says by then).
    owners: Mutex<HashMap<FullJid, Vec<BareJid>>>,
}

/// What [`Interest::note_recipient`] found out.
pub(crate) enum Noted {
    /// Nothing changed (same `ver` as before).
    Unchanged,
    /// New or changed, with known features: send the last items of the
    /// nodes in the new set that were not in the old one (XEP-0060 §12.2:
    /// the last item is sent once; a new `ver` only adds nodes).
    Known {
        /// The features now.
        new: NotifySet,
        /// The features of the `ver` before, if known.
        old: Option<NotifySet>,
    },
    /// New or changed, `ver` unknown: query it (the first asker only).
    Resolve,
    /// New or changed, a query for this `ver` is under way already.
    Waiting,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Interest {
    /// Records a local session's caps from its presence broadcast; `None`
    /// forgets them (unavailable, or presence without caps).
    pub(crate) fn set_session_caps(&self, session: &FullJid, ver: Option<SessionCaps>) {
        let mut caps = lock(&self.session_caps);
        match ver {
            Some(ver) => {
                caps.insert(session.clone(), ver);
            }
            None => {
                caps.remove(session);
            }
        }
    }

    /// A local session's caps, if it announced them.
    pub(crate) fn session_caps(&self, session: &FullJid) -> Option<SessionCaps> {
        lock(&self.session_caps).get(session).cloned()
    }

    /// Records that `resource` (with caps `ver`) receives `owner`'s
    /// notifications.
    pub(crate) fn note_recipient(&self, owner: &BareJid, resource: &FullJid, ver: Arc<str>) -> Noted {
        let previous = {
            let mut recipients = lock(&self.recipients);
            recipients.entry(owner.clone()).or_default().insert(resource.clone(), ver.clone())
        };
        if previous.is_none() {
            let mut owners = lock(&self.owners);
            let list = owners.entry(resource.clone()).or_default();
            if !list.contains(owner) {
                list.push(owner.clone());
            }
        }
        let mut caps = lock(&self.caps);
        let known = |caps: &CapsCache, ver: &Arc<str>| match caps.states.get(ver) {
            Some(CapsState::Known(set)) => Some(set.clone()),
            _ => None,
        };
        let old = previous.as_ref().and_then(|old| known(&caps, old));
        // The same `ver` as before is news only when it was dropped from
        // the cache meanwhile (then it is resolved again).
        if previous.as_ref() == Some(&ver) && caps.states.contains_key(&ver) {
            return Noted::Unchanged;
        }
        let may_query = caps.may_query(resource);
        match caps.states.get_mut(&ver) {
            Some(CapsState::Known(set)) => Noted::Known { new: set.clone(), old },
            Some(CapsState::Pending { waiting, .. }) => {
                let pair = (owner.clone(), resource.clone());
                if !waiting.contains(&pair) {
                    waiting.push(pair);
                }
                Noted::Waiting
            }
            None if !may_query => {
                drop(caps);
                // Not now: forgotten, so that the next announcement tries.
                self.forget_recipient(owner, resource);
                Noted::Unchanged
            }
            None => {
                let waiting = vec![(owner.clone(), resource.clone())];
                caps.states.insert(ver, CapsState::Pending { queried: resource.clone(), waiting });
                caps.start_query(resource);
                Noted::Resolve
            }
        }
    }

    /// `resource` no longer receives `owner`'s notifications.
    pub(crate) fn forget_recipient(&self, owner: &BareJid, resource: &FullJid) {
        let mut recipients = lock(&self.recipients);
        if let Some(known) = recipients.get_mut(owner) {
            known.remove(resource);
            if known.is_empty() {
                recipients.remove(owner);
            }
        }
        drop(recipients);
        let mut owners = lock(&self.owners);
        if let Some(list) = owners.get_mut(resource) {
            list.retain(|o| o != owner);
            if list.is_empty() {
                owners.remove(resource);
            }
        }
    }

    /// `resource` went away: it receives nobody's notifications.
    pub(crate) fn forget_resource(&self, resource: &FullJid) {
        let owners = lock(&self.owners).remove(resource).unwrap_or_default();
        let mut recipients = lock(&self.recipients);
        for owner in owners {
            if let Some(known) = recipients.get_mut(&owner) {
                known.remove(resource);
                if known.is_empty() {
                    recipients.remove(&owner);
                }
            }
        }
    }

    /// The owner's recipients interested in `node`.
    pub(crate) fn interested(&self, owner: &BareJid, node: &str) -> Vec<FullJid> {
        let candidates: Vec<(FullJid, Arc<str>)> = match lock(&self.recipients).get(owner) {
            Some(known) => known.iter().map(|(jid, ver)| (jid.clone(), ver.clone())).collect(),
            None => return Vec::new(),
        };
        let caps = lock(&self.caps);
        candidates
            .into_iter()
            .filter(|(_, ver)| matches!(caps.states.get(ver), Some(CapsState::Known(set)) if set.contains(node)))
            .map(|(jid, _)| jid)
            .collect()
    }

    /// Stores the outcome of the query about `ver` (`None`: it failed or
    /// the answer did not match the hash, and is not cached).
    pub(crate) fn resolved(&self, ver: &Arc<str>, notify: Option<NotifySet>) -> Resolution {
        let mut caps = lock(&self.caps);
        let Some(CapsState::Pending { queried, mut waiting }) = caps.states.remove(ver) else {
            // Known meanwhile (or never asked): nothing waits.
            return Resolution::Failed;
        };
        caps.end_query(&queried);
        if let Some(set) = notify {
            caps.states.insert(ver.clone(), CapsState::Known(set.clone()));
            caps.resolved_order.push_back(ver.clone());
            while caps.resolved_order.len() > MAX_KNOWN_CAPS {
                if let Some(oldest) = caps.resolved_order.pop_front()
                    && matches!(caps.states.get(&oldest), Some(CapsState::Known(_)))
                {
                    caps.states.remove(&oldest);
                }
            }
            return Resolution::Known(set, waiting);
        }
        // §5.4: another announcer of the same `ver` may answer.
        let next = waiting.iter().map(|(_, resource)| resource).find(|r| **r != queried && caps.may_query(r)).cloned();
        if let Some(next) = next {
            waiting.retain(|(_, resource)| *resource != queried);
            caps.start_query(&next);
            caps.states.insert(ver.clone(), CapsState::Pending { queried: next.clone(), waiting });
            return Resolution::AskNext(next);
        }
        drop(caps);
        // Let the waiting resources ask again at their next presence.
        let mut recipients = lock(&self.recipients);
        for (owner, resource) in &waiting {
            if let Some(known) = recipients.get_mut(owner)
                && known.get(resource).is_some_and(|old| old == ver)
            {
                known.remove(resource);
            }
        }
        Resolution::Failed
    }
}

/// The `ver` and `node` of a presence's XEP-0115 `<c/>` (§4), if it has one
/// with a hash this server can verify (`sha-1`, §5.1) — legacy caps without
/// `hash` (§9) are ignored.
pub(crate) fn caps_of(presence: &Element) -> Option<SessionCaps> {
    let c = presence.get_child("c", ns::CAPS)?;
    if c.attr("hash")? != "sha-1" {
        return None;
    }
    Some((Arc::from(c.attr("ver")?), Arc::from(c.attr("node")?)))
}

/// The `+notify` nodes of a disco#info answer, if its verification string
/// is `ver` (XEP-0115 §5.4: an answer that does not hash to the announced
/// `ver` MUST NOT be cached).
pub(crate) fn notify_set(query: &Element, ver: &str) -> Option<NotifySet> {
    let identities: Vec<xmppd_proto::caps::Identity> = query
        .children()
        .filter(|child| child.name() == "identity" && child.ns() == ns::DISCO_INFO)
        .map(|identity| xmppd_proto::caps::Identity {
            category: identity.attr("category").unwrap_or_default().to_owned(),
            kind: identity.attr("type").unwrap_or_default().to_owned(),
            lang: identity.attr("xml:lang").map(str::to_owned),
            name: identity.attr("name").map(str::to_owned),
        })
        .collect();
    let features: Vec<String> = query
        .children()
        .filter(|child| child.name() == "feature" && child.ns() == ns::DISCO_INFO)
        .filter_map(|feature| feature.attr("var").map(str::to_owned))
        .collect();
    let forms: Vec<Element> = query.children().filter(|child| child.ns() == ns::DATA_FORMS).cloned().collect();
    // §5.4 (3.3, 3.4): duplicate features or identities make the answer
    // ill-formed; it is not used.
    let distinct_features: BTreeSet<&str> = features.iter().map(String::as_str).collect();
    let distinct_identities: BTreeSet<_> =
        identities.iter().map(|i| (&i.category, &i.kind, &i.lang, &i.name)).collect();
    if distinct_features.len() != features.len() || distinct_identities.len() != identities.len() {
        return None;
    }
    let feature_refs: Vec<&str> = features.iter().map(String::as_str).collect();
    if xmppd_proto::caps::verification_string(&identities, &feature_refs, &forms) != ver {
        return None;
    }
    Some(Arc::new(features.iter().filter_map(|feature| feature.strip_suffix("+notify")).map(str::to_owned).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(jid: &str) -> FullJid {
        jid.parse::<xmppd_jid::Jid>().ok().and_then(|j| j.try_into_full().ok()).unwrap_or_else(|| panic!("{jid}"))
    }

    fn bare(jid: &str) -> BareJid {
        jid.parse().unwrap_or_else(|_| panic!("{jid}"))
    }

    #[test]
    fn recipients_follow_caps_resolution() {
        let interest = Interest::default();
        let owner = bare("alice@example.org");
        let phone = full("bob@example.org/phone");
        let laptop = full("bob@example.org/laptop");
        let ver: Arc<str> = Arc::from("v1");
        assert!(matches!(interest.note_recipient(&owner, &phone, ver.clone()), Noted::Resolve));
        assert!(matches!(interest.note_recipient(&owner, &laptop, ver.clone()), Noted::Waiting));
        assert!(matches!(interest.note_recipient(&owner, &phone, ver.clone()), Noted::Unchanged));
        assert!(interest.interested(&owner, "urn:nick").is_empty(), "unknown until resolved");
        let set: NotifySet = Arc::new(["urn:nick".to_owned()].into_iter().collect());
        let Resolution::Known(_, waited) = interest.resolved(&ver, Some(set)) else { panic!("resolved") };
        assert_eq!(waited.len(), 2);
        // A different known `ver` only reports what it adds.
        let ver2: Arc<str> = Arc::from("v2");
        assert!(matches!(interest.note_recipient(&owner, &phone, ver2.clone()), Noted::Resolve));
        let two: NotifySet = Arc::new(["urn:nick".to_owned(), "urn:geo".to_owned()].into_iter().collect());
        assert!(matches!(interest.resolved(&ver2, Some(two)), Resolution::Known(..)));
        let Noted::Known { new, old } = interest.note_recipient(&owner, &phone, ver.clone()) else { panic!("known") };
        assert_eq!((new.len(), old.map(|o| o.len())), (1, Some(2)));
        let mut got = interest.interested(&owner, "urn:nick");
        got.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(got, [laptop.clone(), phone.clone()]);
        assert!(interest.interested(&owner, "urn:other").is_empty());
        interest.forget_recipient(&owner, &phone);
        assert_eq!(interest.interested(&owner, "urn:nick"), [laptop]);
    }

    #[test]
    fn the_cache_is_bounded() {
        let interest = Interest::default();
        let owner = bare("alice@example.org");
        let phone = full("bob@example.org/phone");
        let set: NotifySet = Arc::new(BTreeSet::new());
        for n in 0..MAX_KNOWN_CAPS + 10 {
            let ver: Arc<str> = Arc::from(format!("v{n}"));
            interest.note_recipient(&owner, &phone, ver.clone());
            interest.resolved(&ver, Some(set.clone()));
        }
        let caps = lock(&interest.caps);
        assert_eq!(caps.states.len(), MAX_KNOWN_CAPS);
        assert!(!caps.states.contains_key("v0") && caps.states.contains_key("v4105"));
        assert_eq!(caps.pending, 0);
    }

    #[test]
    fn queries_in_flight_are_bounded() {
        let interest = Interest::default();
        let owner = bare("alice@example.org");
        // One entity cannot hold more than two queries.
        let flooder = full("mallory@example.org/x");
        assert!(matches!(interest.note_recipient(&owner, &flooder, Arc::from("f1")), Noted::Resolve));
        assert!(matches!(interest.note_recipient(&owner, &flooder, Arc::from("f2")), Noted::Resolve));
        assert!(matches!(interest.note_recipient(&owner, &flooder, Arc::from("f3")), Noted::Unchanged));
        interest.resolved(&Arc::from("f1"), None);
        interest.resolved(&Arc::from("f2"), None);
        for n in 0..MAX_PENDING_CAPS {
            let resource = full(&format!("bob@example.org/r{n}"));
            assert!(matches!(interest.note_recipient(&owner, &resource, Arc::from(format!("v{n}"))), Noted::Resolve));
        }
        let late = full("bob@example.org/late");
        let ver: Arc<str> = Arc::from("late");
        assert!(matches!(interest.note_recipient(&owner, &late, ver.clone()), Noted::Unchanged));
        interest.resolved(&Arc::from("v0"), None);
        assert!(matches!(interest.note_recipient(&owner, &late, ver), Noted::Resolve), "tried again later");
    }

    #[test]
    fn failed_resolution_is_retried() {
        let interest = Interest::default();
        let owner = bare("alice@example.org");
        let phone = full("bob@example.org/phone");
        let ver: Arc<str> = Arc::from("bad");
        assert!(matches!(interest.note_recipient(&owner, &phone, ver.clone()), Noted::Resolve));
        assert!(matches!(interest.resolved(&ver, None), Resolution::Failed));
        assert!(matches!(interest.note_recipient(&owner, &phone, ver), Noted::Resolve));
    }

    #[test]
    fn a_silent_announcer_does_not_block_the_others() {
        let interest = Interest::default();
        let owner = bare("alice@example.org");
        let silent = full("mallory@example.org/x");
        let honest = full("bob@example.org/phone");
        let ver: Arc<str> = Arc::from("shared");
        assert!(matches!(interest.note_recipient(&owner, &silent, ver.clone()), Noted::Resolve));
        assert!(matches!(interest.note_recipient(&owner, &honest, ver.clone()), Noted::Waiting));
        let Resolution::AskNext(next) = interest.resolved(&ver, None) else { panic!("ask the next announcer") };
        assert_eq!(next, honest);
        let set: NotifySet = Arc::new(["urn:nick".to_owned()].into_iter().collect());
        let Resolution::Known(_, waited) = interest.resolved(&ver, Some(set)) else { panic!("known") };
        assert_eq!(waited, [(owner.clone(), honest.clone())]);
        assert_eq!(interest.interested(&owner, "urn:nick").len(), 2, "both announce the now known ver");
    }

    #[test]
    fn an_evicted_ver_is_resolved_again() {
        let interest = Interest::default();
        let owner = bare("alice@example.org");
        let phone = full("bob@example.org/phone");
        let ver: Arc<str> = Arc::from("v");
        interest.note_recipient(&owner, &phone, ver.clone());
        interest.resolved(&ver, Some(Arc::new(BTreeSet::new())));
        lock(&interest.caps).states.clear();
        assert!(matches!(interest.note_recipient(&owner, &phone, ver), Noted::Resolve));
    }

    #[test]
    fn a_resource_is_forgotten_everywhere() {
        let interest = Interest::default();
        let phone = full("bob@example.org/phone");
        for owner in ["alice@example.org", "carol@example.org"] {
            interest.note_recipient(&bare(owner), &phone, Arc::from("v"));
        }
        interest.resolved(&Arc::from("v"), Some(Arc::new(["n".to_owned()].into_iter().collect())));
        interest.forget_resource(&phone);
        assert!(interest.interested(&bare("alice@example.org"), "n").is_empty());
        assert!(interest.interested(&bare("carol@example.org"), "n").is_empty());
        assert!(lock(&interest.recipients).is_empty() && lock(&interest.owners).is_empty());
    }

    #[test]
    fn notify_set_checks_the_hash() {
        // XEP-0115 §5.2 simple generation example.
        let xml = "<query xmlns='http://jabber.org/protocol/disco#info'>\
            <identity category='client' name='Exodus 0.9.1' type='pc'/>\
            <feature var='http://jabber.org/protocol/caps'/>\
            <feature var='http://jabber.org/protocol/disco#info'/>\
            <feature var='http://jabber.org/protocol/disco#items'/>\
            <feature var='http://jabber.org/protocol/muc'/></query>";
        let query = Element::parse_standalone(xml.as_bytes(), ns::DISCO_INFO).expect("valid");
        assert!(notify_set(&query, "QgayPKawpkPSDYmwT/WM94uAlu0=").is_some_and(|set| set.is_empty()));
        assert!(notify_set(&query, "wrong").is_none());
    }
}
