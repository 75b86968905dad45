//! `msg`: sender i (account i) sends chat messages to the full JID of
//! receiver i (account pairs+i), at a fixed total rate or, at saturation,
//! with a window of outstanding messages per pair. Bodies carry a send
//! timestamp; receivers record the latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use xmppd_xml::{RawElement, escape_attr};

use super::{CLOSE_TIMEOUT, Ctx, Latencies, Ramp, Stage, now_ns, parse_stamp, shut_down, stamp, wait_stage};
use crate::cli::MsgArgs;
use crate::error::Error;
use crate::report::{Report, round3, round6};
use crate::xmpp::{AfterBind, Conn, NS_CLIENT};

/// Pause after ramp-up so that login traffic (presence echoes, offline
/// messages) is over before the measured phase.
const SETTLE: Duration = Duration::from_millis(500);
/// Longest wait for in-flight messages after the sending phase.
const DRAIN: Duration = Duration::from_secs(5);
/// Upper bound on messages per sender at saturation.
const MAX_PER_SENDER: u64 = 100_000_000;
/// Messages queued per wake-up at saturation, at most.
const BATCH: u32 = 64;

struct Pair {
    /// Outstanding-message window (saturation only).
    window: Semaphore,
    /// The receiver's full JID, once bound.
    receiver: OnceLock<String>,
}

struct Shared {
    ctx: Arc<Ctx>,
    pairs: Vec<Pair>,
    saturation: bool,
    /// Messages each sender may send at most.
    per_sender: u64,
    /// Rate mode: interval between two messages of one sender.
    period: Duration,
    /// Start of the measured phase, set before `Stage::Run`.
    start: OnceLock<Instant>,
    sent: AtomicU64,
    delivered: AtomicU64,
    stale: AtomicU64,
    last_delivery_ns: AtomicU64,
    latencies: Latencies,
}

/// Runs the scenario, filling `report`.
pub async fn run(ctx: Arc<Ctx>, args: &MsgArgs, report: &mut Report) -> Result<(), Error> {
    let pairs = args.pairs;
    let saturation = args.rate == 0;
    report.rate = Some(u64::from(args.rate));
    report.pairs = Some(u64::from(pairs));
    report.window = saturation.then_some(u64::from(args.window));
    let duration = Duration::from_secs_f64(args.duration.max(0.0));
    let (per_sender, period) = if saturation {
        (MAX_PER_SENDER, Duration::ZERO)
    } else {
        let per_sender = (args.duration * f64::from(args.rate) / f64::from(pairs)).ceil() as u64 + 1;
        let period = Duration::from_secs_f64(f64::from(pairs) / f64::from(args.rate)).max(Duration::from_micros(1));
        (per_sender, period)
    };
    let shared = Arc::new(Shared {
        pairs: (0..pairs)
            .map(|_| Pair { window: Semaphore::new(args.window as usize), receiver: OnceLock::new() })
            .collect(),
        saturation,
        per_sender,
        period,
        start: OnceLock::new(),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        last_delivery_ns: AtomicU64::new(0),
        latencies: Latencies::new(64),
        ctx: ctx.clone(),
    });

    let total = 2 * u64::from(pairs);
    let (stage, _) = watch::channel(Stage::Ramp);
    let (ramp, mut results) = Ramp::new(&ctx, ctx.common.connect_concurrency, total);
    let mut tasks = JoinSet::new();
    for pair in 0..pairs {
        let (shared_r, ramp_r, stage_r) = (shared.clone(), ramp.clone(), stage.subscribe());
        tasks.spawn(async move { receiver(shared_r, ramp_r, pair, stage_r).await });
        let (shared_s, ramp_s, stage_s) = (shared.clone(), ramp.clone(), stage.subscribe());
        tasks.spawn(async move { sender(shared_s, ramp_s, pair, stage_s).await });
    }
    let outcome = results.wait(&ctx, &ramp, total).await;
    outcome.fill(report);
    if let Err(error) = outcome.check(total) {
        shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
        return Err(error);
    }
    tokio::time::sleep(SETTLE.min(ctx.remaining())).await;

    let before = ctx.sample();
    report.server_rss_before_kb = before.as_ref().map(|sample| sample.rss_kb());
    let start = Instant::now();
    let start_ns = now_ns();
    let _ = shared.start.set(start);
    stage.send_replace(Stage::Run);
    let send_until = (start + duration).min(ctx.deadline);
    let bar = ctx.progress(duration.as_millis().try_into().unwrap_or(u64::MAX), "msg");
    super::show_progress(&bar, start, send_until, &shared.sent, &shared.delivered).await;
    let send_elapsed = start.elapsed().as_secs_f64();
    stage.send_replace(Stage::Drain);
    let drain_until = (Instant::now() + DRAIN).min(ctx.deadline);
    while shared.delivered.load(Ordering::Relaxed) < shared.sent.load(Ordering::Relaxed) && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after = ctx.sample();
    bar.finish_and_clear();

    let sent = shared.sent.load(Ordering::Relaxed);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let last_ns = shared.last_delivery_ns.load(Ordering::Relaxed);
    let elapsed = send_elapsed.max(last_ns.saturating_sub(start_ns) as f64 / 1e9);
    report.server_rss_after_kb = after.as_ref().map(|sample| sample.rss_kb());
    report.elapsed_s = round3(elapsed);
    report.sent = Some(sent);
    report.delivered = Some(delivered);
    report.lost = Some(sent.saturating_sub(delivered));
    if elapsed > 0.0 {
        report.throughput = Some(round3(delivered as f64 / elapsed));
    }
    report.set_latencies(&shared.latencies.merged());
    if let Some(cpu) = ctx.set_cpu(report, &before, &after)
        && delivered > 0
    {
        report.cpu_s_per_1k = Some(round6(cpu * 1000.0 / delivered as f64));
    }
    let stale = shared.stale.load(Ordering::Relaxed);
    if stale > 0 {
        eprintln!("note: {stale} messages from earlier runs (offline storage) were ignored");
    }
    shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
    if delivered == 0 {
        return Err(Error::Setup(format!("no message was delivered ({sent} sent)")));
    }
    Ok(())
}

