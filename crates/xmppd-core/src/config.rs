//! The configuration model (TOML). Every table rejects unknown keys; every
//! value has a safe default, so `xmppd serve` runs with no file at all.
//! Semantic checks live in [`Config::validate`], which reports *every*
//! problem with the key path that caused it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use xmppd_jid::DomainJid;

use crate::registry::ResourceConflict;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: hosts and data directory.
    pub server: ServerConfig,
    /// `[listen]`: sockets.
    pub listen: ListenConfig,
    /// `[tls]`: certificates and protocol versions.
    pub tls: TlsConfig,
    /// `[c2s]`: client stream policy and limits.
    pub c2s: C2sConfig,
    /// `[auth]`: credential hashing.
    pub auth: AuthConfig,
    /// `[storage]`: the database.
    pub storage: StorageConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[modules]`: which modules run and their settings.
    pub modules: ModulesConfig,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Virtual hosts served by this process (RFC 7622 domainparts).
    pub hosts: Vec<String>,
    /// Where the database, generated certificates and other state live.
    pub data_dir: PathBuf,
    /// Seconds to wait for sessions to close on shutdown.
    pub shutdown_grace_secs: u64,
    /// Server administrators: bare JIDs (`user@host`, canonical form) of
    /// local accounts. They may run the XEP-0133 service administration
    /// commands on every host; nobody else sees those commands.
    pub admins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hosts: vec!["localhost".into()],
            data_dir: PathBuf::from("./data"),
            shutdown_grace_secs: 5,
            admins: Vec::new(),
        }
    }
}

/// `[listen]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Client listeners with STARTTLS (RFC 6120 §5), port 5222 by convention.
    pub c2s: Vec<SocketAddr>,
    /// Client listeners with direct TLS (XEP-0368), port 5223 by convention.
    pub c2s_direct_tls: Vec<SocketAddr>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            c2s: vec![SocketAddr::from(([0, 0, 0, 0], 5222))],
            c2s_direct_tls: vec![SocketAddr::from(([0, 0, 0, 0], 5223))],
        }
    }
}

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; unset = a self-signed certificate generated in
    /// `<data_dir>/tls/` on first start and reused afterwards.
    pub certificate: Option<PathBuf>,
    /// PEM private key matching `certificate`.
    pub key: Option<PathBuf>,
    /// Refuse TLS 1.2 (RFC 7590 permits it; TLS 1.3 is preferred).
    pub tls13_only: bool,
}

/// `[c2s]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct C2sConfig {
    /// Require STARTTLS before authentication (RFC 6120 §5.3.1).
    pub require_encryption: bool,
    /// Offer SASL PLAIN (only ever over TLS).
    pub allow_plain: bool,
    /// What a second bind of the same resource does (RFC 6120 §7.7.2.2).
    pub resource_conflict: ResourceConflict,
    /// Maximum bytes of one stanza (RFC 6120 §13.12 item 4).
    pub max_stanza_bytes: usize,
    /// Maximum element nesting depth inside a stanza.
    pub max_depth: usize,
    /// Maximum attributes on one element.
    pub max_attributes: usize,
    /// Maximum namespace declarations on one element.
    pub max_namespace_declarations: usize,
    /// Maximum bytes a client may send before it has authenticated.
    pub max_pre_auth_bytes: usize,
    /// Seconds allowed to complete TLS, SASL and bind.
    pub handshake_timeout_secs: u64,
    /// Seconds of silence after which the server pings the client
    /// (XEP-0199 §4.1; clients may also send whitespace keepalives,
    /// RFC 6120 §4.6.1).
    pub idle_timeout_secs: u64,
    /// Seconds the client has to answer that ping (any data counts) before
    /// the session is closed with `connection-timeout` (RFC 6120 §4.9.3.4).
    pub ping_timeout_secs: u64,
    /// Stanzas queued for a slow session before it is disconnected.
    pub max_queued_stanzas: usize,
    /// Concurrent sessions per account.
    pub max_resources_per_account: usize,
    /// Failed SASL attempts before the stream is closed.
    pub max_auth_failures: u32,
    /// Maximum concurrent client connections.
    pub max_connections: usize,
}

