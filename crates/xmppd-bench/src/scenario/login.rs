//! `login`: full logins (connect, TLS, SCRAM, bind, roster get, initial
//! presence, close) with bounded concurrency; logins/s and server CPU per
//! login.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{CLOSE_TIMEOUT, Ctx, new_histogram};
use crate::cli::LoginArgs;
use crate::error::Error;
use crate::report::{Report, round3};
use crate::xmpp::{AfterBind, Conn};

/// Longest one login may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the scenario, filling `report`.
pub async fn run(ctx: Arc<Ctx>, args: &LoginArgs, report: &mut Report) -> Result<(), Error> {
    // At least one account per login in flight, never more than logins.
    let pool = args.accounts.min(args.logins).max(args.concurrency.min(args.logins)).max(1);
    report.logins = Some(u64::from(args.logins));
    report.concurrency = Some(u64::from(args.concurrency));
    report.accounts = Some(u64::from(pool));

    // Warm-up, not measured: every account once, so the client has its
    // SCRAM keys cached and the server has seen every account.
    let warm_up = logins(&ctx, pool, pool, args.concurrency, ctx.progress(u64::from(pool), "warm-up")).await;
    report.login_failures += warm_up.failed;
    report.errors += warm_up.failed;
    if warm_up.failed * 100 > u64::from(pool) || warm_up.ok == 0 {
        return Err(Error::Setup(format!(
            "warm-up: {} of {pool} logins failed{}",
            warm_up.failed,
            warm_up.first_error.map(|e| format!("; first: {e}")).unwrap_or_default()
        )));
    }

    let before = ctx.sample();
    report.server_rss_before_kb = before.as_ref().map(|sample| sample.rss_kb());
    let start = Instant::now();
    let measured =
        logins(&ctx, args.logins, pool, args.concurrency, ctx.progress(u64::from(args.logins), "login")).await;
    let elapsed = start.elapsed().as_secs_f64();
    let after = ctx.sample();
    report.server_rss_after_kb = after.as_ref().map(|sample| sample.rss_kb());
    report.elapsed_s = round3(elapsed);
    report.completed = Some(measured.ok);
    report.login_failures += measured.failed;
    report.errors += measured.failed;
    if elapsed > 0.0 {
        report.logins_per_s = Some(round3(measured.ok as f64 / elapsed));
    }
    report.set_latencies(&measured.micros);
    if let Some(cpu) = ctx.set_cpu(report, &before, &after)
        && measured.ok > 0
    {
        report.cpu_ms_per_login = Some(round3(cpu * 1000.0 / measured.ok as f64));
    }
    let attempted = measured.ok + measured.failed;
    if attempted < u64::from(args.logins) {
        return Err(Error::Setup(format!("max-seconds reached after {attempted} of {} logins", args.logins)));
    }
    if measured.failed * 100 > attempted {
        return Err(Error::Setup(format!(
            "{} of {attempted} logins failed (more than 1%){}",
            measured.failed,
            measured.first_error.map(|e| format!("; first: {e}")).unwrap_or_default()
        )));
    }
    Ok(())
}

/// Outcome of a batch of logins.
struct Logins {
    ok: u64,
    failed: u64,
    first_error: Option<String>,
    /// Whole-login durations in µs.
    micros: Histogram<u64>,
}

/// `count` logins, login i on account `i % pool`, `concurrency` at a time.
async fn logins(ctx: &Arc<Ctx>, count: u32, pool: u32, concurrency: u32, bar: ProgressBar) -> Logins {
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.min(count) {
        let (ctx, next, bar) = (ctx.clone(), next.clone(), bar.clone());
        workers.spawn(async move {
            let mut outcome = Logins { ok: 0, failed: 0, first_error: None, micros: new_histogram() };
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= u64::from(count) || ctx.remaining().is_zero() {
                    break;
                }
                let account = u32::try_from(index % u64::from(pool.max(1))).unwrap_or(0);
                let start = Instant::now();
                let limit = ctx.deadline.min(start + LOGIN_TIMEOUT);
                let after = AfterBind { roster: true, presence: true };
                match tokio::time::timeout_at(limit, Conn::login(&ctx.target, account, after)).await {
                    Ok(Ok(conn)) => {
                        conn.close(CLOSE_TIMEOUT).await;
                        outcome.ok += 1;
                        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                        outcome.micros.saturating_record(micros.max(1));
                    }
                    Ok(Err(error)) => {
                        outcome.failed += 1;
                        outcome.first_error.get_or_insert_with(|| format!("{}: {error}", ctx.target.username(account)));
                    }
                    Err(_) => {
                        outcome.failed += 1;
                        outcome
                            .first_error
                            .get_or_insert_with(|| format!("{}: timed out", ctx.target.username(account)));
                    }
                }
                bar.inc(1);
            }
            outcome
        });
    }
    let mut total = Logins { ok: 0, failed: 0, first_error: None, micros: new_histogram() };
    while let Some(joined) = workers.join_next().await {
        if let Ok(outcome) = joined {
            total.ok += outcome.ok;
            total.failed += outcome.failed;
            if total.first_error.is_none() {
                total.first_error = outcome.first_error;
            }
            let _ = total.micros.add(&outcome.micros);
        }
    }
    bar.finish_and_clear();
    total
}
