//! `xmppd check`: validate the configuration, certificates and storage, and
//! name every problem found.

use std::sync::Arc;

use xmppd_core::{Config, ServerBuilder, Stores};

use crate::certs;

/// Runs all checks; `Err` lists the problems.
pub async fn run(config: &Config) -> Result<(), String> {
    crate::install_crypto_provider();
    let mut problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
    let certificate = match (&config.tls.certificate, &config.tls.key) {
        (Some(cert), Some(key)) => Some(certs::load(cert, key)),
        _ => {
            let (cert, key) = certs::generated_paths(config);
            if cert.exists() && key.exists() {
                Some(certs::load(&cert, &key))
            } else {
                println!("note: no certificate configured; one will be generated at {}", cert.display());
                None
            }
        }
    };
    match certificate {
        Some(Ok(certified)) => {
            problems.extend(certs::inspect(&certified, &config.server.hosts));
            let chain = certified.chain.clone();
            if let Err(e) = xmppd_c2s::TlsContext::new(chain, certified.key.clone_key(), config.tls.tls13_only) {
                problems.push(format!("tls: the key does not fit the certificate: {e}"));
            }
        }
        Some(Err(problem)) => problems.push(problem),
        None => {}
    }
    // Start every enabled module once (on an in-memory store) so that
    // unknown module names and bad module settings are reported too.
    if problems.is_empty() {
        let storage = xmppd_storage::memory::MemoryStorage::new();
        let modules =
            ServerBuilder::new(Arc::new(config.clone()), Stores::of(&storage)).modules(&crate::modules()).build();
        if let Err(errors) = modules {
            problems.extend(errors.iter().map(|e| format!("modules: {e}")));
        }
    }
    if let Err(problem) = crate::storage::open(config).await {
        problems.push(problem);
    }
    if problems.is_empty() {
        println!("configuration OK: {} host(s)", config.server.hosts.len());
        Ok(())
    } else {
        for problem in &problems {
            println!("problem: {problem}");
        }
        Err(format!("{} problem(s) found", problems.len()))
    }
}
