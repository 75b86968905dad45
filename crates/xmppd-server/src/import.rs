//! `xmppd import FILE`: accounts from a XEP-0227 (PIEFXIS) document.
//!
//! The file is read twice, one user at a time with
//! [`xmppd_migrate::Reader`] (the restricted parser of client streams, so
//! a DTD or an entity is refused):
//!
//! 1. a check of the whole file, writing nothing: a malformed file (not
//!    well-formed, truncated, refused XML, not XEP-0227) stops the command
//!    with `FILE:line:column: message` before anything is written; bad
//!    records (an invalid user, a duplicate account, a host that is not
//!    served, data the stores refuse) are collected;
//! 2. the import: each account that passed is written with
//!    [`AuthStore::import_account`](xmppd_storage::AuthStore::import_account),
//!    in one transaction with all of its data. An account that exists
//!    already is left as it is, so running the same import twice changes
//!    nothing the second time.
//!
//! A duplicate account is skipped as a whole (every record of it): which
//! of them is right cannot be told. Plaintext passwords are turned into
//! SCRAM credentials with the configured iteration count; SCRAM
//! credentials are kept as they are. PEP data and elements the stores have
//! no place for (privacy lists, archives…) are not imported; their count
//! is reported (XEP-0227 §4: ignore, and tell the operator).
//!
//! The storage layout is the one `xmppd export` reads
//! ([`crate::export`]): vCards in store `vcard` under the empty key,
//! private XML in store `private` under `{name} {namespace}`.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use xmppd_core::{Config, Stores};
use xmppd_jid::DomainJid;
use xmppd_migrate::{Error as MigrateError, Password, Reader, Subscription, UserData};
use xmppd_storage::{
    AccountImport, ImportOutcome, PendingIn, RosterItem, StoredCredential, Subscription as StoredSubscription, validate,
};

use crate::storage;

/// The key-value store of XEP-0054 vCards (see [`crate::export`]).
const VCARD_STORE: &str = "vcard";
/// The key-value store of XEP-0049 private XML (see [`crate::export`]).
const PRIVATE_STORE: &str = "private";
/// Users read ahead of the import.
const QUEUE: usize = 64;

/// What an import did, per kind. The data counts are of created accounts
/// only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Accounts created.
    pub created: u64,
    /// Accounts left alone because they exist already.
    pub present: u64,
    /// User records not imported (bad record, duplicate, host not served,
    /// refused by the stores).
    pub skipped: u64,
    /// SCRAM credential sets written.
    pub credentials: u64,
    /// Roster items written.
    pub roster_items: u64,
    /// Pending subscription requests written.
    pub pending_in: u64,
    /// vCards written.
    pub vcards: u64,
    /// Private XML fragments written.
    pub private: u64,
    /// Offline messages written.
    pub offline: u64,
    /// PEP elements not imported.
    pub pep_ignored: u64,
    /// Other user data not imported (privacy lists, archives, unknown
    /// elements).
    pub unsupported_ignored: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} account(s) created, {} already present, {} skipped; {} SCRAM credential(s), {} roster item(s), \
             {} pending subscription request(s), {} vCard(s), {} private XML fragment(s), {} offline message(s)",
            self.created,
            self.present,
            self.skipped,
            self.credentials,
            self.roster_items,
            self.pending_in,
            self.vcards,
            self.private,
            self.offline
        )
    }
}

/// The outcome of the command: the counts and every problem met, in file
/// order as far as possible.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What was done.
    pub counts: Counts,
    /// Records that were skipped, with their location when known.
    pub problems: Vec<String>,
    /// Things that were not imported but did not cause a skip.
    pub warnings: Vec<String>,
}

