//! `xmppd export`: every account as a XEP-0227 (PIEFXIS) document.
//!
//! The export is streamed one account at a time with
//! [`xmppd_migrate::Writer`]: the command never holds more than one user's
//! data (and the list of usernames of the host being written). Each
//! account carries
//!
//! * its SCRAM credentials exactly as stored (XEP-0227 §4.3) — xmppd never
//!   has a plaintext password, so none is written;
//! * its roster (§4.4) with names, groups, subscription, `ask` and
//!   `approved`, and its unanswered inbound subscription requests (§4.9);
//! * its vCard (§4.7, store `vcard`, key ``) and private XML fragments
//!   (§4.6, store `private`, one key `{name} {namespace}` per fragment);
//! * its offline messages (§4.5), oldest first, each with the XEP-0203
//!   stamp of when the server stored it;
//! * its PEP nodes (§4.10, XEP-0163), by name: the configuration as a
//!   submitted `pubsub#node_config` form (§4.10.1) and the items oldest
//!   first (§4.10.2), each with its id, publisher and payload. XEP-0227
//!   has no place for an item's publication time, so it is not exported.
//!
//! The command only reads. It can run while the server runs, but nothing
//! is locked: data may change during the export, and each account is read
//! with several queries, so an account changed mid-read may come out
//! mixed. For an exact snapshot, stop the server first.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use xmppd_core::{Config, Stores};
use xmppd_jid::{BareJid, DomainJid};
use xmppd_migrate::FormType;
use xmppd_migrate::{
    OfflineEntry, Password, PendingSubscription, PepItem, PepNode, RosterEntry, ScramEntry, ScramHash, Subscription,
    Timestamp, UserData, Writer,
};
use xmppd_storage::{PubsubStore, StoredCredential, Subscription as StoredSubscription};
use xmppd_xml::Element;

use crate::data_counts::DataCounts;
use crate::storage;

/// The key-value stores of XEP-0054 vCards (one entry per account under
/// the empty key) and XEP-0049 private XML (one entry per fragment), as the
/// modules keep them.
const VCARD_STORE: &str = xmppd_mods::vcard::STORE;
const PRIVATE_STORE: &str = xmppd_mods::private::STORE;
/// The namespace of a stored vCard.
const VCARD_NS: &str = xmppd_mods::vcard::NS;
/// The namespace of `<query/>` around stored private fragments.
const PRIVATE_NS: &str = xmppd_mods::private::NS;
/// The SCRAM hash functions exported, in this order.
const HASHES: [ScramHash; 3] = [ScramHash::Sha1, ScramHash::Sha256, ScramHash::Sha512];

/// What an export wrote, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Hosts.
    pub hosts: u64,
    /// Accounts.
    pub accounts: u64,
    /// Their data, per kind.
    pub data: DataCounts,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} account(s) on {} host(s): {}", self.accounts, self.hosts, self.data)
    }
}

impl Counts {
    fn add(&mut self, user: &UserData) {
        self.accounts += 1;
        let data = &mut self.data;
        if let Some(Password::Scram(entries)) = &user.password {
            data.credentials += entries.len() as u64;
        }
        data.roster_items += user.roster.len() as u64;
        data.pending_in += user.pending_in.len() as u64;
        data.vcards += u64::from(user.vcard.is_some());
        data.private += user.private.len() as u64;
        data.offline += user.offline.len() as u64;
        data.pep_nodes += user.pep.len() as u64;
        data.pep_items += user.pep.iter().map(|node| node.items.len() as u64).sum::<u64>();
    }
}

/// The hosts to export: every configured host, or only `only` (which must
/// be a configured one).
pub fn hosts(config: &Config, only: Option<&str>) -> Result<Vec<DomainJid>, String> {
    let parse = |host: &str| host.parse::<DomainJid>().map_err(|e| format!("`{host}` is not a valid host: {e}"));
    match only {
        None => config.server.hosts.iter().map(|host| parse(host)).collect(),
        Some(host) => {
            let domain = parse(host)?;
            if !config.server.hosts.iter().any(|configured| configured == domain.as_str()) {
                return Err(format!("`{host}` is not a configured host (server.hosts)"));
            }
            Ok(vec![domain])
        }
    }
}

