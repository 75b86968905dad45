//! The pieces of the `xmppd` binary, as a library so tests can reach them.
#![warn(missing_docs)]

pub mod certs;
pub mod check;
pub mod config_file;
pub mod data_counts;
pub mod export;
pub mod features;
pub mod import;
pub mod rosters;
pub mod serve;
pub mod storage;
pub mod users;

/// Every feature module the server offers, in start order (the disco
/// module first: later modules refine its answers).
pub fn modules() -> Vec<&'static xmppd_core::ModuleDef> {
    let mut all = xmppd_mods::ALL.to_vec();
    all.push(&xmppd_pubsub::pep::MODULE);
    all
}

/// Installs the process-wide rustls crypto provider (aws-lc-rs).
pub fn install_crypto_provider() {
    // Ignoring the error is correct: it only says a provider is installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
