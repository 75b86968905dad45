//! The account service: creating and deleting local accounts and setting
//! their passwords, for every caller (the `xmppd user` CLI, in-band
//! registration (XEP-0077), service administration (XEP-0133)).
//!
//! Passwords are never stored. [`derive_credentials`] turns one into SCRAM
//! verifiers (RFC 5802 §3: salt, iteration count, `StoredKey`, `ServerKey`)
//! for SHA-1, SHA-256 and SHA-512, each with its own random 16-octet salt
//! and `[auth] scram_iterations` PBKDF2 iterations. The password is
//! normalised with the PRECIS OpaqueString profile (RFC 8265 §4.2) by
//! [`ScramCredentials::derive`], exactly as SASL does when it checks a
//! PLAIN password, so a password set here always verifies there; passwords
//! OpaqueString rejects (empty, control characters, …) are refused with
//! [`AccountError::InvalidPassword`].

use std::sync::Arc;

use xmppd_jid::{BareJid, Jid};
use xmppd_proto::StreamErrorCondition;
use xmppd_sasl::{HashAlg, ScramCredentials};
use xmppd_storage::{StorageError, StoredCredential};

use crate::queue::Outbound;
use crate::server::Server;
use crate::stanza::Stanza;

/// The SCRAM hash functions every account gets credentials for
/// (`SCRAM-SHA-1`, RFC 5802; `SCRAM-SHA-256`, RFC 7677; `SCRAM-SHA-512`).
pub const CREDENTIAL_HASHES: [HashAlg; 3] = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512];

/// The longest password accepted, in octets of UTF-8. A SASL PLAIN message
/// (authcid and password together) is itself bounded by
/// [`xmppd_sasl::DEFAULT_MAX_MESSAGE_LEN`], so a longer password could not
/// be used to log in with PLAIN anyway.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The JID has no localpart or its domain is not one of our hosts.
    #[error("`{0}` is not an account of a host served here")]
    NotLocal(String),
    /// The password is empty, too long or not a valid OpaqueString
    /// (RFC 8265 §4.2).
    #[error(
        "the password is not acceptable (empty, longer than {MAX_PASSWORD_BYTES} bytes, or not a PRECIS OpaqueString)"
    )]
    InvalidPassword,
    /// The account already exists.
    #[error("the account already exists")]
    Exists,
    /// There is no such account.
    #[error("no such account")]
    NotFound,
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(StorageError),
    /// Deriving the credentials failed for another reason.
    #[error("deriving credentials: {0}")]
    Internal(String),
}

impl From<StorageError> for AccountError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::AlreadyExists => AccountError::Exists,
            StorageError::NotFound => AccountError::NotFound,
            other => AccountError::Storage(other),
        }
    }
}

/// Derives the stored SCRAM credentials of `password` for every hash in
/// [`CREDENTIAL_HASHES`] (RFC 5802 §3), each with a fresh random salt.
/// CPU-bound (three PBKDF2 runs of `iterations` rounds): async callers run
/// it on a blocking thread, as the [`Server`] methods below do.
pub fn derive_credentials(password: &str, iterations: u32) -> Result<Vec<StoredCredential>, AccountError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::InvalidPassword);
    }
    CREDENTIAL_HASHES
        .into_iter()
        .map(|hash| {
            let scram = ScramCredentials::generate(hash, password, iterations).map_err(|error| match error {
                xmppd_sasl::SaslError::InvalidPassword => AccountError::InvalidPassword,
                other => AccountError::Internal(other.to_string()),
            })?;
            Ok(StoredCredential {
                mechanism_hash: hash.name().to_owned(),
                salt: scram.salt,
                iterations: scram.iterations,
                stored_key: scram.stored_key,
                server_key: scram.server_key,
            })
        })
        .collect()
}

impl Server {
    /// Creates the account `jid` with `password` (XEP-0077 §3.1, XEP-0133
    /// §4.1). Fails with [`AccountError::Exists`] if it exists.
    pub async fn create_account(&self, jid: &BareJid, password: &str) -> Result<(), AccountError> {
        let (host, user) = self.local_parts(jid)?;
        // Cheap refusal first: deriving costs three PBKDF2 runs, which
        // requests for taken names must not be able to make us spend.
        if self.accounts().account_exists(host, user).await? {
            return Err(AccountError::Exists);
        }
        let credentials = self.derive_off_thread(password).await?;
        self.accounts().create_account(host, user, &credentials).await?;
        tracing::info!(%jid, "account created");
        Ok(())
    }

    /// Replaces the password of `jid` (XEP-0077 §3.3, XEP-0133 §4.7): all
    /// three SCRAM credentials are derived anew with fresh salts, so the old
    /// password stops working for every mechanism at once. Sessions already
    /// authenticated stay open.
    pub async fn set_password(&self, jid: &BareJid, password: &str) -> Result<(), AccountError> {
        let (host, user) = self.local_parts(jid)?;
        let credentials = self.derive_off_thread(password).await?;
        self.accounts().set_credentials(host, user, &credentials).await?;
        tracing::info!(%jid, "password changed");
        Ok(())
    }

