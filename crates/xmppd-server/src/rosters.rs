//! `xmppd roster …`: roster provisioning.
//!
//! `xmppd roster import` reads one roster item per line from standard input,
//!
//! ```text
//! user@host contact@domain [subscription] [name]
//! ```
//!
//! where `user@host` is a local account, `contact@domain` any bare JID
//! (RFC 7622), `subscription` one of `none`, `to`, `from`, `both` (RFC 6121
//! §2.1.2.5; default `both`) and `name` the rest of the line (the handle,
//! RFC 6121 §2.1.2.4; it may hold spaces, and needs the subscription written
//! out before it). Blank lines and lines starting with `#` are skipped.
//!
//! Every line is checked before anything is written; with any bad line the
//! command prints each one with its line number and exits non-zero without
//! writing. Otherwise the items are grouped by user and written with one
//! [`RosterStore::import_rosters`](xmppd_storage::RosterStore::import_rosters)
//! call (one transaction) per host: an item replaces the user's item for the
//! same contact, other items stay, each user's roster version is bumped once.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::time::Instant;

use xmppd_core::Config;
use xmppd_jid::BareJid;
use xmppd_storage::{ImportedRoster, RosterItem, Subscription, validate};

use crate::storage;

/// Bad lines printed one by one; the rest are only counted.
pub const MAX_REPORTED_LINES: usize = 100;

/// One parsed input line: the owner's host and username, and the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    /// The owner's host (a configured one).
    pub host: String,
    /// The owner's username (localpart).
    pub user: String,
    /// The item, `contact` normalized; `ask` and `approved` are false and
    /// there are no groups.
    pub item: RosterItem,
}

/// Good lines by host, then user (both sorted): each item with its line
/// number.
pub type ByOwner = BTreeMap<String, BTreeMap<String, Vec<(usize, RosterItem)>>>;

/// Everything read from the input: good lines grouped by owner, and bad
/// ones with their line numbers (from 1).
#[derive(Debug, Default)]
pub struct ParsedInput {
    /// The good lines.
    pub rosters: ByOwner,
    /// The bad lines: line number and what is wrong.
    pub bad: Vec<(usize, String)>,
}

impl ParsedInput {
    /// How many good lines there are.
    #[must_use]
    pub fn items(&self) -> usize {
        self.rosters.values().flat_map(BTreeMap::values).map(Vec::len).sum()
    }

    /// The rosters to import, per host, without line numbers.
    #[must_use]
    pub fn into_rosters(self) -> BTreeMap<String, Vec<ImportedRoster>> {
        self.rosters
            .into_iter()
            .map(|(host, users)| {
                let rosters = users
                    .into_iter()
                    .map(|(user, items)| (user, items.into_iter().map(|(_, item)| item).collect()))
                    .collect();
                (host, rosters)
            })
            .collect()
    }
}

/// Splits off the first whitespace-separated field of `text`; returns it
/// and the text after it.
fn field(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    Some(text.split_once(char::is_whitespace).unwrap_or((text, "")))
}

