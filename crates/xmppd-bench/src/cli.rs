//! Command line (see `bench/README.md` and the shared interface of issue 5).
//! Every common option can also come from an `XMPPD_BENCH_*` variable; the
//! flag wins.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use xmppd_sasl::HashAlg;

/// Load generator for XMPP servers on loopback.
#[derive(Debug, Parser)]
#[command(name = "xmppd-bench", version, about, long_about = None)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Options every scenario shares.
    #[command(flatten)]
    pub common: Common,
}

/// Options shared by all scenarios.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Server address; must be loopback (127.0.0.0/8 or ::1).
    #[arg(long, global = true, env = "XMPPD_BENCH_HOST", default_value = "127.0.0.1", value_parser = parse_loopback)]
    pub host: IpAddr,
    /// Server port (c2s STARTTLS port, or the direct TLS port with --tls direct).
    #[arg(long, global = true, env = "XMPPD_BENCH_PORT", default_value_t = 5222)]
    pub port: u16,
    /// XMPP domain: stream 'to' and the domain of every account JID.
    #[arg(long, global = true, env = "XMPPD_BENCH_DOMAIN", default_value = "localhost")]
    pub domain: String,
    /// Account i is `<PREFIX><i>@<domain>`, i from 0.
    #[arg(long, global = true, env = "XMPPD_BENCH_USER_PREFIX", default_value = "bench")]
    pub user_prefix: String,
    /// Password of every account.
    #[arg(long, global = true, env = "XMPPD_BENCH_PASSWORD", hide_env_values = true, default_value = "bench-password")]
    pub password: String,
    /// STARTTLS on the c2s port, or XEP-0368 direct TLS (ALPN xmpp-client).
    #[arg(long, global = true, env = "XMPPD_BENCH_TLS", value_enum, default_value_t = TlsMode::Starttls)]
    pub tls: TlsMode,
    /// SASL mechanism.
    #[arg(long, global = true, env = "XMPPD_BENCH_MECHANISM", value_enum, ignore_case = true, default_value_t = MechanismArg::ScramSha1)]
    pub mechanism: MechanismArg,
    /// The server process, for RSS and CPU from /proc.
    #[arg(long, global = true, env = "XMPPD_BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Add the RSS and CPU of the server's descendant processes.
    #[arg(long, global = true, env = "XMPPD_BENCH_INCLUDE_CHILDREN")]
    pub include_children: bool,
    /// Server name put in the JSON ("xmppd", "prosody", "ejabberd").
    #[arg(long, global = true, env = "XMPPD_BENCH_LABEL", default_value = "")]
    pub label: String,
    /// Append the JSON line to this file too (stdout always gets it).
    #[arg(long, global = true, env = "XMPPD_BENCH_JSON_OUT")]
    pub json_out: Option<PathBuf>,
    /// Hard bound on the whole run, in seconds.
    #[arg(long, global = true, env = "XMPPD_BENCH_MAX_SECONDS", default_value_t = 300)]
    pub max_seconds: u64,
    /// Parallel logins while ramping up (idle, msg, fanout).
    #[arg(long, global = true, env = "XMPPD_BENCH_CONNECT_CONCURRENCY", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,
}

/// What to measure.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Log in and bind N sessions, hold them, report server RSS per session.
    Idle(IdleArgs),
    /// Full logins (TLS, SCRAM, bind, roster, presence, close); logins/s and CPU per login.
    Login(LoginArgs),
    /// One-to-one chat messages between pairs; throughput, latency, CPU per 1000.
    Msg(MsgArgs),
    /// Presence updates to rosters of K contacts; deliveries/s and CPU per 1000.
    Fanout(FanoutArgs),
    /// Offline storage (XEP-0160): messages stored/s and read back/s, CPU per 1000.
    Offline(OfflineArgs),
}

impl Scenario {
    /// The name used in the JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Idle(_) => "idle",
            Scenario::Login(_) => "login",
            Scenario::Msg(_) => "msg",
            Scenario::Fanout(_) => "fanout",
            Scenario::Offline(_) => "offline",
        }
    }
}

/// `idle` options.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Number of sessions (accounts 0..N).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub sessions: u32,
    /// How long to hold the sessions before measuring RSS, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub hold_seconds: f64,
    /// Also send initial presence on every session.
    #[arg(long)]
    pub presence: bool,
}

/// `login` options.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Number of measured logins.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub logins: u32,
    /// Logins in flight at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Accounts cycled through: login i uses account i mod N (N is raised to
    /// --concurrency and capped at --logins). Each is logged in once,
    /// unmeasured, beforehand, so that the client's PBKDF2 (it caches the
    /// SCRAM keys, RFC 5802 §5.1) is not part of the measured phase.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub accounts: u32,
}

/// `msg` options.
#[derive(Debug, Clone, Args)]
pub struct MsgArgs {
    /// Sender/receiver pairs: sender i is account i, receiver is account N+i.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub pairs: u32,
    /// Offered messages per second in total; 0 = saturation (window-limited).
    #[arg(long, default_value_t = 2000)]
    pub rate: u32,
    /// Length of the measured phase, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Messages outstanding per pair at saturation.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
}

