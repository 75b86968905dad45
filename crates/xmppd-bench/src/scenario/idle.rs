//! `idle`: log in and bind N sessions, hold them, report the server's RSS
//! per session.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;
use xmppd_xml::RawElement;

use super::{CLOSE_TIMEOUT, Ctx, Ramp, Stage, shut_down, wait_stage};
use crate::cli::IdleArgs;
use crate::error::Error;
use crate::report::{Report, round3};
use crate::xmpp::{AfterBind, Conn};

/// Runs the scenario, filling `report`.
pub async fn run(ctx: Arc<Ctx>, args: &IdleArgs, report: &mut Report) -> Result<(), Error> {
    let total = u64::from(args.sessions);
    report.sessions = Some(total);
    let rss_before = ctx.sample();
    report.server_rss_before_kb = rss_before.as_ref().map(|sample| sample.rss_kb());

    let (stage, _) = watch::channel(Stage::Ramp);
    let (ramp, mut results) = Ramp::new(&ctx, ctx.common.connect_concurrency, total);
    let mut tasks = JoinSet::new();
    let after = AfterBind { roster: false, presence: args.presence };
    for account in 0..args.sessions {
        let (ctx, ramp, stage) = (ctx.clone(), ramp.clone(), stage.subscribe());
        tasks.spawn(async move {
            if let Some(conn) = ramp.login(&ctx, account, after, |_| Ok(())).await {
                hold(&ctx, conn, stage, |_| {}).await;
            }
        });
    }
    let outcome = results.wait(&ctx, &ramp, total).await;
    outcome.fill(report);
    if let Err(error) = outcome.check(total) {
        shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
        return Err(error);
    }
    report.sessions_up = Some(outcome.ok);

    let cpu_before = ctx.sample();
    let start = tokio::time::Instant::now();
    let hold_for = std::time::Duration::from_secs_f64(args.hold_seconds.max(0.0)).min(ctx.remaining());
    tokio::time::sleep(hold_for).await;
    let cpu_after = ctx.sample();
    report.elapsed_s = round3(start.elapsed().as_secs_f64());
    report.hold_s = Some(report.elapsed_s);
    ctx.set_cpu(report, &cpu_before, &cpu_after);
    if let (Some(before), Some(after)) = (&rss_before, &cpu_after) {
        let delta = i64::try_from(after.rss_kb()).unwrap_or(i64::MAX) - i64::try_from(before.rss_kb()).unwrap_or(0);
        report.server_rss_after_kb = Some(after.rss_kb());
        report.rss_delta_kb = Some(delta);
        if outcome.ok > 0 {
            report.rss_per_session_kb = Some(round3(delta as f64 / outcome.ok as f64));
        }
    }
    shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
    Ok(())
}

/// Keeps a session open, answering server requests and handing every
/// stanza to `on_stanza`, until the stage is `Close`.
pub async fn hold(
    ctx: &Ctx,
    mut conn: Conn,
    mut stage: watch::Receiver<Stage>,
    mut on_stanza: impl FnMut(&RawElement),
) {
    loop {
        loop {
            match conn.poll_stanza() {
                Ok(Some(stanza)) => on_stanza(&stanza),
                Ok(None) => break,
                Err(_) => {
                    ctx.error();
                    return;
                }
            }
        }
        if conn.flush().await.is_err() {
            ctx.error();
            return;
        }
        conn.release_idle();
        tokio::select! {
            _ = wait_stage(&mut stage, Stage::Close) => break,
            read = conn.read_more() => if read.is_err() {
                ctx.error();
                return;
            },
        }
    }
    conn.close(CLOSE_TIMEOUT).await;
}