/// The first pass: what must be skipped.
#[derive(Debug, Default)]
struct Scan {
    /// Users the reader yielded.
    users: u64,
    /// (host, username) of accounts skipped as a whole.
    skip: HashSet<(String, String)>,
    /// User records the reader refused (invalid or duplicate).
    refused: u64,
    /// Users per host that is not served.
    unserved: BTreeMap<String, u64>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

/// `xmppd import FILE`.
pub async fn run(config: &Config, file: &Path) -> Result<(), String> {
    let started = Instant::now();
    let report = import(config, file).await?;
    for problem in &report.problems {
        eprintln!("skipped: {problem}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!("imported {} in {:.2} s: {}", file.display(), started.elapsed().as_secs_f64(), report.counts);
    if report.counts.pep_ignored + report.counts.unsupported_ignored > 0 {
        println!(
            "not imported: {} PEP element(s), {} other element(s) (privacy lists, archives, extensions)",
            report.counts.pep_ignored, report.counts.unsupported_ignored
        );
    }
    if report.counts.skipped > 0 {
        return Err(format!("{} user record(s) skipped (see above)", report.counts.skipped));
    }
    Ok(())
}

/// Checks `file`, then imports it into the configured stores. A malformed
/// file is an `Err` and nothing is written; skipped records are in the
/// [`Report`].
pub async fn import(config: &Config, file: &Path) -> Result<Report, String> {
    std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let served: HashSet<String> = config.server.hosts.iter().cloned().collect();
    let progress = if std::io::stderr().is_terminal() { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    progress.set_message("checking");

    let scan = {
        let path = file.to_owned();
        let served = served.clone();
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || scan(&path, &served, &progress))
            .await
            .map_err(|e| format!("checking {}: {e}", file.display()))??
    };
    progress.finish_and_clear();

    let stores = storage::open(config).await?;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(scan.users);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} accounts ({eta}) {msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut report = Report { problems: scan.problems, warnings: scan.warnings, ..Report::default() };
    report.counts.skipped = scan.refused;
    for (host, users) in &scan.unserved {
        report.counts.skipped += users;
        report.problems.push(format!("host {host} is not served (server.hosts): {users} account(s) skipped"));
    }

    let (sender, mut receiver) = tokio::sync::mpsc::channel(QUEUE);
    let reader_task = {
        let path = file.to_owned();
        tokio::task::spawn_blocking(move || read_users(&path, &sender))
    };
    let iterations = config.auth.scram_iterations;
    while let Some((host, user)) = receiver.recv().await {
        let host: DomainJid = host;
        let user: UserData = user;
        progress.inc(1);
        if scan.unserved.contains_key(host.as_str()) {
            continue;
        }
        if scan.skip.contains(&(host.as_str().to_owned(), user.username.clone())) {
            report.counts.skipped += 1;
            continue;
        }
        if let Err(problem) = import_user(&stores, &host, &user, iterations, &mut report.counts).await {
            report.counts.skipped += 1;
            report.problems.push(format!("{}@{host}: {problem}", user.username));
        }
    }
    progress.finish_and_clear();
    reader_task.await.map_err(|e| format!("reading {}: {e}", file.display()))??;
    Ok(report)
}

/// The first pass over the file: nothing is written.
fn scan(path: &Path, served: &HashSet<String>, progress: &ProgressBar) -> Result<Scan, String> {
    let reader = Reader::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut scan = Scan::default();
    for item in reader {
        progress.tick();
        match item {
            Ok((host, user)) => {
                scan.users += 1;
                if !served.contains(host.as_str()) {
                    *scan.unserved.entry(host.as_str().to_owned()).or_default() += 1;
                    continue;
                }
                if !user.pep.is_empty() || !user.unsupported.is_empty() {
                    scan.warnings.push(format!(
                        "{}@{host}: {} PEP element(s) and {} other element(s) not imported",
                        user.username,
                        user.pep.len(),
                        user.unsupported.len()
                    ));
                }
                // Everything but the password derivation is checked now.
                let checked = account(&user, Vec::new(), 0);
                if let Err(error) = validate::account_import(host.as_str(), &checked) {
                    scan.problems.push(format!("{}@{host}: {error}", user.username));
                    scan.skip.insert((host.as_str().to_owned(), user.username));
                }
            }
            Err(error) if error.is_fatal() => return Err(error.to_string()),
            Err(error) => match &error {
                MigrateError::DuplicateUser { host, user, .. } => {
                    scan.refused += 1;
                    scan.problems.push(format!("{error}: every record of this account is skipped"));
                    scan.skip.insert((host.clone(), user.clone()));
                }
                MigrateError::InvalidUser { host, user, .. } => {
                    scan.refused += 1;
                    scan.problems.push(error.to_string());
                    // Another record of the same name is not trusted either.
                    scan.skip.insert((host.clone(), user.clone()));
                }
                MigrateError::Ignored { .. } => scan.warnings.push(error.to_string()),
                _ => scan.problems.push(error.to_string()),
            },
        }
    }
    Ok(scan)
}

/// The second pass: hands the users to the importer. Record errors were
/// reported by [`scan`]; a fatal error now means the file changed.
fn read_users(path: &Path, sender: &tokio::sync::mpsc::Sender<(DomainJid, UserData)>) -> Result<(), String> {
    let reader = Reader::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    for item in reader {
        match item {
            Ok(user) => {
                if sender.blocking_send(user).is_err() {
                    break;
                }
            }
            Err(error) if error.is_fatal() => {
                return Err(format!("{error} (the file changed since it was checked; the import stopped here)"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// Imports one checked user.
async fn import_user(
    stores: &Stores,
    host: &DomainJid,
    user: &UserData,
    iterations: u32,
    counts: &mut Counts,
) -> Result<(), String> {
    let credentials = match &user.password {
        None => Vec::new(),
        Some(Password::Scram(entries)) => entries
            .iter()
            .map(|entry| StoredCredential {
                mechanism_hash: entry.mechanism_hash.as_str().to_owned(),
                salt: entry.salt.clone(),
                iterations: entry.iterations,
                stored_key: entry.stored_key.clone(),
                server_key: entry.server_key.clone(),
            })
            .collect(),
        Some(Password::Plain(password)) => {
            // Skip the costly derivation for an account that exists.
            if stores.auth.account_exists(host.as_str(), &user.username).await.map_err(|e| e.to_string())? {
                counts.present += 1;
                return Ok(());
            }
            let password = password.clone();
            tokio::task::spawn_blocking(move || xmppd_core::accounts::derive_credentials(&password, iterations))
                .await
                .map_err(|e| format!("deriving SCRAM credentials: {e}"))?
                .map_err(|e| format!("password: {e}"))?
        }
    };
    let data = account(user, credentials, now_ms());
    match stores.auth.import_account(host.as_str(), &data).await.map_err(|e| e.to_string())? {
        ImportOutcome::AlreadyExists => counts.present += 1,
        ImportOutcome::Created => {
            counts.created += 1;
            counts.credentials += data.credentials.len() as u64;
            counts.roster_items += data.roster.len() as u64;
            counts.pending_in += data.pending_in.len() as u64;
            counts.vcards += u64::from(user.vcard.is_some());
            counts.private += user.private.len() as u64;
            counts.offline += data.offline.len() as u64;
            counts.pep_ignored += user.pep.len() as u64;
            counts.unsupported_ignored += user.unsupported.len() as u64;
        }
    }
    Ok(())
}

/// The storage form of one user; offline messages without a stamp get
/// `now_ms`.
pub fn account(user: &UserData, credentials: Vec<StoredCredential>, now_ms: i64) -> AccountImport {
    let roster = user
        .roster
        .iter()
        .map(|entry| RosterItem {
            contact: entry.jid.as_str().to_owned(),
            name: entry.name.clone(),
            subscription: subscription(entry.subscription),
            ask: entry.ask,
            approved: entry.approved,
            groups: entry.groups.clone(),
        })
        .collect();
    let pending_in = user
        .pending_in
        .iter()
        .map(|request| PendingIn {
            contact: request.from.as_str().to_owned(),
            status: request.status.clone(),
            stanza: (!request.stanza.is_empty()).then(|| request.stanza.clone()),
        })
        .collect();
    let mut kv = Vec::with_capacity(user.private.len() + 1);
    if let Some(vcard) = &user.vcard {
        kv.push((VCARD_STORE.to_owned(), String::new(), vcard.to_bytes()));
    }
    for fragment in &user.private {
        // The key xmppd_mods::private uses.
        kv.push((PRIVATE_STORE.to_owned(), format!("{} {}", fragment.name(), fragment.ns()), fragment.to_bytes()));
    }
    let offline = user
        .offline
        .iter()
        .map(|message| (message.stamp.map_or(now_ms, |stamp| stamp.unix_ms()), message.stanza.clone()))
        .collect();
    AccountImport { username: user.username.clone(), credentials, roster, pending_in, kv, offline }
}

fn subscription(value: Subscription) -> StoredSubscription {
    match value {
        Subscription::None => StoredSubscription::None,
        Subscription::To => StoredSubscription::To,
        Subscription::From => StoredSubscription::From,
        Subscription::Both => StoredSubscription::Both,
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_millis()).ok()).unwrap_or(0)
}