/// `fanout` options.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Number of users (accounts 0..N, usually with --user-prefix fan).
    #[arg(long, default_value_t = 2100, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// Contacts per user: users form groups of K+1 that all have each other
    /// in their rosters (subscription both).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub contacts: u32,
    /// Length of the measured phase, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Presence updates outstanding per user (complete once every contact got it).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Clients behave as real ones do: their presence carries XEP-0115
    /// entity capabilities announcing PEP interests (`+notify` for nick,
    /// avatar metadata, OMEMO device list, bookmarks) and they answer the
    /// server's disco#info queries for them (XEP-0115 §6.2).
    #[arg(long)]
    pub caps: bool,
}

/// `offline` options.
#[derive(Debug, Clone, Args)]
pub struct OfflineArgs {
    /// Sender sessions: accounts 0..S. They send no presence.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub senders: u32,
    /// Offline recipients: accounts S..S+R.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub recipients: u32,
    /// Messages stored for each recipient. At most 1000, xmppd's default
    /// quota (Prosody's internal storage keeps 10000, ejabberd has none
    /// unless the `max_user_offline_messages` rule sets one).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub per_recipient: u32,
    /// Recipient logins in flight in the read phase (and the unmeasured
    /// drain and the login baseline before the write phase).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
}

/// How TLS is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsMode {
    /// RFC 6120 §5 STARTTLS.
    Starttls,
    /// XEP-0368 TLS from the first byte, ALPN `xmpp-client`.
    Direct,
}

impl TlsMode {
    /// The name used in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Starttls => "starttls",
            TlsMode::Direct => "direct",
        }
    }
}

/// The SCRAM mechanism to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MechanismArg {
    /// SCRAM-SHA-1 (RFC 5802).
    #[value(name = "SCRAM-SHA-1")]
    ScramSha1,
    /// SCRAM-SHA-256 (RFC 7677).
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM-SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl MechanismArg {
    /// The SCRAM hash function.
    pub fn hash(self) -> HashAlg {
        match self {
            MechanismArg::ScramSha1 => HashAlg::Sha1,
            MechanismArg::ScramSha256 => HashAlg::Sha256,
            MechanismArg::ScramSha512 => HashAlg::Sha512,
        }
    }

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            MechanismArg::ScramSha1 => "SCRAM-SHA-1",
            MechanismArg::ScramSha256 => "SCRAM-SHA-256",
            MechanismArg::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Whether `ip` is a loopback address this tool may send load to:
/// 127.0.0.0/8 or ::1 (IPv4-mapped forms are refused too, to keep the rule
/// simple to audit).
pub fn is_allowed_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// Parses `--host`: an IP address in 127.0.0.0/8 or `::1`.
fn parse_loopback(value: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = value.parse().map_err(|_| format!("`{value}` is not an IP address"))?;
    if is_allowed_target(ip) {
        Ok(ip)
    } else {
        Err(format!("refusing to load {ip}: only loopback targets (127.0.0.0/8, ::1) are allowed"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_allowed() {
        for ok in ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1"] {
            assert!(parse_loopback(ok).is_ok(), "{ok}");
        }
        for refused in
            ["10.0.0.1", "0.0.0.0", "192.168.1.1", "172.16.0.1", "8.8.8.8", "::", "::ffff:127.0.0.1", "fe80::1"]
        {
            let error = parse_loopback(refused).unwrap_err();
            assert!(error.contains("refusing"), "{refused}: {error}");
        }
        assert!(parse_loopback("localhost").unwrap_err().contains("not an IP address"));
    }

    #[test]
    fn flags_parse_after_the_scenario_and_defaults_hold() {
        let cli = Cli::try_parse_from(["xmppd-bench", "msg", "--rate", "0", "--mechanism", "scram-sha-256"]).unwrap();
        let Scenario::Msg(msg) = &cli.scenario else { panic!("not msg") };
        assert_eq!((msg.rate, msg.pairs, msg.window), (0, 1000, 8));
        assert_eq!(cli.common.mechanism, MechanismArg::ScramSha256);
        assert_eq!(cli.common.tls, TlsMode::Starttls);
        assert_eq!(cli.common.port, 5222);
        let cli = Cli::try_parse_from(["xmppd-bench", "offline", "--per-recipient", "1000"]).unwrap();
        let Scenario::Offline(offline) = &cli.scenario else { panic!("not offline") };
        assert_eq!(
            (offline.senders, offline.recipients, offline.per_recipient, offline.concurrency),
            (20, 200, 1000, 50)
        );
        assert!(Cli::try_parse_from(["xmppd-bench", "offline", "--per-recipient", "1001"]).is_err());
        let refused = Cli::try_parse_from(["xmppd-bench", "idle", "--host", "10.1.2.3"]).unwrap_err();
        assert_eq!(refused.exit_code(), 2);
    }
}