/// `xmppd export [--host H] FILE`. `FILE` `-` is standard output; then
/// the summary goes to standard error.
pub async fn run(config: &Config, host: Option<&str>, file: &Path) -> Result<(), String> {
    let hosts = hosts(config, host)?;
    let stores = storage::open(config).await?;
    let pubsub = stores.pubsub.clone();
    let to_stdout = file.as_os_str() == "-";
    let (out, partial): (Box<dyn Write>, Option<PathBuf>) = if to_stdout {
        (Box::new(std::io::stdout().lock()), None)
    } else {
        let created = create_private(file).map_err(|e| format!("cannot create {}: {e}", file.display()))?;
        (Box::new(created), Some(file.to_owned()))
    };
    let started = Instant::now();
    let result = export(&stores, pubsub.as_ref(), &hosts, std::io::BufWriter::with_capacity(256 * 1024, out)).await;
    match result {
        Ok(counts) => {
            let summary = format!("exported {counts} in {:.2} s", started.elapsed().as_secs_f64());
            if to_stdout {
                eprintln!("{summary}");
            } else {
                println!("{summary} to {}", file.display());
            }
            Ok(())
        }
        Err(message) => {
            // A truncated file must not pass for an export.
            if let Some(path) = partial {
                let _ = std::fs::remove_file(&path);
            }
            Err(message)
        }
    }
}

/// Creates (or truncates) `path` readable by its owner only: the export
/// holds SCRAM keys, which allow offline password guessing.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let file = options.open(path)?;
        // An existing file keeps its mode on open: restrict it too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Writes `hosts` to `out`, one account at a time, and returns the counts.
