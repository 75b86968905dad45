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
//! 2. the import: the accounts that passed are written in batches (up to
//!    [`BATCH_ACCOUNTS`] accounts or about [`BATCH_BYTES`] of data, one
//!    host each) with
//!    [`AuthStore::import_accounts`](xmppd_storage::AuthStore::import_accounts):
//!    one transaction per batch, and within it each account all or nothing
//!    with all of its data. An account that exists already is left as it
//!    is, so running the same import twice changes nothing the second time.
//!
//! A duplicate account is skipped as a whole (every record of it): which
//! of them is right cannot be told. Plaintext passwords are turned into
//! SCRAM credentials with the configured iteration count (on blocking
//! threads, a batch's passwords spread over the cores); SCRAM
//! credentials are kept as they are. PEP nodes (XEP-0227 §4.10) are
//! imported with their configuration (the `pubsub#node_config` form read
//! with [`xmppd_pubsub::config::apply_form`], unknown options ignored as
//! §4.10.1 asks) and items; a node whose configuration has a value xmppd
//! refuses, or an item without an id, is skipped with its location and the
//! rest of the account is imported. Elements the stores have no place for
//! (privacy lists, archives, PEP affiliations and subscriptions…) are not
//! imported; their count is reported (XEP-0227 §4: ignore, and tell the
//! operator).
//!
//! The storage layout is the one `xmppd export` reads
//! ([`crate::export`]): vCards in store `vcard` under the empty key,
//! private XML in store `private` under `{name} {namespace}`, PEP nodes in
//! the pubsub store with item payloads serialised with their `xmlns`.
//! XEP-0227 carries no publication time: such items get time 0, in file
//! order (oldest first).

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use xmppd_core::{Config, Stores};
use xmppd_jid::DomainJid;
use xmppd_migrate::{
    DataForm, Error as MigrateError, Password, PepNode, Reader, ReaderOptions, Subscription, UserData,
};
use xmppd_pubsub::config::{Strictness, apply_form};
use xmppd_storage::{
    AccountImport, ImportOutcome, ImportedNode, NodeConfig, PendingIn, PubsubItem, RosterItem, StoredCredential,
    Subscription as StoredSubscription, validate,
};

use crate::data_counts::DataCounts;
use crate::storage;

/// The key-value stores of XEP-0054 vCards and XEP-0049 private XML, as
/// the modules keep them.
const VCARD_STORE: &str = xmppd_mods::vcard::STORE;
const PRIVATE_STORE: &str = xmppd_mods::private::STORE;
/// Users read ahead of the import.
const QUEUE: usize = 64;
/// Accounts per [`AuthStore::import_accounts`](xmppd_storage::AuthStore::import_accounts)
/// batch: one transaction each.
const BATCH_ACCOUNTS: usize = 500;
/// A batch is written once its data reaches this many bytes (roughly),
/// even with fewer than [`BATCH_ACCOUNTS`] accounts.
const BATCH_BYTES: usize = 8 << 20;
/// The highest `pubsub#max_items` an imported node keeps (larger values
/// are capped to it).
const MAX_ITEMS_LIMIT: u32 = 1000;

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
    /// The data of the created accounts, per kind.
    pub data: DataCounts,
    /// Records inside user records that were skipped (PEP nodes and items
    /// the reader or the stores refuse); the rest of their account was
    /// imported.
    pub records_skipped: u64,
    /// Other user data not imported (privacy lists, archives, PEP
    /// affiliations and subscriptions, unknown elements).
    pub unsupported_ignored: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} account(s) created, {} already present, {} skipped; {}",
            self.created, self.present, self.skipped, self.data
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
    /// Records of users skipped (the rest of the user is imported).
    records_skipped: u64,
    problems: Vec<String>,
    warnings: Vec<String>,
}

/// What `xmppd import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// A XEP-0227 (PIEFXIS) file.
    Xep0227,
    /// ejabberd's `ejabberdctl export_piefxis` output: XEP-0227 with
    /// ejabberd's variants (read by the same reader).
    Ejabberd,
    /// Prosody's data directory (internal file storage).
    Prosody,
}

/// The users of a source, one at a time.
type Users = Box<dyn Iterator<Item = Result<(DomainJid, UserData), MigrateError>> + Send>;

