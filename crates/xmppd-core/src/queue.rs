//! The bounded outbound queue of one session.
//!
//! Local delivery is a direct push onto this queue (no bus, no task hop).
//! It is a `VecDeque` behind a mutex plus a [`Notify`] rather than a tokio
//! mpsc channel because an idle session must cost as few bytes as possible:
//! an empty `VecDeque` holds no heap block, and the queue gives its memory
//! back once drained.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;
use xmppd_proto::StreamErrorCondition;

/// An item for a session's writer.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Serialised stanza bytes, ready for the wire (shared, not copied).
    Stanza(Bytes),
    /// Close the stream with this error (e.g. `conflict` when another
    /// session took the resource, `system-shutdown`).
    Close(StreamErrorCondition, Option<&'static str>),
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The session is not draining its queue fast enough.
    Full,
    /// The session is gone.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Outbound>,
    closed: bool,
}

/// A bounded multi-producer, single-consumer queue with async wake-up.
#[derive(Debug)]
pub struct SessionQueue {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

impl SessionQueue {
    /// A queue holding at most `capacity` stanzas (close requests always fit).
    pub fn new(capacity: usize) -> Self {
        SessionQueue { state: Mutex::new(State::default()), notify: Notify::new(), capacity }
    }

    /// Appends an item and wakes the consumer.
    pub fn push(&self, item: Outbound) -> Result<(), PushError> {
        {
            let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.closed {
                return Err(PushError::Closed);
            }
            let is_close = matches!(item, Outbound::Close(..));
            if !is_close && state.items.len() >= self.capacity {
                return Err(PushError::Full);
            }
            state.items.push_back(item);
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Moves every queued item into `out`, releasing the queue's memory.
    pub fn drain_into(&self, out: &mut Vec<Outbound>) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        out.extend(state.items.drain(..));
        if state.items.capacity() > 0 {
            state.items = VecDeque::new();
        }
    }

    /// Waits until something may have been pushed.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Refuses further pushes (the session is ending).
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.closed = true;
        state.items = VecDeque::new();
    }

    /// Whether the session has stopped accepting items.
    pub fn is_closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_but_close_always_fits() {
        let queue = SessionQueue::new(2);
        assert!(queue.push(Outbound::Stanza(Bytes::from_static(b"a"))).is_ok());
        assert!(queue.push(Outbound::Stanza(Bytes::from_static(b"b"))).is_ok());
        assert_eq!(queue.push(Outbound::Stanza(Bytes::from_static(b"c"))), Err(PushError::Full));
        assert!(queue.push(Outbound::Close(StreamErrorCondition::Conflict, None)).is_ok());
        let mut out = Vec::new();
        queue.drain_into(&mut out);
        assert_eq!(out.len(), 3);
        queue.close();
        assert_eq!(queue.push(Outbound::Stanza(Bytes::new())), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn wakes_the_consumer() {
        let queue = std::sync::Arc::new(SessionQueue::new(4));
        let consumer = {
            let queue = queue.clone();
            tokio::spawn(async move {
                queue.wait().await;
                let mut out = Vec::new();
                queue.drain_into(&mut out);
                out.len()
            })
        };
        tokio::task::yield_now().await;
        assert!(queue.push(Outbound::Stanza(Bytes::from_static(b"x"))).is_ok());
        assert_eq!(consumer.await.ok(), Some(1));
    }
}