/// Parses one line (already known not to be blank or a comment).
/// `hosts` are the configured hosts.
pub fn parse_line(hosts: &[String], line: &str) -> Result<ImportLine, String> {
    let Some((owner, rest)) = field(line) else {
        return Err("expected `user@host contact [subscription] [name]`".into());
    };
    let Some((contact, rest)) = field(rest) else {
        return Err("missing contact (expected `user@host contact [subscription] [name]`)".into());
    };
    let (subscription, name) = match field(rest) {
        None => (Subscription::Both, None),
        Some((word, rest)) => {
            let Some(subscription) = Subscription::parse(word) else {
                return Err(format!(
                    "`{word}` is not a subscription (none, to, from or both; it must come before a name)"
                ));
            };
            let name = rest.trim();
            (subscription, (!name.is_empty()).then(|| name.to_owned()))
        }
    };
    let owner: BareJid = owner.parse().map_err(|e| format!("`{owner}` is not a valid bare JID: {e}"))?;
    let Some(user) = owner.node() else {
        return Err(format!("`{owner}` has no localpart (expected user@host)"));
    };
    if !hosts.iter().any(|host| host == owner.domain()) {
        return Err(format!("`{}` is not a configured host (server.hosts)", owner.domain()));
    }
    let contact: BareJid = contact.parse().map_err(|e| format!("`{contact}` is not a valid bare JID: {e}"))?;
    if contact == owner {
        return Err(format!("`{owner}` cannot be a contact of itself"));
    }
    let item = RosterItem { contact: contact.as_str().to_owned(), name, subscription, ..RosterItem::default() };
    validate::roster_item(&item).map_err(|e| e.to_string())?;
    Ok(ImportLine { host: owner.domain().to_owned(), user: user.to_owned(), item })
}

