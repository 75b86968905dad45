//! `xmppd check`: validate the configuration, certificates and storage, and
//! name every problem found.

use xmppd_core::Config;

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