/// A progress bar is drawn on standard error when it is a terminal.
pub async fn export<W: Write>(
    stores: &Stores,
    pubsub: &dyn PubsubStore,
    hosts: &[DomainJid],
    out: W,
) -> Result<Counts, String> {
    let progress = if std::io::stderr().is_terminal() {
        let mut total = 0;
        for host in hosts {
            total += stores.auth.count_accounts(host.as_str()).await.map_err(|e| format!("{host}: {e}"))?;
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} accounts ({eta}) {msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut writer = Writer::new(out);
    let mut counts = Counts::default();
    for host in hosts {
        progress.set_message(host.to_string());
        writer.begin_host(host).map_err(|e| format!("{host}: {e}"))?;
        counts.hosts += 1;
        let users = stores.auth.list_accounts(host.as_str()).await.map_err(|e| format!("{host}: {e}"))?;
        for user in users {
            let data = read_user(stores, pubsub, host, &user).await.map_err(|e| format!("{user}@{host}: {e}"))?;
            writer.write_user(&data).map_err(|e| format!("{user}@{host}: {e}"))?;
            counts.add(&data);
            progress.inc(1);
        }
        writer.end_host().map_err(|e| format!("{host}: {e}"))?;
    }
    writer.finish().map_err(|e| format!("finishing the export: {e}"))?;
    progress.finish_and_clear();
    Ok(counts)
}

/// Everything the stores hold for one account, in the XEP-0227 model.
pub async fn read_user(
    stores: &Stores,
    pubsub: &dyn PubsubStore,
    host: &DomainJid,
    user: &str,
) -> Result<UserData, String> {
    let host = host.as_str();
    let mut data = UserData { username: user.to_owned(), ..UserData::default() };

    let mut scram = Vec::new();
    for hash in HASHES {
        let credential = stores
            .auth
            .get_credential(host, user, hash.as_str())
            .await
            .map_err(|e| format!("{} credentials: {e}", hash.mechanism()))?;
        if let Some(credential) = credential {
            scram.push(scram_entry(hash, credential));
        }
    }
    if !scram.is_empty() {
        data.password = Some(Password::Scram(scram));
    }

    let roster = stores.roster.roster(host, user).await.map_err(|e| format!("roster: {e}"))?;
    for item in roster.items {
        let jid = contact(&item.contact).map_err(|e| format!("roster: {e}"))?;
        data.roster.push(RosterEntry {
            jid,
            name: item.name.filter(|name| !name.is_empty()),
            subscription: subscription(item.subscription),
            ask: item.ask,
            approved: item.approved,
            groups: item.groups,
        });
    }
    for pending in stores.roster.pending_in(host, user).await.map_err(|e| format!("subscription requests: {e}"))? {
        let from = contact(&pending.contact).map_err(|e| format!("subscription requests: {e}"))?;
        data.pending_in.push(PendingSubscription {
            from,
            status: pending.status,
            stanza: pending.stanza.unwrap_or_default(),
        });
    }

    if let Some(bytes) = stores.kv.get(host, user, VCARD_STORE, "").await.map_err(|e| format!("vCard: {e}"))? {
        let vcard = Element::parse_standalone(&bytes, VCARD_NS).map_err(|e| format!("stored vCard: {e}"))?;
        data.vcard = Some(vcard);
    }

    let keys = stores.kv.list_keys(host, user, PRIVATE_STORE).await.map_err(|e| format!("private XML: {e}"))?;
    for key in keys {
        // A key deleted since it was listed is simply gone.
        let Some(bytes) =
            stores.kv.get(host, user, PRIVATE_STORE, &key).await.map_err(|e| format!("private XML: {e}"))?
        else {
            continue;
        };
        let fragment =
            Element::parse_standalone(&bytes, PRIVATE_NS).map_err(|e| format!("stored private XML `{key}`: {e}"))?;
        data.private.push(fragment);
    }

    let stored = stores.offline.count(host, user).await.map_err(|e| format!("offline messages: {e}"))?;
    if stored > 0 {
        let limit = u32::try_from(stored).unwrap_or(u32::MAX);
        let messages = stores.offline.peek(host, user, limit).await.map_err(|e| format!("offline messages: {e}"))?;
        for message in messages {
            data.offline
                .push(OfflineEntry { stamp: Timestamp::from_unix_ms(message.stamp_ms), stanza: message.stanza });
        }
    }

    for node in pubsub.nodes(host, user).await.map_err(|e| format!("PEP nodes: {e}"))? {
        let what = |e: &dyn std::fmt::Display| format!("PEP node `{}`: {e}", node.name);
        // Newest first from the store; XEP-0227 order here is oldest first.
        let mut stored = pubsub.items(host, user, &node.name, None).await.map_err(|e| what(&e))?;
        stored.reverse();
        let mut items = Vec::with_capacity(stored.len());
        for item in stored {
            let payload = if item.payload.is_empty() {
                None
            } else {
                let payload = Element::parse_standalone(&item.payload, "")
                    .map_err(|e| what(&format!("stored payload of item `{}`: {e}", item.id)))?;
                Some(payload)
            };
            items.push(PepItem { id: item.id, publisher: item.publisher, published: None, payload });
        }
        let form = xmppd_pubsub::config::to_form(&node.config, FormType::Submit);
        data.pep.push(PepNode { name: node.name, config: Some(form), items });
    }
    Ok(data)
}

fn scram_entry(hash: ScramHash, credential: StoredCredential) -> ScramEntry {
    ScramEntry {
        mechanism_hash: hash,
        iterations: credential.iterations,
        salt: credential.salt,
        stored_key: credential.stored_key,
        server_key: credential.server_key,
    }
}

fn subscription(stored: StoredSubscription) -> Subscription {
    match stored {
        StoredSubscription::None => Subscription::None,
        StoredSubscription::To => Subscription::To,
        StoredSubscription::From => Subscription::From,
        StoredSubscription::Both => Subscription::Both,
    }
}

fn contact(stored: &str) -> Result<BareJid, String> {
    stored.parse().map_err(|e| format!("stored contact `{stored}` is not a bare JID: {e}"))
}