/// Reads and checks the whole input: every line is parsed, and a (user,
/// contact) pair given again is a bad line naming the first one. Each user's
/// items come out sorted by contact.
pub fn read_input(hosts: &[String], mut input: impl BufRead) -> Result<ParsedInput, String> {
    let mut parsed = ParsedInput::default();
    let mut buffer = Vec::new();
    let mut number = 0;
    loop {
        buffer.clear();
        if input.read_until(b'\n', &mut buffer).map_err(|e| format!("reading stdin: {e}"))? == 0 {
            break;
        }
        number += 1;
        let Ok(line) = std::str::from_utf8(&buffer) else {
            parsed.bad.push((number, "not UTF-8".into()));
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(hosts, line) {
            Ok(ImportLine { host, user, item }) => {
                parsed.rosters.entry(host).or_default().entry(user).or_default().push((number, item));
            }
            Err(message) => parsed.bad.push((number, message)),
        }
    }
    // Duplicates by sorting each user's items rather than with a set of
    // every (host, user, contact): millions of lines stay cheap.
    for (host, users) in &mut parsed.rosters {
        for (user, items) in users.iter_mut() {
            items.sort_unstable_by(|a, b| a.1.contact.cmp(&b.1.contact).then(a.0.cmp(&b.0)));
            let mut kept: Vec<(usize, RosterItem)> = Vec::with_capacity(items.len());
            for (number, item) in items.drain(..) {
                match kept.last() {
                    Some((first, previous)) if previous.contact == item.contact => {
                        parsed.bad.push((number, format!("{user}@{host} has {} already (line {first})", item.contact)));
                    }
                    _ => kept.push((number, item)),
                }
            }
            *items = kept;
        }
    }
    Ok(parsed)
}

/// Prints the bad lines (at most [`MAX_REPORTED_LINES`]) to stderr and
/// returns the error that ends the command.
fn refuse(mut bad: Vec<(usize, String)>) -> String {
    bad.sort_by_key(|(number, _)| *number);
    for (number, message) in bad.iter().take(MAX_REPORTED_LINES) {
        eprintln!("line {number}: {message}");
    }
    if bad.len() > MAX_REPORTED_LINES {
        eprintln!("… and {} more bad line(s)", bad.len() - MAX_REPORTED_LINES);
    }
    format!("{} bad line(s); nothing was imported", bad.len())
}

/// `xmppd roster import`.
pub async fn import(config: &Config) -> Result<(), String> {
    let hosts = config.server.hosts.clone();
    let mut parsed = tokio::task::spawn_blocking(move || read_input(&hosts, std::io::stdin().lock()))
        .await
        .map_err(|e| format!("reading stdin: {e}"))??;
    let stores = storage::open(config).await?;

    // Rosters only for accounts that exist: a roster left for a missing
    // account would be inherited by whoever registers the name later.
    for (host, users) in &parsed.rosters {
        let known: HashSet<String> =
            stores.auth.list_accounts(host).await.map_err(|e| format!("{host}: {e}"))?.into_iter().collect();
        for (user, items) in users.iter().filter(|(user, _)| !known.contains(*user)) {
            parsed.bad.extend(items.iter().map(|(number, _)| (*number, format!("no account {user}@{host}"))));
        }
    }
    if !parsed.bad.is_empty() {
        return Err(refuse(parsed.bad));
    }

    let started = Instant::now();
    let (items, mut users) = (parsed.items(), 0);
    let by_host = parsed.into_rosters();
    let host_count = by_host.len();
    for (host, rosters) in by_host {
        stores.roster.import_rosters(&host, &rosters).await.map_err(|e| format!("{host}: {e}"))?;
        users += rosters.len();
    }
    println!(
        "imported {items} roster item(s) for {users} user(s) on {host_count} host(s) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["localhost".into(), "example.test".into()]
    }

    #[test]
    fn lines_with_defaults_and_names() {
        let line = parse_line(&hosts(), "Juliet@LocalHost romeo@example.net").unwrap();
        assert_eq!((line.host.as_str(), line.user.as_str()), ("localhost", "juliet"));
        assert_eq!(
            line.item,
            RosterItem {
                contact: "romeo@example.net".into(),
                subscription: Subscription::Both,
                ..RosterItem::default()
            }
        );
        let line = parse_line(&hosts(), "juliet@example.test  nurse@example.net\tto  The Nurse ").unwrap();
        assert_eq!(line.item.subscription, Subscription::To);
        assert_eq!(line.item.name.as_deref(), Some("The Nurse"));
        let line = parse_line(&hosts(), "juliet@localhost example.net none").unwrap();
        assert_eq!(
            (line.item.contact.as_str(), line.item.subscription, line.item.name),
            ("example.net", Subscription::None, None)
        );
    }

    #[test]
    fn bad_lines() {
        for (line, expected) in [
            ("juliet@localhost", "missing contact"),
            ("juliet@localhost romeo@example.net Romeo", "not a subscription"),
            ("juliet@localhost romeo@example.net remove", "not a subscription"),
            ("localhost romeo@example.net", "no localpart"),
            ("juliet@elsewhere romeo@example.net", "not a configured host"),
            ("juliet@localhost/phone romeo@example.net", "not a valid bare JID"),
            ("juliet@localhost romeo@example.net/balcony", "not a valid bare JID"),
            ("juliet@localhost @example.net", "not a valid bare JID"),
            ("juliet@localhost JULIET@localhost", "itself"),
        ] {
            let error = parse_line(&hosts(), line).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
        let long_name = format!("juliet@localhost romeo@example.net both {}", "n".repeat(1024));
        assert!(parse_line(&hosts(), &long_name).is_err());
    }

    #[test]
    fn input_is_checked_as_a_whole() {
        let input = b"# rosters\n\njuliet@localhost romeo@example.net\nbad line\n\
            juliet@localhost Romeo@example.net from\nromeo@example.test juliet@localhost\n\xff\xfe\n"
            as &[u8];
        let parsed = read_input(&hosts(), input).unwrap();
        assert_eq!(parsed.items(), 2);
        let mut bad = parsed.bad.clone();
        bad.sort();
        assert_eq!(bad.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [4, 5, 7]);
        assert!(bad[0].1.contains("expected"), "{bad:?}");
        assert_eq!(bad[1].1, "juliet@localhost has romeo@example.net already (line 3)");
        assert_eq!(bad[2].1, "not UTF-8");

        let grouped = parsed.into_rosters();
        assert_eq!(grouped.keys().collect::<Vec<_>>(), ["example.test", "localhost"]);
        assert_eq!(grouped["localhost"].len(), 1);
        assert_eq!(grouped["localhost"][0].0, "juliet");
        assert_eq!(grouped["example.test"][0].1[0].contact, "juliet@localhost");
    }
}