/// Receiver `pair`: records every message of this run.
async fn receiver(shared: Arc<Shared>, ramp: Arc<Ramp>, pair: u32, stage: watch::Receiver<Stage>) {
    let ctx = &shared.ctx;
    let account = u32::try_from(shared.pairs.len()).unwrap_or(u32::MAX).saturating_add(pair);
    let after = AfterBind { roster: false, presence: true };
    let Some(conn) = ramp
        .login(ctx, account, after, |conn| {
            if let Some(slot) = shared.pairs.get(pair as usize) {
                let _ = slot.receiver.set(conn.jid.clone());
            }
            Ok(())
        })
        .await
    else {
        return;
    };
    super::idle::hold(ctx, conn, stage, |stanza| {
        if stanza.name() == "message" {
            shared.on_message(pair, stanza);
        }
    })
    .await;
}

impl Shared {
    fn on_message(&self, shard: u32, stanza: &RawElement) {
        if stanza.attr("type") == Some("error") {
            self.ctx.error();
            return;
        }
        let body =
            stanza.parse_element().ok().and_then(|message| message.get_child("body", NS_CLIENT).map(|b| b.text()));
        let Some((sender, _, sent_ns)) = body.as_deref().and_then(|body| parse_stamp(body, &self.ctx.run_id)) else {
            self.stale.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = now_ns();
        self.latencies.record_ns(shard as usize, now.saturating_sub(sent_ns));
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
        if self.saturation
            && let Some(pair) = self.pairs.get(sender as usize)
        {
            pair.window.add_permits(1);
        }
    }
}

/// Sender `pair`: sends to its receiver while the stage is `Run`.
async fn sender(shared: Arc<Shared>, ramp: Arc<Ramp>, pair: u32, mut stage: watch::Receiver<Stage>) {
    let ctx = &shared.ctx;
    let after = AfterBind { roster: false, presence: true };
    let Some(mut conn) = ramp.login(ctx, pair, after, |_| Ok(())).await else { return };
    let Some(slot) = shared.pairs.get(pair as usize) else { return };

    // Until the measured phase: answer the server, nothing else.
    let mut current = Stage::Ramp;
    while current < Stage::Run {
        if !service(&shared, None, &mut conn).await {
            return;
        }
        tokio::select! {
            now = wait_stage(&mut stage, Stage::Run) => current = now,
            read = conn.read_more() => if read.is_err() {
                ctx.error();
                return;
            },
        }
    }
    // A receiver that failed to log in leaves its sender idle.
    let to = slot.receiver.get().map(|jid| escape_attr(jid).into_owned());
    let start = shared.start.get().copied().unwrap_or_else(Instant::now);
    let offset = shared.period.mul_f64(f64::from(pair) / shared.pairs.len().max(1) as f64);
    let mut ticker = tokio::time::interval_at(start + offset, shared.period.max(Duration::from_micros(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut seq: u64 = 0;
    loop {
        let now = *stage.borrow_and_update();
        if now == Stage::Close {
            break;
        }
        let sending = now == Stage::Run && to.is_some() && seq < shared.per_sender;
        if !service(&shared, Some(slot), &mut conn).await {
            return;
        }
        let to = to.as_deref().unwrap_or_default();
        tokio::select! {
            changed = stage.changed() => if changed.is_err() { break },
            read = conn.read_more() => if read.is_err() {
                ctx.error();
                return;
            },
            _ = ticker.tick(), if sending && !shared.saturation => {
                queue_message(&shared, &mut conn, to, pair, &mut seq);
            }
            permit = slot.window.acquire(), if sending && shared.saturation => {
                if let Ok(permit) = permit {
                    permit.forget();
                    queue_message(&shared, &mut conn, to, pair, &mut seq);
                    for _ in 1..BATCH {
                        if seq >= shared.per_sender {
                            break;
                        }
                        let Ok(permit) = slot.window.try_acquire() else { break };
                        permit.forget();
                        queue_message(&shared, &mut conn, to, pair, &mut seq);
                    }
                }
            }
        }
    }
    conn.close(CLOSE_TIMEOUT).await;
}

/// Handles what the server sent and writes pending output. Bounces count
/// as errors and, at saturation, free their window slot. False if the
/// connection is gone.
async fn service(shared: &Shared, slot: Option<&Pair>, conn: &mut Conn) -> bool {
    loop {
        match conn.poll_stanza() {
            Ok(Some(stanza)) => {
                if stanza.name() == "message" && stanza.attr("type") == Some("error") {
                    shared.ctx.error();
                    if shared.saturation
                        && let Some(slot) = slot
                    {
                        slot.window.add_permits(1);
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                shared.ctx.error();
                return false;
            }
        }
    }
    if conn.flush().await.is_err() {
        shared.ctx.error();
        return false;
    }
    conn.release_idle();
    true
}

fn queue_message(shared: &Shared, conn: &mut Conn, to: &str, pair: u32, seq: &mut u64) {
    let body = stamp(&shared.ctx.run_id, pair, *seq);
    conn.queue(format!("<message to='{to}' type='chat' id='m{seq}'><body>{body}</body></message>").as_bytes());
    *seq += 1;
    shared.sent.fetch_add(1, Ordering::Relaxed);
}
