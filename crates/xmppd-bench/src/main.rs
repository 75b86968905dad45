//! `xmppd-bench`: a load generator that drives many real XMPP client
//! connections (RFC 6120: STARTTLS or XEP-0368 direct TLS, SCRAM, resource
//! binding) against any XMPP server on loopback, and reports one JSON line
//! on stdout plus a human summary on stderr.
//!
//! Scenarios: `idle` (server RSS per session), `login` (logins/s, server CPU
//! per login), `msg` (one-to-one message throughput, latency, CPU per 1000),
//! `fanout` (presence to rosters, deliveries/s, CPU per 1000) and `offline`
//! (XEP-0160 storage: messages stored/s and read back/s, CPU per 1000). Server
//! RSS and CPU come from `/proc/<--server-pid>`, sampled before and after
//! the measured phases only.
//!
//! Design for scale: one tokio task per connection on a multi-thread
//! runtime, a 4 KiB read buffer that exists only during a read, parser and
//! write buffers released when idle, ramp-up with a bounded number of
//! logins in flight, and the soft `RLIMIT_NOFILE` raised to the hard limit.
//! Every phase is bounded by `--max-seconds`.

#![warn(missing_docs)]

mod cli;
mod error;
mod procfs;
mod report;
mod scenario;
mod tls;
mod xmpp;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser as _;
use rand::Rng as _;

use crate::cli::{Cli, Scenario};
use crate::error::Error;
use crate::report::{Report, round3};
use crate::scenario::Ctx;
use crate::tls::TlsConfigs;
use crate::xmpp::{KeyCache, Target};

/// File descriptors kept free for everything but sessions.
const SPARE_FDS: u64 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = std::time::Instant::now();
    let common = &cli.common;
    let mut report = Report {
        scenario: cli.scenario.name().into(),
        label: common.label.clone(),
        tls: common.tls.name().into(),
        mechanism: common.mechanism.name().into(),
        host: common.host.to_string(),
        port: common.port,
        domain: common.domain.clone(),
        ..Report::default()
    };
    let result = run(&cli, &mut report);
    report.total_s = round3(started.elapsed().as_secs_f64());
    report.bench_rss_kb = procfs::own_peak_rss_kb();
    report.ok = result.is_ok();
    report.error = result.err().map(|error| error.to_string());
    eprintln!("{}", report.summary());
    if let Err(error) = report.emit(common.json_out.as_deref()) {
        eprintln!("xmppd-bench: writing the JSON line: {error}");
        return ExitCode::FAILURE;
    }
    if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// File descriptors a scenario needs at once.
fn sessions_needed(scenario: &Scenario) -> u64 {
    match scenario {
        Scenario::Idle(args) => u64::from(args.sessions),
        Scenario::Login(args) => u64::from(args.concurrency),
        Scenario::Msg(args) => 2 * u64::from(args.pairs),
        Scenario::Fanout(args) => u64::from(args.users),
        Scenario::Offline(args) => u64::from(args.senders) + u64::from(args.concurrency),
    }
}

fn run(cli: &Cli, report: &mut Report) -> Result<(), Error> {
    let common = &cli.common;
    let needed = sessions_needed(&cli.scenario) + SPARE_FDS;
    let limit = rlimit::increase_nofile_limit(u64::MAX).map_err(|e| Error::Setup(format!("RLIMIT_NOFILE: {e}")))?;
    if limit < needed {
        return Err(Error::Setup(format!(
            "{needed} file descriptors are needed but the limit is {limit}; raise the hard limit (ulimit -Hn)"
        )));
    }
    let tls_configs = TlsConfigs::new().map_err(|e| Error::Setup(format!("TLS configuration: {e}")))?;
    let target = Arc::new(Target {
        addr: SocketAddr::new(common.host, common.port),
        domain: common.domain.clone(),
        tls: common.tls,
        tls_configs,
        hash: common.mechanism.hash(),
        user_prefix: common.user_prefix.clone(),
        password: common.password.clone(),
        keys: KeyCache::default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Setup(format!("starting the runtime: {e}")))?;
    let max = Duration::from_secs(common.max_seconds.max(1));
    // Leave time at the end for closing sessions and reporting.
    let margin = (max / 10).min(Duration::from_secs(5));
    let result = runtime.block_on(async {
        // The runtime shutdown and the report need a moment after this.
        let hard_deadline = tokio::time::Instant::now() + max.saturating_sub(Duration::from_millis(500));
        let ctx = Arc::new(Ctx {
            target,
            common: common.clone(),
            deadline: hard_deadline - margin,
            ticks_per_second: procfs::clock_ticks_per_second(),
            errors: AtomicU64::new(0),
            run_id: format!("{:08x}", rand::rng().random::<u32>()),
        });
        let scenario = async {
            match &cli.scenario {
                Scenario::Idle(args) => scenario::idle::run(ctx.clone(), args, report).await,
                Scenario::Login(args) => scenario::login::run(ctx.clone(), args, report).await,
                Scenario::Msg(args) => scenario::msg::run(ctx.clone(), args, report).await,
                Scenario::Fanout(args) => scenario::fanout::run(ctx.clone(), args, report).await,
                Scenario::Offline(args) => scenario::offline::run(ctx.clone(), args, report).await,
            }
        };
        let result = tokio::time::timeout_at(hard_deadline, scenario)
            .await
            .unwrap_or(Err(Error::Timeout("--max-seconds reached")));
        report.errors += ctx.errors.load(Ordering::Relaxed);
        result
    });
    runtime.shutdown_timeout(Duration::from_millis(300));
    result
}
