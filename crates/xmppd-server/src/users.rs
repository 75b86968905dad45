//! `xmppd user …`: account management. Passwords are turned into SCRAM
//! credentials (RFC 5802 §3) for SHA-1, SHA-256 and SHA-512 by the kernel's
//! account service (`xmppd_core::accounts`); the plaintext is never stored.

use std::io::BufRead as _;

use xmppd_core::Config;
use xmppd_jid::BareJid;
use xmppd_sasl::HashAlg;
use xmppd_storage::StoredCredential;

use crate::storage;

/// Derives the stored credentials for a password: the kernel's
/// [`xmppd_core::accounts::derive_credentials`], the one derivation every
/// account path uses.
pub fn credentials(password: &str, iterations: u32) -> Result<Vec<StoredCredential>, String> {
    xmppd_core::accounts::derive_credentials(password, iterations).map_err(|e| format!("password rejected: {e}"))
}

fn account(config: &Config, jid: &str) -> Result<(String, String), String> {
    let bare: BareJid = jid.parse().map_err(|e| format!("`{jid}` is not a valid JID: {e}"))?;
    let Some(node) = bare.node() else {
        return Err(format!("`{jid}` has no localpart (expected user@host)"));
    };
    if !config.server.hosts.iter().any(|h| h == bare.domain()) {
        return Err(format!("`{}` is not a configured host (server.hosts)", bare.domain()));
    }
    Ok((bare.domain().to_owned(), node.to_owned()))
}

fn password_or_stdin(password: Option<String>) -> Result<String, String> {
    if let Some(password) = password {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("reading the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("empty password".into());
    }
    Ok(password)
}

/// `xmppd user add`.
pub async fn add(config: &Config, jid: &str, password: Option<String>) -> Result<(), String> {
    let (host, user) = account(config, jid)?;
    let password = password_or_stdin(password)?;
    let creds = credentials(&password, config.auth.scram_iterations)?;
    let stores = storage::open(config).await?;
    stores.auth.create_account(&host, &user, &creds).await.map_err(|e| format!("{user}@{host}: {e}"))?;
    println!("created {user}@{host}");
    Ok(())
}

/// `xmppd user import`: `jid password` per line from stdin, one transaction
/// per host. Credentials are derived on all cores.
pub async fn import(config: &Config, hashed: bool) -> Result<(), String> {
    let mut lines = Vec::new();
    let mut prepared: Derived = Vec::new();
    for (number, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at_line = |e: String| format!("line {}: {e}", number + 1);
        let Some((jid, rest)) = line.split_once(char::is_whitespace) else {
            return Err(at_line("expected `jid password`".into()));
        };
        let (host, user) = account(config, jid).map_err(at_line)?;
        if hashed {
            let creds = rest.split_whitespace().map(parse_hashed_credential).collect::<Result<Vec<_>, _>>();
            prepared.push((host, user, creds.map_err(at_line)?));
        } else {
            lines.push((host, user, rest.trim().to_owned()));
        }
    }
    let iterations = config.auth.scram_iterations;
    let mut derived = tokio::task::spawn_blocking(move || derive_all(lines, iterations))
        .await
        .map_err(|e| format!("deriving credentials: {e}"))??;
    derived.append(&mut prepared);
    let stores = storage::open(config).await?;
    let mut by_host: std::collections::BTreeMap<String, Vec<(String, Vec<StoredCredential>)>> = Default::default();
    for (host, user, creds) in derived {
        by_host.entry(host).or_default().push((user, creds));
    }
    let mut total = 0;
    for (host, accounts) in by_host {
        total += accounts.len();
        stores.auth.create_accounts_bulk(&host, &accounts).await.map_err(|e| format!("{host}: {e}"))?;
    }
    println!("created {total} account(s)");
    Ok(())
}

/// Parses `SCRAM-SHA-1:ITERATIONS:SALT:STORED_KEY:SERVER_KEY` (base64
/// values) into a stored credential; lengths are checked by the store.
fn parse_hashed_credential(field: &str) -> Result<StoredCredential, String> {
    use base64::Engine as _;
    let parts: Vec<&str> = field.split(':').collect();
    let [mechanism, iterations, salt, stored_key, server_key] = parts.as_slice() else {
        return Err(format!("`{field}` is not MECHANISM:ITERATIONS:SALT:STORED_KEY:SERVER_KEY"));
    };
    let hash = match *mechanism {
        "SCRAM-SHA-1" => HashAlg::Sha1,
        "SCRAM-SHA-256" => HashAlg::Sha256,
        "SCRAM-SHA-512" => HashAlg::Sha512,
        other => return Err(format!("unknown mechanism `{other}`")),
    };
    let decode = |what: &str, value: &str| {
        base64::engine::general_purpose::STANDARD.decode(value).map_err(|e| format!("{what}: invalid base64: {e}"))
    };
    let iterations: u32 = iterations.parse().map_err(|_| format!("`{iterations}` is not an iteration count"))?;
    if iterations == 0 {
        return Err("the iteration count must be positive".into());
    }
    Ok(StoredCredential {
        mechanism_hash: hash.name().to_owned(),
        salt: decode("salt", salt)?,
        iterations,
        stored_key: decode("stored key", stored_key)?,
        server_key: decode("server key", server_key)?,
    })
}

type Derived = Vec<(String, String, Vec<StoredCredential>)>;

fn derive_all(lines: Vec<(String, String, String)>, iterations: u32) -> Result<Derived, String> {
    let workers = std::thread::available_parallelism().map(usize::from).unwrap_or(1).max(1);
    let chunk = lines.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(host, user, password)| {
                            Ok((host.clone(), user.clone(), credentials(password, iterations)?))
                        })
                        .collect::<Result<Derived, String>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(lines.len());
        for handle in handles {
            all.extend(handle.join().map_err(|_| "a worker thread panicked".to_owned())??);
        }
        Ok(all)
    })
}

/// `xmppd user del`.
pub async fn delete(config: &Config, jid: &str) -> Result<(), String> {
    let (host, user) = account(config, jid)?;
    let stores = storage::open(config).await?;
    stores.auth.delete_account(&host, &user).await.map_err(|e| format!("{user}@{host}: {e}"))?;
    println!("deleted {user}@{host}");
    Ok(())
}

/// `xmppd user passwd`.
pub async fn passwd(config: &Config, jid: &str, password: Option<String>) -> Result<(), String> {
    let (host, user) = account(config, jid)?;
    let password = password_or_stdin(password)?;
    let creds = credentials(&password, config.auth.scram_iterations)?;
    let stores = storage::open(config).await?;
    stores.auth.set_credentials(&host, &user, &creds).await.map_err(|e| format!("{user}@{host}: {e}"))?;
    println!("password changed for {user}@{host}");
    Ok(())
}

/// `xmppd user list`.
pub async fn list(config: &Config, host: Option<&str>) -> Result<(), String> {
    let stores = storage::open(config).await?;
    let hosts: Vec<&str> = match host {
        Some(host) => vec![host],
        None => config.server.hosts.iter().map(String::as_str).collect(),
    };
    for host in hosts {
        for user in stores.auth.list_accounts(host).await.map_err(|e| format!("{host}: {e}"))? {
            println!("{user}@{host}");
        }
    }
    Ok(())
}