impl Default for C2sConfig {
    fn default() -> Self {
        C2sConfig {
            require_encryption: true,
            allow_plain: true,
            resource_conflict: ResourceConflict::Replace,
            max_stanza_bytes: 256 * 1024,
            max_depth: 32,
            max_attributes: 64,
            max_namespace_declarations: 16,
            max_pre_auth_bytes: 16 * 1024,
            handshake_timeout_secs: 60,
            idle_timeout_secs: 300,
            ping_timeout_secs: 60,
            max_queued_stanzas: 1024,
            max_resources_per_account: 32,
            max_auth_failures: 3,
            max_connections: 100_000,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// PBKDF2 iterations for new SCRAM credentials (RFC 5802 §5.1 ≥ 4096).
    pub scram_iterations: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { scram_iterations: 4096 }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `"sqlite"` (embedded, default) or `"postgres"`.
    pub backend: String,
    /// SQLite file; default `<data_dir>/xmppd.sqlite3`.
    pub path: Option<PathBuf>,
    /// PostgreSQL URL, e.g. `postgres://xmppd@localhost/xmppd`.
    pub url: Option<String>,
    /// PostgreSQL pool size.
    pub max_connections: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { backend: "sqlite".into(), path: None, url: None, max_connections: 16 }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `"info"` or `"xmppd_c2s=debug,info"`.
    pub level: String,
    /// `"text"` or `"json"`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: "text".into() }
    }
}

/// `[modules]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModulesConfig {
    /// Modules to run on every host (the default list has every module
    /// that is safe to run by default).
    pub enabled: Vec<String>,
    /// Modules to leave out of `enabled` (Prosody's `modules_disabled`):
    /// handy to drop one module without restating the whole list.
    pub disabled: Vec<String>,
    /// Per-module tables, `[modules.settings.<name>]`.
    pub settings: BTreeMap<String, toml::Value>,
}

impl Default for ModulesConfig {
    fn default() -> Self {
        ModulesConfig {
            enabled: vec![
                "disco".into(),
                "ping".into(),
                "roster".into(),
                "presence".into(),
                "offline".into(),
                "blocking".into(),
                "caps".into(),
                "version".into(),
                "time".into(),
                "private".into(),
                "vcard".into(),
                "contact_addresses".into(),
                "last".into(),
                "register".into(),
                "adhoc".into(),
                "admin_adhoc".into(),
                "pep".into(),
                "carbons".into(),
            ],
            disabled: Vec::new(),
            settings: BTreeMap::new(),
        }
    }
}

impl ModulesConfig {
    /// Whether a module runs: listed in `enabled` and not in `disabled`.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.iter().any(|e| e == name) && !self.disabled.iter().any(|d| d == name)
    }
}

