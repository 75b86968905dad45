//! Hook points: how modules take part in routing without the router knowing
//! them (ejabberd's fold hooks, Prosody's events with "non-nil stops").
//!
//! Every hook point is a variant of [`StanzaHookPoint`] or
//! [`SessionHookPoint`]; the list is written up in `docs/design/hooks.md`.
//! Hooks run in priority order, highest first. A stanza hook that returns
//! [`HookFlow::Handled`] ends the chain and the router does nothing more
//! with the stanza.

use std::sync::Arc;

use async_trait::async_trait;

use crate::registry::SessionEntry;
use crate::server::Server;
use crate::stanza::{Stanza, StanzaKind};

/// Where in the stanza path a [`StanzaHook`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaHookPoint {
    /// A stanza a local client sent, after its `from` was stamped and before
    /// it is routed (Prosody's `pre-*`, ejabberd's `user_send_packet`). Run
    /// with the sender's host registrations.
    Outbound,
    /// A stanza addressed to a local account (bare or full JID), before it
    /// is delivered (ejabberd's `user_receive_packet`, Prosody's
    /// `*/bare` and `*/full`). Run with the addressee's host registrations.
    Inbound,
    /// A message for a local account that no available resource can take
    /// (RFC 6121 §8.5.2.2.1, §8.5.3.2.1): offline storage hooks in here.
    /// When no hook handles it, the router answers `service-unavailable`.
    Undeliverable,
}

impl StanzaHookPoint {
    pub(crate) const COUNT: usize = 3;

    pub(crate) fn index(self) -> usize {
        match self {
            StanzaHookPoint::Outbound => 0,
            StanzaHookPoint::Inbound => 1,
            StanzaHookPoint::Undeliverable => 2,
        }
    }
}

/// Session lifecycle events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionHookPoint {
    /// A resource was bound (RFC 6120 §7).
    Bound,
    /// The session sent its initial presence (RFC 6121 §4.2), after the
    /// outbound hooks and routing of that presence: the moment to send
    /// probes, pending subscription requests and offline messages.
    InitialPresence,
    /// A bound session ended, cleanly or not (stream close, TCP loss,
    /// timeout, replacement). Runs after the session left the registry.
    Closed,
}

/// What a stanza hook decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFlow {
    /// Go on with the next hook, then the router's default.
    Continue,
    /// The hook took care of the stanza (delivered, answered or dropped it).
    Handled,
}

/// A hook on the stanza path.
#[async_trait]
pub trait StanzaHook: Send + Sync {
    /// Looks at (and possibly handles) one stanza.
    async fn on_stanza(&self, server: &Arc<Server>, stanza: &Stanza) -> HookFlow;
}

/// Rewrites stanzas a local client sent, before any [`StanzaHook`] of
/// [`StanzaHookPoint::Outbound`] sees them (e.g. XEP-0398 puts the avatar
/// hash into presence on the user's behalf).
#[async_trait]
pub trait StanzaRewriter: Send + Sync {
    /// The stanza to go on with instead of `stanza`, or `None` to leave it.
    async fn rewrite(&self, server: &Arc<Server>, stanza: &Stanza) -> Option<Stanza>;
}

/// A hook on roster changes (Prosody's `roster-item-changed`): called
/// after an item of a local user's roster was written or removed and the
/// push went out.
#[async_trait]
pub trait RosterHook: Send + Sync {
    /// `item` is the new state of the user's item for `contact`, `None`
    /// when it was removed.
    async fn on_roster_change(
        &self,
        server: &Arc<Server>,
        user: &xmppd_jid::BareJid,
        contact: &str,
        item: Option<&xmppd_storage::RosterItem>,
    );
}

/// A registered roster hook.
pub(crate) struct RosterHookEntry {
    pub(crate) module: &'static str,
    pub(crate) priority: i32,
    pub(crate) hook: Arc<dyn RosterHook>,
}

/// A registered rewriter.
pub(crate) struct RewriterEntry {
    pub(crate) module: &'static str,
    pub(crate) priority: i32,
    pub(crate) kinds: KindSet,
    pub(crate) rewriter: Arc<dyn StanzaRewriter>,
}

/// A hook on session lifecycle events.
#[async_trait]
pub trait SessionHook: Send + Sync {
    /// Called once per event.
    async fn on_session(&self, server: &Arc<Server>, session: &Arc<SessionEntry>);
}

/// A registered stanza hook.
pub(crate) struct StanzaHookEntry {
    pub(crate) module: &'static str,
    pub(crate) priority: i32,
    pub(crate) kinds: KindSet,
    pub(crate) hook: Arc<dyn StanzaHook>,
}

/// A registered session hook.
pub(crate) struct SessionHookEntry {
    pub(crate) module: &'static str,
    pub(crate) priority: i32,
    pub(crate) hook: Arc<dyn SessionHook>,
}

/// The stanza kinds a hook wants to see, so that, say, a presence hook costs
/// the message path nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSet(u8);

