//! Certificates: the configured PEM files, or a self-signed certificate
//! generated in `<data_dir>/tls/` on first start and reused afterwards.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use xmppd_core::Config;

/// A certificate chain and its key.
pub struct CertifiedKey {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
    /// Where the chain came from (for messages).
    pub source: PathBuf,
}

/// The generated certificate's paths under the data directory.
pub fn generated_paths(config: &Config) -> (PathBuf, PathBuf) {
    let dir = config.server.data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Loads the configured certificate, or the generated one (creating it if
/// it does not exist yet).
pub fn load_or_generate(config: &Config) -> Result<CertifiedKey, String> {
    if let (Some(cert), Some(key)) = (&config.tls.certificate, &config.tls.key) {
        return load(cert, key);
    }
    let (cert, key) = generated_paths(config);
    if !cert.exists() || !key.exists() {
        generate(&config.server.hosts, &cert, &key)?;
        tracing::info!(path = %cert.display(), "generated a self-signed certificate");
    }
    load(&cert, &key)
}

/// Loads a PEM chain and key.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("tls.certificate: cannot read {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.certificate: {} is not valid PEM: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("tls.certificate: {} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls.key: cannot read a private key from {}: {e}", key.display()))?;
    Ok(CertifiedKey { chain, key, source: cert.to_path_buf() })
}

/// Writes a self-signed ECDSA P-256 certificate for `hosts`.
fn generate(hosts: &[String], cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let mut names = hosts.to_vec();
    // Cover the conventional MUC/upload subdomains too.
    for host in hosts {
        names.push(format!("*.{host}"));
    }
    let generated = rcgen::generate_simple_self_signed(names).map_err(|e| format!("generating a certificate: {e}"))?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    write_private(key_path, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, generated.cert.pem()).map_err(|e| format!("cannot write {}: {e}", cert_path.display()))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Problems with a certificate for the configured hosts: expiry and names.
pub fn inspect(certified: &CertifiedKey, hosts: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(leaf) = certified.chain.first() else {
        return vec!["tls.certificate: empty chain".into()];
    };
    let parsed = match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, parsed)) => parsed,
        Err(e) => return vec![format!("tls.certificate: {}: cannot parse: {e}", certified.source.display())],
    };
    if !parsed.validity().is_valid() {
        problems.push(format!(
            "tls.certificate: {} is not valid now (valid {} to {})",
            certified.source.display(),
            parsed.validity().not_before,
            parsed.validity().not_after
        ));
    }
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    for host in hosts {
        let covered = names.iter().any(|name| match name.strip_prefix("*.") {
            Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
            None => name == host,
        });
        if !covered {
            problems.push(format!(
                "tls.certificate: {} does not cover host `{host}` (names: {})",
                certified.source.display(),
                names.join(", ")
            ));
        }
    }
    problems
}