    /// Deletes the account `jid` with all its stored data (credentials,
    /// roster, offline messages, key-value data:
    /// [`xmppd_storage::AuthStore::delete_account`]), then closes every
    /// session of the account with a `<not-authorized/>` stream error:
    /// XEP-0077 §3.2 says the server "SHOULD then return a
    /// &lt;not-authorized/&gt; stream error and terminate all active
    /// sessions", and XEP-0133 §4.2 asks for the same termination.
    ///
    /// Returns how many sessions were asked to close.
    pub async fn delete_account(self: &Arc<Self>, jid: &BareJid) -> Result<usize, AccountError> {
        self.delete_account_replying(jid, None).await
    }

    /// [`Server::delete_account`], delivering `reply` (addressed to one of
    /// the account's sessions, e.g. the IQ result of an XEP-0077 §3.2
    /// removal request) to that session after the data is gone and before
    /// its stream error, which a reply sent the usual way (after the
    /// handler returns) would come too late for.
    pub async fn delete_account_replying(
        self: &Arc<Self>,
        jid: &BareJid,
        reply: Option<&Stanza>,
    ) -> Result<usize, AccountError> {
        let (host, user) = self.local_parts(jid)?;
        if !self.accounts().account_exists(host, user).await? {
            return Err(StorageError::NotFound.into());
        }
        // XEP-0077 §3.2 / RFC 6121 §2.5.2: the contacts learn that the
        // subscriptions are gone, as if every item had been removed. This
        // happens before the data goes, so that whatever the contacts'
        // servers answer lands in a roster that is deleted right after.
        if let Ok(roster) = self.roster(jid).await {
            let me = Jid::from(jid.clone());
            for item in &roster.items {
                let Ok(contact) = item.contact.parse::<Jid>() else { continue };
                if item.subscription.has_from() {
                    // §3.2.2: unavailable first, then the cancellation.
                    self.send_unavailable_to(jid, &contact).await;
                    self.route(Stanza::presence(&me, &contact, Some("unsubscribed"))).await;
                }
                if item.subscription.has_to() || item.ask {
                    self.route(Stanza::presence(&me, &contact, Some("unsubscribe"))).await;
                }
            }
        }
        self.accounts().delete_account(host, user).await?;
        self.forget_roster(jid);
        let sessions = self.sessions().sessions_of(jid);
        for session in &sessions {
            if let Some(reply) = reply.filter(|r| r.to().and_then(Jid::as_full) == Some(session.jid())) {
                self.deliver_to(session, reply);
            }
            session
                .queue
                .push(Outbound::Close(StreamErrorCondition::NotAuthorized, Some("the account was deleted")))
                .ok();
            // Gone from routing now: nothing more is delivered to, stored
            // for or answered on behalf of the deleted account.
            self.sessions().detach(session);
        }
        tracing::info!(%jid, sessions = sessions.len(), "account deleted");
        Ok(sessions.len())
    }

    /// Whether `jid` is one of the `[server] admins`.
    pub fn is_admin(&self, jid: &BareJid) -> bool {
        self.config().server.admins.iter().any(|admin| admin == jid.as_str())
    }

    /// The (host, username) of a local account JID.
    fn local_parts<'j>(&self, jid: &'j BareJid) -> Result<(&'j str, &'j str), AccountError> {
        match jid.node() {
            Some(user) if self.serves_domain(jid.domain()) => Ok((jid.domain(), user)),
            _ => Err(AccountError::NotLocal(jid.to_string())),
        }
    }

    /// Runs [`derive_credentials`] on a blocking thread.
    async fn derive_off_thread(&self, password: &str) -> Result<Vec<StoredCredential>, AccountError> {
        let password = password.to_owned();
        let iterations = self.config().auth.scram_iterations;
        tokio::task::spawn_blocking(move || derive_credentials(&password, iterations))
            .await
            .map_err(|error| AccountError::Internal(error.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_one_credential_per_hash_with_distinct_salts() {
        let Ok(credentials) = derive_credentials("pencil", 4096) else { panic!("derivation failed") };
        let hashes: Vec<&str> = credentials.iter().map(|c| c.mechanism_hash.as_str()).collect();
        assert_eq!(hashes, ["SHA-1", "SHA-256", "SHA-512"]);
        assert!(credentials.iter().all(|c| c.iterations == 4096 && c.salt.len() == 16));
        assert_ne!(credentials[0].salt, credentials[1].salt);
        let sha256 = ScramCredentials {
            hash: HashAlg::Sha256,
            salt: credentials[1].salt.clone(),
            iterations: 4096,
            stored_key: credentials[1].stored_key.clone(),
            server_key: credentials[1].server_key.clone(),
        };
        assert!(sha256.verify_plain("pencil"));
        assert!(!sha256.verify_plain("pencil2"));
    }

    #[test]
    fn refuses_bad_passwords() {
        assert!(matches!(derive_credentials("", 4096), Err(AccountError::InvalidPassword)));
        assert!(matches!(derive_credentials("a\u{7}b", 4096), Err(AccountError::InvalidPassword)));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(derive_credentials(&long, 4096), Err(AccountError::InvalidPassword)));
    }
}
