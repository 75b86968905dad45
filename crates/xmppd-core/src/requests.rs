//! IQs the server itself sends and waits for (e.g. a XEP-0115 disco#info
//! query to learn a client's capabilities): ids handed out, answers matched
//! back by id and sender (RFC 6120 §8.2.3).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;
use xmppd_jid::Jid;

use crate::stanza::Stanza;

/// Requests in flight, by id.
#[derive(Default)]
pub(crate) struct PendingIqs {
    next: AtomicU64,
    waiting: Mutex<HashMap<String, (Jid, oneshot::Sender<Stanza>)>>,
}

impl PendingIqs {
    /// A fresh id for a request to `to`, and where its answer will arrive.
    pub(crate) fn register(&self, to: Jid) -> (String, oneshot::Receiver<Stanza>) {
        let id = format!("xmppd-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(id.clone(), (to, sender));
        (id, receiver)
    }

    /// Drops a request (answered or timed out).
    pub(crate) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Hands a result or error to the request it answers, if its id is one
    /// of ours and it comes from the entity the request went to (anyone
    /// else could guess an id); otherwise it is consumed silently.
    pub(crate) fn answer(&self, stanza: Stanza) {
        let Some(id) = stanza.id() else { return };
        let mut waiting = self.lock();
        if waiting.get(id).is_some_and(|(to, _)| to == stanza.from())
            && let Some((_, sender)) = waiting.remove(id)
        {
            drop(waiting);
            // The requester may have timed out meanwhile: nothing to do.
            let _ = sender.send(stanza);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Jid, oneshot::Sender<Stanza>)>> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Forgets a request when dropped (answered, timed out, or the waiting
/// future cancelled), so that no entry outlives its caller.
pub(crate) struct Forget<'a> {
    pub(crate) pending: &'a PendingIqs,
    pub(crate) id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pending.forget(self.id);
    }
}
