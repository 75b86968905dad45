//! Decoding of roster rows, shared by both dialects (the queries differ
//! only in how they are run, not in the columns they return).

use std::collections::HashMap;

use xmppd_storage::{RosterItem, StorageError, Subscription};

/// `SELECT contact, name, subscription, ask, approved FROM roster_items`.
pub(crate) type ItemRow = (String, Option<String>, String, bool, bool);

/// `SELECT contact, name FROM roster_groups ORDER BY contact, position`.
pub(crate) type GroupRow = (String, String);

/// Builds roster items from their rows (already in the order to return) and
/// the rows of their groups (in `position` order per contact).
pub(crate) fn roster_items(items: Vec<ItemRow>, groups: Vec<GroupRow>) -> Result<Vec<RosterItem>, StorageError> {
    let mut decoded = Vec::with_capacity(items.len());
    let mut index = HashMap::with_capacity(items.len());
    for (contact, name, subscription, ask, approved) in items {
        let subscription = Subscription::parse(&subscription)
            .ok_or_else(|| StorageError::Corrupt(format!("unknown roster subscription {subscription:?}")))?;
        index.insert(contact.clone(), decoded.len());
        decoded.push(RosterItem { contact, name, subscription, ask, approved, groups: Vec::new() });
    }
    for (contact, group) in groups {
        // The foreign key keeps groups from outliving their item, and both
        // queries read the same snapshot.
        let item = index
            .get(&contact)
            .and_then(|&i| decoded.get_mut(i))
            .ok_or_else(|| StorageError::Corrupt(format!("roster group without an item for {contact:?}")))?;
        item.groups.push(group);
    }
    Ok(decoded)
}
