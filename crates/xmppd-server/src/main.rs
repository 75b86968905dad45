//! `xmppd`: the XMPP server binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use xmppd_server::{check, config_file, export, import, rosters, serve, users};

/// xmppd — an XMPP server.
#[derive(Debug, Parser)]
#[command(name = "xmppd", version, about)]
struct Cli {
    /// Configuration file (TOML). Without one, built-in defaults are used:
    /// host `localhost`, data in `./data`, a generated self-signed certificate.
    #[arg(long, short, global = true, env = "XMPPD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGTERM or Ctrl-C.
    Serve,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage rosters.
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// Validate the configuration and certificates; print every problem.
    Check,
    /// Export accounts as XEP-0227 (PIEFXIS) XML: SCRAM credentials as
    /// stored (never a plaintext password), rosters with pending
    /// subscription requests, vCards, private XML, offline messages and PEP nodes.
    ///
    /// Written one account at a time; prints the count of each kind at the
    /// end (to stderr when FILE is `-`). Read-only, so it can run while the
    /// server is running, but a running server may change data during the
    /// export (even within one account); stop it for an exact snapshot. On
    /// error, a partly written FILE is removed. FILE is made readable by its
    /// owner only: SCRAM keys allow offline password guessing.
    Export {
        /// Only this host (default: every configured host).
        #[arg(long)]
        host: Option<String>,
        /// The output file (overwritten), or `-` for standard output.
        file: PathBuf,
    },
    /// Import accounts from a XEP-0227 (PIEFXIS) file: credentials (SCRAM
    /// kept as is, plaintext passwords hashed with auth.scram_iterations),
    /// rosters with groups and subscription states, pending subscription
    /// requests, vCards, private XML, offline messages and PEP nodes with
    /// their items. Other elements are not imported (their count is shown).
    ///
    /// The whole file is checked first: a malformed file (not well-formed,
    /// truncated, with a DTD or an entity) is reported as FILE:line:column
    /// and nothing is written. Then each account is written in its own
    /// transaction, all of its data or nothing. Accounts that exist already
    /// are left untouched, so running the import again changes nothing.
    /// Bad records (invalid data, duplicate accounts, hosts not in
    /// server.hosts) are skipped and listed with their location; the exit
    /// status is then non-zero. Prints the count of each kind at the end.
    ///
    /// Run it while the imported users are offline (best: with the server
    /// stopped): a running server caches the rosters of online users and
    /// sends no roster pushes for imported data.
    Import {
        /// What PATH is: a XEP-0227 file (default), ejabberd's
        /// `export_piefxis` output, or Prosody's data directory (internal
        /// file storage; SCRAM keys are kept, so passwords keep working).
        #[arg(long, value_enum, default_value = "xep0227")]
        from: import::Source,
        /// The file (XIncludes are followed relative to its directory) or,
        /// with `--from prosody`, Prosody's data directory.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RosterCommand {
    /// Add roster items from standard input, one
    /// `user@host contact [subscription] [name]` per line (subscription
    /// none, to, from or both, default both; `#` comments and blank lines
    /// skipped). Every line is checked first: any bad line is reported with
    /// its number and nothing is written. Then one transaction per host; an
    /// item replaces the user's item for the same contact. Run it while the
    /// users are offline (best: with the server stopped), as the server
    /// caches the rosters of online users.
    Import,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. Without --password, the password is read from the
    /// first line of standard input.
    Add {
        /// The account's bare JID, e.g. juliet@localhost.
        jid: String,
        /// The password (visible in the process list; prefer stdin).
        #[arg(long)]
        password: Option<String>,
    },
    /// Create many accounts from standard input, one `jid password` per line,
    /// in a single transaction.
    Import {
        /// Lines carry already derived SCRAM credentials instead of a
        /// password: `jid SCRAM-SHA-1:ITERATIONS:SALT:STORED_KEY:SERVER_KEY
        /// [SCRAM-SHA-256:…] [SCRAM-SHA-512:…]`, binary values in base64.
        /// Nothing is derived, so this is fast; clients can only use the
        /// SCRAM variants given.
        #[arg(long)]
        hashed: bool,
    },
    /// Delete an account and its data.
    Del {
        /// The account's bare JID.
        jid: String,
    },
    /// Change a password (read from stdin without --password).
    Passwd {
        /// The account's bare JID.
        jid: String,
        /// The new password.
        #[arg(long)]
        password: Option<String>,
    },
    /// List the accounts of a host (all hosts without one).
    List {
        /// The host.
        host: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config_file::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(problems) => {
            for problem in problems {
                eprintln!("config error: {problem}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(config).await,
            Command::Check => check::run(&config).await,
            Command::Export { host, file } => export::run(&config, host.as_deref(), &file).await,
            Command::Import { from, file } => import::run_from(&config, from, &file).await,
            Command::User { command } => match command {
                UserCommand::Add { jid, password } => users::add(&config, &jid, password).await,
                UserCommand::Import { hashed } => users::import(&config, hashed).await,
                UserCommand::Del { jid } => users::delete(&config, &jid).await,
                UserCommand::Passwd { jid, password } => users::passwd(&config, &jid, password).await,
                UserCommand::List { host } => users::list(&config, host.as_deref()).await,
            },
            Command::Roster { command } => match command {
                RosterCommand::Import => rosters::import(&config).await,
            },
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