/// A semantic problem in the configuration, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `c2s.max_stanza_bytes`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl Config {
    /// Checks values that parse but make no sense; returns every problem.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem = |path: &str, message: String| {
            problems.push(ConfigProblem { path: path.to_owned(), message });
        };
        if self.server.hosts.is_empty() {
            problem("server.hosts", "at least one host is required".into());
        }
        for (i, host) in self.server.hosts.iter().enumerate() {
            match host.parse::<DomainJid>() {
                Ok(domain) if domain.as_str() != host => problem(
                    &format!("server.hosts[{i}]"),
                    format!("`{host}` is not in canonical form; write `{domain}`"),
                ),
                Ok(_) => {}
                Err(e) => problem(&format!("server.hosts[{i}]"), format!("`{host}` is not a valid domain: {e}")),
            }
            if self.server.hosts.iter().filter(|h| *h == host).count() > 1 {
                problem(&format!("server.hosts[{i}]"), format!("`{host}` is listed twice"));
            }
        }
        for (i, admin) in self.server.admins.iter().enumerate() {
            let path = format!("server.admins[{i}]");
            match admin.parse::<xmppd_jid::BareJid>() {
                Ok(jid) if jid.node().is_none() => {
                    problem(&path, format!("`{admin}` has no localpart; write the account, e.g. `admin@{jid}`"));
                }
                Ok(jid) if jid.as_str() != admin => {
                    problem(&path, format!("`{admin}` is not in canonical form; write `{jid}`"));
                }
                Ok(jid) if !self.server.hosts.iter().any(|host| host == jid.domain()) => {
                    problem(&path, format!("`{admin}` is not an account of a configured host (server.hosts)"));
                }
                Ok(_) => {}
                Err(e) => problem(&path, format!("`{admin}` is not a valid bare JID: {e}")),
            }
            if self.server.admins.iter().filter(|a| *a == admin).count() > 1 {
                problem(&path, format!("`{admin}` is listed twice"));
            }
        }
        if self.listen.c2s.is_empty() && self.listen.c2s_direct_tls.is_empty() {
            problem("listen", "no client listener configured".into());
        }
        match (&self.tls.certificate, &self.tls.key) {
            (Some(_), None) => problem("tls.key", "a certificate needs its key".into()),
            (None, Some(_)) => problem("tls.certificate", "a key needs its certificate".into()),
            _ => {}
        }
        let c2s = &self.c2s;
        let ranges: [(&str, usize, usize, usize); 8] = [
            ("c2s.max_stanza_bytes", c2s.max_stanza_bytes, 10_000, 64 * 1024 * 1024),
            ("c2s.max_depth", c2s.max_depth, 4, 1024),
            ("c2s.max_attributes", c2s.max_attributes, 8, 4096),
            ("c2s.max_namespace_declarations", c2s.max_namespace_declarations, 2, 1024),
            ("c2s.max_pre_auth_bytes", c2s.max_pre_auth_bytes, 4096, 64 * 1024 * 1024),
            ("c2s.max_queued_stanzas", c2s.max_queued_stanzas, 16, 1_000_000),
            ("c2s.max_resources_per_account", c2s.max_resources_per_account, 1, 10_000),
            ("c2s.max_connections", c2s.max_connections, 1, 10_000_000),
        ];
        for (path, value, min, max) in ranges {
            if value < min || value > max {
                problem(path, format!("{value} is outside the allowed range {min}..={max}"));
            }
        }
        if c2s.handshake_timeout_secs == 0 {
            problem("c2s.handshake_timeout_secs", "must be at least 1".into());
        }
        if c2s.idle_timeout_secs == 0 {
            problem("c2s.idle_timeout_secs", "must be at least 1".into());
        }
        if c2s.ping_timeout_secs == 0 {
            problem("c2s.ping_timeout_secs", "must be at least 1".into());
        }
        if c2s.max_auth_failures == 0 {
            problem("c2s.max_auth_failures", "must be at least 1".into());
        }
        if !(4096..=10_000_000).contains(&self.auth.scram_iterations) {
            problem(
                "auth.scram_iterations",
                format!(
                    "{} is outside 4096..=10000000 (RFC 5802 §5.1 asks for at least 4096)",
                    self.auth.scram_iterations
                ),
            );
        }
        match self.storage.backend.as_str() {
            "sqlite" => {
                if self.storage.url.is_some() {
                    problem("storage.url", "only used with backend = \"postgres\"".into());
                }
            }
            "postgres" => {
                if self.storage.url.is_none() {
                    problem("storage.url", "backend = \"postgres\" needs a url".into());
                }
                if self.storage.max_connections == 0 {
                    problem("storage.max_connections", "must be at least 1".into());
                }
            }
            other => problem("storage.backend", format!("`{other}` is not one of \"sqlite\", \"postgres\"")),
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problem("log.format", format!("`{}` is not one of \"text\", \"json\"", self.log.format));
        }
        for name in self.modules.settings.keys() {
            if !self.modules.is_enabled(name) {
                problem(&format!("modules.settings.{name}"), format!("module `{name}` is not enabled"));
            }
        }
        problems
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), vec![]);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let config: Config = toml::from_str(
            r#"
            [server]
            hosts = ["Example.COM", "bad host"]
            [c2s]
            max_stanza_bytes = 10
            [auth]
            scram_iterations = 10
            [storage]
            backend = "mysql"
            "#,
        )
        .unwrap();
        let paths: Vec<String> = config.validate().into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            ["server.hosts[0]", "server.hosts[1]", "c2s.max_stanza_bytes", "auth.scram_iterations", "storage.backend"]
        );
    }

    #[test]
    fn admins_must_be_local_canonical_bare_jids() {
        let config: Config = toml::from_str(
            r#"
            [server]
            hosts = ["example.org"]
            admins = ["root@example.org", "Root@Example.org", "example.org", "root@example.org/laptop",
                      "root@elsewhere.org", "root@example.org"]
            "#,
        )
        .unwrap();
        let problems: Vec<(String, bool)> =
            config.validate().into_iter().map(|p| (p.path, p.message.contains("twice"))).collect();
        assert_eq!(
            problems,
            [
                ("server.admins[0]".to_owned(), true),
                ("server.admins[1]".to_owned(), false),
                ("server.admins[2]".to_owned(), false),
                ("server.admins[3]".to_owned(), false),
                ("server.admins[4]".to_owned(), false),
                ("server.admins[5]".to_owned(), true),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<Config>("[c2s]\nmax_stanza_byte = 5\n").unwrap_err();
        assert!(err.to_string().contains("max_stanza_byte"), "{err}");
    }
}