impl KindSet {
    /// Messages only.
    pub const MESSAGE: KindSet = KindSet(1);
    /// Presence only.
    pub const PRESENCE: KindSet = KindSet(2);
    /// IQs only.
    pub const IQ: KindSet = KindSet(4);
    /// Every stanza.
    pub const ALL: KindSet = KindSet(7);

    /// The union of two sets.
    #[must_use]
    pub const fn with(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }

    /// Whether the set holds `kind`.
    #[must_use]
    pub fn contains(self, kind: StanzaKind) -> bool {
        let bit = match kind {
            StanzaKind::Message => 1,
            StanzaKind::Presence => 2,
            StanzaKind::Iq => 4,
        };
        self.0 & bit != 0
    }
}

/// Stanza and session hooks of one host.
#[derive(Default)]
pub(crate) struct HookTable {
    stanza: [Vec<StanzaHookEntry>; StanzaHookPoint::COUNT],
    rewriters: Vec<RewriterEntry>,
    roster: Vec<RosterHookEntry>,
    bound: Vec<SessionHookEntry>,
    initial_presence: Vec<SessionHookEntry>,
    closed: Vec<SessionHookEntry>,
}

impl HookTable {
    pub(crate) fn add_stanza(&mut self, point: StanzaHookPoint, entry: StanzaHookEntry) {
        let list = &mut self.stanza[point.index()];
        list.push(entry);
        // Stable: equal priorities keep registration order.
        list.sort_by_key(|e| std::cmp::Reverse(e.priority));
    }

    pub(crate) fn add_rewriter(&mut self, entry: RewriterEntry) {
        self.rewriters.push(entry);
        self.rewriters.sort_by_key(|e| std::cmp::Reverse(e.priority));
    }

    /// The outbound rewriters that want this stanza kind, in order.
    pub(crate) fn rewriters(&self, kind: StanzaKind) -> Vec<Arc<dyn StanzaRewriter>> {
        self.rewriters.iter().filter(|e| e.kinds.contains(kind)).map(|e| e.rewriter.clone()).collect()
    }

    pub(crate) fn add_roster(&mut self, entry: RosterHookEntry) {
        self.roster.push(entry);
        self.roster.sort_by_key(|e| std::cmp::Reverse(e.priority));
    }

    /// The roster hooks, in order.
    pub(crate) fn roster_hooks(&self) -> Vec<Arc<dyn RosterHook>> {
        self.roster.iter().map(|e| e.hook.clone()).collect()
    }

    /// Whether any roster hook is registered.
    pub(crate) fn has_roster_hooks(&self) -> bool {
        !self.roster.is_empty()
    }

    pub(crate) fn add_session(&mut self, point: SessionHookPoint, entry: SessionHookEntry) {
        let list = match point {
            SessionHookPoint::Bound => &mut self.bound,
            SessionHookPoint::InitialPresence => &mut self.initial_presence,
            SessionHookPoint::Closed => &mut self.closed,
        };
        list.push(entry);
        list.sort_by_key(|e| std::cmp::Reverse(e.priority));
    }

    /// The hooks of a point that want this stanza kind, cloned out so that
    /// no lock or borrow is held while they run.
    pub(crate) fn stanza_hooks(&self, point: StanzaHookPoint, kind: StanzaKind) -> Vec<Arc<dyn StanzaHook>> {
        self.stanza[point.index()].iter().filter(|e| e.kinds.contains(kind)).map(|e| e.hook.clone()).collect()
    }

    /// Whether any hook of the point wants this kind (the fast path skips
    /// the call entirely).
    pub(crate) fn has_stanza_hooks(&self, point: StanzaHookPoint, kind: StanzaKind) -> bool {
        self.stanza[point.index()].iter().any(|e| e.kinds.contains(kind))
    }

    pub(crate) fn session_hooks(&self, point: SessionHookPoint) -> Vec<Arc<dyn SessionHook>> {
        let list = match point {
            SessionHookPoint::Bound => &self.bound,
            SessionHookPoint::InitialPresence => &self.initial_presence,
            SessionHookPoint::Closed => &self.closed,
        };
        list.iter().map(|e| e.hook.clone()).collect()
    }

    /// `(point, module, priority)` of every hook, for docs and debugging.
    pub(crate) fn describe(&self) -> Vec<(String, &'static str, i32)> {
        let mut out = Vec::new();
        for e in &self.rewriters {
            out.push(("outbound-rewrite".to_owned(), e.module, e.priority));
        }
        for e in &self.roster {
            out.push(("roster-change".to_owned(), e.module, e.priority));
        }
        for (index, name) in ["outbound", "inbound", "undeliverable"].iter().enumerate() {
            for e in &self.stanza[index] {
                out.push(((*name).to_owned(), e.module, e.priority));
            }
        }
        for e in &self.bound {
            out.push(("session-bound".to_owned(), e.module, e.priority));
        }
        for e in &self.initial_presence {
            out.push(("initial-presence".to_owned(), e.module, e.priority));
        }
        for e in &self.closed {
            out.push(("session-closed".to_owned(), e.module, e.priority));
        }
        out
    }
}
