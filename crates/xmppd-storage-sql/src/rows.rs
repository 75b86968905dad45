//! Roster rows, shared by both dialects: decoding (the queries differ only
//! in how they are run, not in the columns they return) and the row order of
//! a roster import.

use std::collections::HashMap;

use xmppd_storage::{ImportedRoster, RosterChange, RosterItem, StorageError, Subscription};

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

/// The rows of a roster import in key order: users by name (byte order),
/// each user's items by contact; users without items are left out. Writing
/// in primary-key order appends to the indexes instead of splitting pages
/// all over them, and gives every import the same lock order.
pub(crate) fn sorted_import(rosters: &[ImportedRoster]) -> Vec<(&str, &RosterItem)> {
    let mut users: Vec<&ImportedRoster> = rosters.iter().filter(|(_, items)| !items.is_empty()).collect();
    users.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut rows = Vec::with_capacity(users.iter().map(|(_, items)| items.len()).sum());
    for (user, items) in users {
        let start = rows.len();
        rows.extend(items.iter().map(|item| (user.as_str(), item)));
        if let Some(mine) = rows.get_mut(start..) {
            mine.sort_unstable_by(|a, b| a.1.contact.cmp(&b.1.contact));
        }
    }
    rows
}

/// The changes of [`RosterStore::changes_since`](xmppd_storage::RosterStore::changes_since)
/// from the current items, the (contact, version) of the items written
/// after the asked version and of the contacts removed after it, in
/// version order.
pub(crate) fn roster_changes(
    items: Vec<RosterItem>,
    written: Vec<(String, i64)>,
    removed: Vec<(String, i64)>,
) -> Result<Vec<RosterChange>, StorageError> {
    let version = |v: i64| u64::try_from(v).map_err(|_| StorageError::Corrupt(format!("roster version {v}")));
    let mut by_contact: HashMap<String, RosterItem> = items.into_iter().map(|i| (i.contact.clone(), i)).collect();
    let mut changes = Vec::with_capacity(written.len() + removed.len());
    for (contact, v) in written {
        let item = by_contact
            .remove(&contact)
            .ok_or_else(|| StorageError::Corrupt(format!("roster item {contact:?} vanished in a snapshot")))?;
        changes.push(RosterChange::Put { version: version(v)?, item });
    }
    for (contact, v) in removed {
        changes.push(RosterChange::Removed { version: version(v)?, contact });
    }
    changes.sort_by_key(RosterChange::version);
    Ok(changes)
}