fn open_source(source: Source, path: &Path) -> Result<Users, String> {
    let check: xmppd_migrate::NodeConfigCheck = |form| node_config(form).map(|_| ());
    let opened: Result<Users, MigrateError> = match source {
        Source::Xep0227 | Source::Ejabberd => Reader::open(path).map(|reader| {
            let options = ReaderOptions { check_node_config: Some(check), ..ReaderOptions::default() };
            Box::new(reader.with_options(options)) as Users
        }),
        Source::Prosody => xmppd_migrate::prosody::ProsodyReader::open(path)
            .map(|reader| Box::new(reader.with_node_config_check(check)) as Users),
    };
    opened.map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// `xmppd import [--from SOURCE] PATH`.
pub async fn run(config: &Config, file: &Path) -> Result<(), String> {
    run_from(config, Source::Xep0227, file).await
}

/// `xmppd import --from SOURCE PATH`.
pub async fn run_from(config: &Config, source: Source, file: &Path) -> Result<(), String> {
    let started = Instant::now();
    let report = import_from(config, source, file).await?;
    for problem in &report.problems {
        eprintln!("skipped: {problem}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!("imported {} in {:.2} s: {}", file.display(), started.elapsed().as_secs_f64(), report.counts);
    if report.counts.unsupported_ignored > 0 {
        println!(
            "not imported: {} element(s) (privacy lists, archives, PEP affiliations and subscriptions, extensions)",
            report.counts.unsupported_ignored
        );
    }
    match (report.counts.skipped, report.counts.records_skipped) {
        (0, 0) => {}
        (users, 0) => return Err(format!("{users} user record(s) skipped (see above)")),
        (users, records) => {
            return Err(format!("{users} user record(s) and {records} PEP record(s) skipped (see above)"));
        }
    }
    Ok(())
}

/// Checks `file`, then imports it into the configured stores. A malformed
/// file is an `Err` and nothing is written; skipped records are in the
/// [`Report`].
pub async fn import(config: &Config, file: &Path) -> Result<Report, String> {
    import_from(config, Source::Xep0227, file).await
}

/// [`import`] from any [`Source`].
pub async fn import_from(config: &Config, source: Source, file: &Path) -> Result<Report, String> {
    if source != Source::Prosody {
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    }
    let served: HashSet<String> = config.server.hosts.iter().cloned().collect();
    let progress = if std::io::stderr().is_terminal() { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    progress.set_message("checking");

    let scan = {
        let path = file.to_owned();
        let served = served.clone();
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || scan(source, &path, &served, &progress))
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
    report.counts.records_skipped = scan.records_skipped;
    for (host, users) in &scan.unserved {
        report.counts.skipped += users;
        report.problems.push(format!("host {host} is not served (server.hosts): {users} account(s) skipped"));
    }

    let (sender, mut receiver) = tokio::sync::mpsc::channel(QUEUE);
    let reader_task = {
        let path = file.to_owned();
        tokio::task::spawn_blocking(move || read_users(source, &path, &sender))
    };
    let iterations = config.auth.scram_iterations;
    let mut batch = Batch::default();
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
        if batch.host.as_ref().is_some_and(|batch_host| *batch_host != host) {
            import_batch(&stores, std::mem::take(&mut batch), iterations, &mut report).await;
        }
        batch.push(host, user);
        if batch.is_full() {
            import_batch(&stores, std::mem::take(&mut batch), iterations, &mut report).await;
        }
    }
    import_batch(&stores, batch, iterations, &mut report).await;
    progress.finish_and_clear();
    reader_task.await.map_err(|e| format!("reading {}: {e}", file.display()))??;
    Ok(report)
}

/// The first pass over the file: nothing is written.
fn scan(source: Source, path: &Path, served: &HashSet<String>, progress: &ProgressBar) -> Result<Scan, String> {
    let reader = open_source(source, path)?;
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
                if !user.unsupported.is_empty() {
                    scan.warnings.push(format!(
                        "{}@{host}: {} element(s) not imported",
                        user.username,
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
                MigrateError::InvalidRecord { .. } => {
                    scan.records_skipped += 1;
                    scan.problems.push(error.to_string());
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
fn read_users(
    source: Source,
    path: &Path,
    sender: &tokio::sync::mpsc::Sender<(DomainJid, UserData)>,
) -> Result<(), String> {
    let reader = open_source(source, path)?;
    for item in reader {
        match item {
            Ok((host, mut user)) => {
                // A profile kept as vCard4 and avatar PEP nodes (Prosody's
                // mod_vcard_legacy) also becomes the vcard-temp.
                if user.vcard.is_none() {
                    user.vcard = xmppd_migrate::vcard4::vcard_temp_from_pep(&user);
                }
                if sender.blocking_send((host, user)).is_err() {
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

/// Checked users of one host, written together with
/// [`AuthStore::import_accounts`](xmppd_storage::AuthStore::import_accounts):
/// one transaction (and one `fsync`) per batch instead of per account.
#[derive(Default)]
struct Batch {
    host: Option<DomainJid>,
    users: Vec<UserData>,
    /// A rough size of the batch's data, in bytes.
    bytes: usize,
}

impl Batch {
    fn push(&mut self, host: DomainJid, user: UserData) {
        self.bytes += approximate_size(&user);
        self.host = Some(host);
        self.users.push(user);
    }

    fn is_full(&self) -> bool {
        self.users.len() >= BATCH_ACCOUNTS || self.bytes >= BATCH_BYTES
    }
}

/// A rough size of what a user's import writes, in bytes.
fn approximate_size(user: &UserData) -> usize {
    let roster: usize = user
        .roster
        .iter()
        .map(|entry| 64 + entry.jid.as_str().len() + entry.groups.iter().map(String::len).sum::<usize>())
        .sum();
    let pending: usize = user.pending_in.iter().map(|request| 64 + request.stanza.len()).sum();
    let offline: usize = user.offline.iter().map(|message| 32 + message.stanza.len()).sum();
    let vcard = user.vcard.as_ref().map_or(0, |vcard| vcard.to_bytes().len());
    let private: usize = user.private.iter().map(|fragment| fragment.to_bytes().len()).sum();
    let pep: usize = user
        .pep
        .iter()
        .map(|node| {
            256 + node
                .items
                .iter()
                .map(|item| 64 + item.id.len() + item.payload.as_ref().map_or(0, |payload| payload.to_bytes().len()))
                .sum::<usize>()
        })
        .sum();
    256 + roster + pending + offline + vcard + private + pep
}

/// The result of one user of a batch before the write: its data, or why
/// it is not written.
enum Prepared {
    Ready(AccountImport),
    /// It has a plaintext password and exists already: not derived.
    Present,
    Failed(String),
}

/// Imports one batch of checked users of one host, updating the counts
/// and problems exactly as one import per user would.
async fn import_batch(stores: &Stores, batch: Batch, iterations: u32, report: &mut Report) {
    let Some(host) = batch.host else {
        return;
    };
    let users = batch.users;
    let mut prepared = Vec::with_capacity(users.len());
    // Plaintext passwords of accounts that do not exist yet, as (index in
    // `users`, password), derived below.
    let mut to_derive = Vec::new();
    let now = now_ms();
    for (index, user) in users.iter().enumerate() {
        prepared.push(match &user.password {
            None => Prepared::Ready(account(user, Vec::new(), now)),
            Some(Password::Scram(entries)) => {
                let credentials = entries
                    .iter()
                    .map(|entry| StoredCredential {
                        mechanism_hash: entry.mechanism_hash.as_str().to_owned(),
                        salt: entry.salt.clone(),
                        iterations: entry.iterations,
                        stored_key: entry.stored_key.clone(),
                        server_key: entry.server_key.clone(),
                    })
                    .collect();
                Prepared::Ready(account(user, credentials, now))
            }
            // Skip the costly derivation for an account that exists.
            Some(Password::Plain(password)) => match stores.auth.account_exists(host.as_str(), &user.username).await {
                Ok(true) => Prepared::Present,
                Ok(false) => {
                    to_derive.push((index, password.clone()));
                    Prepared::Ready(account(user, Vec::new(), now))
                }
                Err(error) => Prepared::Failed(error.to_string()),
            },
        });
    }
    if !to_derive.is_empty() {
        let indices: Vec<usize> = to_derive.iter().map(|(index, _)| *index).collect();
        match derive_all(to_derive, iterations).await {
            Ok(derived) => {
                for (index, credentials) in derived {
                    match (credentials, &mut prepared[index]) {
                        (Ok(credentials), Prepared::Ready(data)) => data.credentials = credentials,
                        (Err(problem), slot) => *slot = Prepared::Failed(problem),
                        (Ok(_), _) => {}
                    }
                }
            }
            Err(problem) => {
                for index in indices {
                    prepared[index] = Prepared::Failed(problem.clone());
                }
            }
        }
    }

    // The accounts to write, and where each outcome goes.
    let mut ready = Vec::new();
    let mut slots = Vec::new();
    for (index, slot) in prepared.iter_mut().enumerate() {
        if let Prepared::Ready(data) = slot {
            ready.push(std::mem::take(data));
            slots.push(index);
        }
    }
    let mut outcomes: Vec<Option<Result<ImportOutcome, String>>> = (0..users.len()).map(|_| None).collect();
    if !ready.is_empty() {
        match stores.auth.import_accounts(host.as_str(), &ready).await {
            Ok(results) => {
                for ((index, result), data) in slots.iter().zip(results).zip(&ready) {
                    if let Ok(ImportOutcome::Created) = result {
                        report.counts.data.credentials += data.credentials.len() as u64;
                        report.counts.data.roster_items += data.roster.len() as u64;
                        report.counts.data.pending_in += data.pending_in.len() as u64;
                        report.counts.data.offline += data.offline.len() as u64;
                        report.counts.data.pep_nodes += data.pep.len() as u64;
                        report.counts.data.pep_items +=
                            data.pep.iter().map(|node| node.items.len() as u64).sum::<u64>();
                    }
                    outcomes[*index] = Some(result.map_err(|e| e.to_string()));
                }
            }
            Err(error) => {
                for index in &slots {
                    outcomes[*index] = Some(Err(error.to_string()));
                }
            }
        }
    }

    let counts = &mut report.counts;
    for ((user, slot), outcome) in users.iter().zip(prepared).zip(outcomes) {
        let result = match slot {
            Prepared::Present => Ok(ImportOutcome::AlreadyExists),
            Prepared::Failed(problem) => Err(problem),
            Prepared::Ready(_) => outcome.unwrap_or_else(|| Err("not written".to_owned())),
        };
        match result {
            Ok(ImportOutcome::AlreadyExists) => counts.present += 1,
            Ok(ImportOutcome::Created) => {
                counts.created += 1;
                counts.data.vcards += u64::from(user.vcard.is_some());
                counts.data.private += user.private.len() as u64;
                counts.unsupported_ignored += user.unsupported.len() as u64;
            }
            Err(problem) => {
                counts.skipped += 1;
                report.problems.push(format!("{}@{host}: {problem}", user.username));
            }
        }
    }
}

/// Derives SCRAM credentials for `(index, password)` pairs on blocking
/// threads, split across the available cores. Each result is the
/// credentials or the problem to report for that user.
async fn derive_all(
    passwords: Vec<(usize, String)>,
    iterations: u32,
) -> Result<Vec<(usize, Result<Vec<StoredCredential>, String>)>, String> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let chunk = passwords.len().div_ceil(threads).max(1);
    tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let workers: Vec<_> = passwords
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(index, password)| {
                                let derived = xmppd_core::accounts::derive_credentials(password, iterations)
                                    .map_err(|e| format!("password: {e}"));
                                (*index, derived)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut derived = Vec::new();
            for worker in workers {
                derived.extend(worker.join().map_err(|_| "deriving SCRAM credentials: a thread panicked".to_owned())?);
            }
            Ok(derived)
        })
    })
    .await
    .map_err(|e| format!("deriving SCRAM credentials: {e}"))?
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
        kv.push((PRIVATE_STORE.to_owned(), xmppd_mods::private::storage_key(fragment), fragment.to_bytes()));
    }
    let offline = user
        .offline
        .iter()
        .map(|message| (message.stamp.map_or(now_ms, |stamp| stamp.unix_ms()), message.stanza.clone()))
        .collect();
    // Nodes whose configuration is refused were reported and left out by
    // the reader (`NodeConfigCheck`); this filter only matters for callers
    // that read without the check.
    let pep = user.pep.iter().filter_map(|node| pep_node(node).ok()).collect();
    AccountImport { username: user.username.clone(), credentials, roster, pending_in, kv, offline, pep }
}

/// A node configuration form (XEP-0227 §4.10.1) applied to xmppd's
/// defaults. Options xmppd does not know are ignored (§4.10.1: "importers
/// SHOULD ignore node configuration options that the target server
/// implementation doesn't recognise"); a known option with a value xmppd
/// refuses is an error.
pub fn node_config(form: &DataForm) -> Result<NodeConfig, String> {
    apply_form(&NodeConfig::default(), form, MAX_ITEMS_LIMIT, Strictness::IgnoreUnknown).map_err(|e| e.to_string())
}

/// The storage form of one PEP node: its configuration (the defaults
/// without a form) and its items, oldest first, with their payload
/// serialised with its `xmlns` (empty without one) and publication time 0
/// when the source has none.
fn pep_node(node: &PepNode) -> Result<ImportedNode, String> {
    let config = match &node.config {
        Some(form) => node_config(form)?,
        None => NodeConfig::default(),
    };
    let items = node
        .items
        .iter()
        .map(|item| PubsubItem {
            id: item.id.clone(),
            publisher: item.publisher.clone(),
            published_ms: item.published.map_or(0, |stamp| stamp.unix_ms()),
            payload: item.payload.as_ref().map(|payload| payload.to_bytes()).unwrap_or_default(),
        })
        .collect();
    Ok(ImportedNode { name: node.name.clone(), config, items })
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
