//! `offline`: XEP-0160 offline storage, written and read back.
//!
//! Message k (0..R×P) goes to recipient k mod R (account S + k mod R) and is
//! sent by sender k mod S (account k mod S); its body is a [`stamp`] with k
//! as the sequence number, so every recipient knows which P messages it
//! must get.
//!
//! 1. Drain, not measured: every recipient logs in, sends initial presence,
//!    pings the server and reads until it has been quiet for a moment, so
//!    that messages an earlier run left behind neither count nor push the
//!    store over its quota.
//! 2. Login baseline, measured: the same recipients log in again (initial
//!    presence, ping, close) with nothing stored, at the same concurrency as
//!    the read phase: the server CPU of R logins without deliveries.
//! 3. Write phase, measured: S sessions (no presence, so nothing is
//!    delivered to them) send the messages to the recipients' bare JIDs.
//!    After every [`PING_EVERY`] messages a sender pings the server; a
//!    server handles one stream's stanzas in order, so the answer means the
//!    messages before it were stored or refused (the refusal arrives
//!    first). At most [`PINGS_IN_FLIGHT`] pings are unanswered per sender.
//!    The phase ends with the last sender's last answer.
//! 4. Read phase, measured: the recipients log in (`--concurrency` at a
//!    time), send initial presence and count their messages, each of which
//!    should carry a XEP-0203 `<delay/>`; one closes its stream once it has
//!    all P. The phase ends when every recipient has. Its CPU includes the R
//!    logins; the baseline estimates their share.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use xmppd_xml::{RawElement, escape_attr};

use super::{CLOSE_TIMEOUT, Ctx, Ramp, Stage, now_ns, parse_stamp, shut_down, stamp, wait_stage};
use crate::cli::OfflineArgs;
use crate::error::Error;
use crate::procfs::CpuSource;
use crate::report::{Report, round3, round6};
use crate::xmpp::{AfterBind, Conn, NS_CLIENT, NS_PING, stanza_error_condition};

/// XEP-0203 namespace.
const NS_DELAY: &str = "urn:xmpp:delay";
/// Messages a sender sends between two pings.
const PING_EVERY: u64 = 100;
/// Unanswered pings (batches of [`PING_EVERY`] messages) per sender.
const PINGS_IN_FLIGHT: usize = 4;
/// Longest one recipient login may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Drain: a recipient is drained once nothing arrived for this long after
/// the answer to its ping.
const QUIET: Duration = Duration::from_millis(300);
/// Drain: longest one recipient may take.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// Id of the recipients' pings.
const RECIPIENT_PING_ID: &str = "offline-ping";

/// Message `k` goes to recipient `k mod recipients`, in its slot
/// `k / recipients` (0..per_recipient).
pub fn recipient_of(k: u64, recipients: u32) -> (u32, u64) {
    let recipients = u64::from(recipients.max(1));
    (u32::try_from(k % recipients).unwrap_or(u32::MAX), k / recipients)
}

/// How many of `total` messages sender `sender` sends (messages `sender`,
/// `sender + senders`, ...).
pub fn messages_of(sender: u32, senders: u32, total: u64) -> u64 {
    let (sender, senders) = (u64::from(sender), u64::from(senders.max(1)));
    if sender >= total { 0 } else { (total - sender).div_ceil(senders) }
}

struct Shared {
    ctx: Arc<Ctx>,
    senders: u32,
    recipients: u32,
    per_recipient: u32,
    /// Messages stored in all: recipients × per recipient.
    total: u64,
    /// Write phase: messages sent.
    sent: AtomicU64,
    /// Write phase: messages followed by an answered ping (stored or refused).
    handled: AtomicU64,
    /// Write phase: messages refused with an error.
    bounced: AtomicU64,
    /// The first refusal: condition and text.
    first_bounce: Mutex<Option<String>>,
    /// Write phase: senders that got the answer to their last ping.
    senders_done: AtomicU64,
    /// Write phase: senders whose connection failed.
    senders_failed: AtomicU64,
    /// When the last sender got its last answer (`now_ns`).
    last_done_ns: AtomicU64,
    /// Read phase: distinct messages of this run received by the right recipient.
    delivered: AtomicU64,
    /// ... of which without a XEP-0203 `<delay/>`.
    without_delay: AtomicU64,
    /// Messages of earlier runs (drained, or seen later).
    stale: AtomicU64,
    /// Messages of this run received twice, by the wrong recipient, or
    /// before the read phase.
    unexpected: AtomicU64,
}

/// Runs the scenario, filling `report`.
pub async fn run(ctx: Arc<Ctx>, args: &OfflineArgs, report: &mut Report) -> Result<(), Error> {
    let (senders, recipients) = (args.senders, args.recipients);
    let total = u64::from(recipients) * u64::from(args.per_recipient);
    report.senders = Some(u64::from(senders));
    report.recipients = Some(u64::from(recipients));
    report.per_recipient = Some(u64::from(args.per_recipient));
    report.concurrency = Some(u64::from(args.concurrency));
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        senders,
        recipients,
        per_recipient: args.per_recipient,
        total,
        sent: AtomicU64::new(0),
        handled: AtomicU64::new(0),
        bounced: AtomicU64::new(0),
        first_bounce: Mutex::new(None),
        senders_done: AtomicU64::new(0),
        senders_failed: AtomicU64::new(0),
        last_done_ns: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        without_delay: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        unexpected: AtomicU64::new(0),
    });

    // 1. Drain, not measured.
    let bar = ctx.progress(u64::from(recipients), "drain");
    let drain = visit_all(&shared, args.concurrency, Visit::Drain, &bar).await;
    bar.finish_and_clear();
    drain.fill(report);
    drain.check("drain (before the write phase)", recipients)?;
    let stale = shared.stale.load(Ordering::Relaxed);
    if stale > 0 {
        eprintln!("note: drained {stale} stored messages left by earlier runs");
    }

    // 2. Login baseline: R logins with nothing stored.
    let bar = ctx.progress(u64::from(recipients), "baseline");
    let before = ctx.sample();
    let baseline = visit_all(&shared, args.concurrency, Visit::Baseline, &bar).await;
    let after = ctx.sample();
    bar.finish_and_clear();
    baseline.fill(report);
    baseline.check("login baseline", recipients)?;
    let baseline_cpu = ctx.cpu_between(&before, &after).map(|(cpu, _)| cpu);
    report.baseline_login_cpu_ms = baseline_cpu.map(|cpu| round3(cpu * 1000.0 / f64::from(recipients)));

    // 3. Senders log in.
    let (stage, _) = watch::channel(Stage::Ramp);
    let (ramp, mut results) = Ramp::new(&ctx, ctx.common.connect_concurrency, u64::from(senders));
    let mut tasks = JoinSet::new();
    for index in 0..senders {
        let (shared, ramp, stage) = (shared.clone(), ramp.clone(), stage.subscribe());
        tasks.spawn(async move { sender(shared, ramp, index, stage).await });
    }
    let outcome = results.wait(&ctx, &ramp, u64::from(senders)).await;
    outcome.fill(report);
    if outcome.ok < u64::from(senders) {
        shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
        return Err(Error::Setup(format!(
            "{} of {senders} senders logged in{}",
            outcome.ok,
            outcome.first_error.as_deref().map(|e| format!("; first failure: {e}")).unwrap_or_default()
        )));
    }

    // 4. Write phase.
    let before = ctx.sample();
    report.server_rss_before_kb = before.as_ref().map(|sample| sample.rss_kb());
    let start = Instant::now();
    let start_ns = now_ns();
    stage.send_replace(Stage::Run);
    let bar = ctx.progress(total, "store");
    let mut last_draw = start;
    while shared.senders_done.load(Ordering::Relaxed) + shared.senders_failed.load(Ordering::Relaxed)
        < u64::from(senders)
        && Instant::now() < ctx.deadline
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if last_draw.elapsed() >= Duration::from_millis(100) {
            last_draw = Instant::now();
            bar.set_position(shared.handled.load(Ordering::Relaxed));
            bar.set_message(format!("bounced {}", shared.bounced.load(Ordering::Relaxed)));
        }
    }
    let after = ctx.sample();
    bar.finish_and_clear();
    let done = shared.senders_done.load(Ordering::Relaxed);
    let last_ns = shared.last_done_ns.load(Ordering::Relaxed);
    let store_elapsed = if done == u64::from(senders) && last_ns > start_ns {
        (last_ns - start_ns) as f64 / 1e9
    } else {
        start.elapsed().as_secs_f64()
    };
    let sent = shared.sent.load(Ordering::Relaxed);
    let bounced = shared.bounced.load(Ordering::Relaxed);
    let stored = shared.handled.load(Ordering::Relaxed).saturating_sub(bounced);
    report.sent = Some(sent);
    report.stored = Some(stored);
    report.bounced = Some(bounced);
    report.store_elapsed_s = Some(round3(store_elapsed));
    if store_elapsed > 0.0 {
        report.store_msgs_per_s = Some(round3(stored as f64 / store_elapsed));
    }
    let store_cpu = ctx.cpu_between(&before, &after);
    if let Some((cpu, _)) = store_cpu {
        report.store_cpu_s = Some(round6(cpu));
        if stored > 0 {
            report.store_cpu_s_per_1k = Some(round6(cpu * 1000.0 / stored as f64));
        }
    }
    report.elapsed_s = round3(store_elapsed);
    set_total_cpu(report, &[store_cpu]);
    report.server_rss_after_kb = after.as_ref().map(|sample| sample.rss_kb());
    shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
    if bounced > 0 {
        let first = shared.first_bounce.lock().ok().and_then(|first| first.clone()).unwrap_or_default();
        let hint = if first.starts_with("resource-constraint") {
            ": --per-recipient is above the server's offline quota per user"
        } else {
            ""
        };
        return Err(Error::Setup(format!("the server refused {bounced} of {sent} messages (first: {first}){hint}")));
    }
    if done < u64::from(senders) {
        let failed = shared.senders_failed.load(Ordering::Relaxed);
        return Err(Error::Setup(if failed > 0 {
            format!("write phase: {failed} of {senders} sender connections failed after {stored} of {total} stored")
        } else {
            format!("write phase: max-seconds reached after {stored} of {total} messages were stored")
        }));
    }

    // 5. Read phase.
    let before = ctx.sample();
    let start = Instant::now();
    let bar = ctx.progress(u64::from(recipients), "read");
    let reading = visit_all(&shared, args.concurrency, Visit::Read, &bar);
    tokio::pin!(reading);
    let read = loop {
        tokio::select! {
            read = &mut reading => break read,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                bar.set_message(format!("delivered {}", shared.delivered.load(Ordering::Relaxed)));
            }
        }
    };
    let read_elapsed = start.elapsed().as_secs_f64();
    let after = ctx.sample();
    bar.finish_and_clear();
    read.fill(report);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let unexpected = shared.unexpected.load(Ordering::Relaxed);
    report.delivered = Some(delivered);
    report.without_delay = Some(shared.without_delay.load(Ordering::Relaxed));
    report.stale = Some(shared.stale.load(Ordering::Relaxed));
    report.unexpected = Some(unexpected);
    report.read_elapsed_s = Some(round3(read_elapsed));
    if read_elapsed > 0.0 {
        report.read_msgs_per_s = Some(round3(delivered as f64 / read_elapsed));
    }
    let read_cpu = ctx.cpu_between(&before, &after);
    if let Some((cpu, _)) = read_cpu {
        report.read_cpu_s = Some(round6(cpu));
        if delivered > 0 {
            report.read_cpu_s_per_1k = Some(round6(cpu * 1000.0 / delivered as f64));
            if let Some(baseline) = baseline_cpu {
                report.read_net_cpu_s_per_1k = Some(round6((cpu - baseline).max(0.0) * 1000.0 / delivered as f64));
            }
        }
    }
    report.elapsed_s = round3(store_elapsed + read_elapsed);
    set_total_cpu(report, &[store_cpu, read_cpu]);
    report.server_rss_after_kb = after.as_ref().map(|sample| sample.rss_kb()).or(report.server_rss_after_kb);
    read.check("read phase", recipients).map_err(|error| {
        Error::Setup(format!("{error} ({delivered} of {total} messages delivered in {read_elapsed:.1} s)"))
    })?;
    if delivered < total {
        return Err(Error::Setup(format!("read phase: {delivered} of {total} stored messages were delivered")));
    }
    if unexpected > 0 {
        return Err(Error::Setup(format!(
            "read phase: {unexpected} messages of this run arrived twice, at the wrong recipient or too early"
        )));
    }
    Ok(())
}

/// `server_cpu_s`: the sum over the measured phases.
fn set_total_cpu(report: &mut Report, phases: &[Option<(f64, CpuSource)>]) {
    if phases.iter().any(Option::is_none) {
        return;
    }
    let phases: Vec<(f64, CpuSource)> = phases.iter().flatten().copied().collect();
    report.server_cpu_s = Some(round6(phases.iter().map(|(cpu, _)| cpu).sum()));
    // `stat` as soon as one phase needed it: it is the coarser counter.
    let source = if phases.iter().any(|(_, source)| *source == CpuSource::Stat) {
        CpuSource::Stat
    } else {
        CpuSource::Schedstat
    };
    report.cpu_source = Some(source.name().into());
}

impl Shared {
    /// A message received by `recipient`. In the read phase `seen` holds the
    /// slots already received; true if the message counts as delivered.
    fn on_message(&self, recipient: u32, stanza: &RawElement, seen: Option<&mut [bool]>) -> bool {
        if stanza.attr("type") == Some("error") {
            self.ctx.error();
            return false;
        }
        let Ok(message) = stanza.parse_element() else {
            self.ctx.error();
            return false;
        };
        let body = message.get_child("body", NS_CLIENT).map(|body| body.text());
        let Some((_, k, _)) = body.as_deref().and_then(|body| parse_stamp(body, &self.ctx.run_id)) else {
            self.stale.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let (to, slot) = recipient_of(k, self.recipients);
        let slot_seen = seen.and_then(|seen| seen.get_mut(usize::try_from(slot).ok()?));
        let Some(slot_seen) = slot_seen.filter(|seen| to == recipient && !**seen) else {
            self.unexpected.fetch_add(1, Ordering::Relaxed);
            self.ctx.error();
            return false;
        };
        *slot_seen = true;
        if message.get_child("delay", NS_DELAY).is_none() {
            self.without_delay.fetch_add(1, Ordering::Relaxed);
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// A message error received by a sender: the server refused to store.
    fn on_bounce(&self, stanza: &RawElement) {
        self.bounced.fetch_add(1, Ordering::Relaxed);
        self.ctx.error();
        if let Ok(mut first) = self.first_bounce.lock()
            && first.is_none()
        {
            let described = stanza.parse_element().map(|element| {
                let text = element
                    .get_child("error", NS_CLIENT)
                    .and_then(|error| error.get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas"))
                    .map(|text| format!(" '{}'", text.text()))
                    .unwrap_or_default();
                format!("{}{text}", stanza_error_condition(&element))
            });
            *first = Some(described.unwrap_or_else(|e| format!("unparsable error: {e}")));
        }
    }

    /// Handles what the server sent a sender: refusals, and answers to its
    /// pings (`pending`: id and message count, oldest first; an answer
    /// also settles the batches before it). Writes pending output. False
    /// if the connection is gone.
    async fn serve_sender(&self, conn: &mut Conn, pending: &mut VecDeque<(String, u64)>) -> bool {
        loop {
            match conn.poll_stanza() {
                Ok(Some(stanza)) => {
                    if stanza.name() == "message" && stanza.attr("type") == Some("error") {
                        self.on_bounce(&stanza);
                    } else if stanza.name() == "iq"
                        && let Some(id) = stanza.attr("id")
                        && let Some(position) = pending.iter().position(|(ping, _)| ping == id)
                    {
                        // A ping error (no XEP-0199) still proves the order.
                        for (_, count) in pending.drain(..=position) {
                            self.handled.fetch_add(count, Ordering::Relaxed);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    self.ctx.error();
                    return false;
                }
            }
        }
        if conn.flush().await.is_err() {
            self.ctx.error();
            return false;
        }
        conn.release_idle();
        true
    }
}

/// A ping to the server (XEP-0199 §4.2).
fn ping(domain: &str, id: &str) -> String {
    format!("<iq type='get' id='{id}' to='{}'><ping xmlns='{NS_PING}'/></iq>", escape_attr(domain))
}

/// Sender `index`: logs in without presence, sends its messages in the
/// write phase, then holds the session until `Close`.
async fn sender(shared: Arc<Shared>, ramp: Arc<Ramp>, index: u32, mut stage: watch::Receiver<Stage>) {
    let ctx = &shared.ctx;
    let Some(mut conn) = ramp.login(ctx, index, AfterBind::default(), |_| Ok(())).await else { return };
    let mut pending = VecDeque::new();
    let mut current = Stage::Ramp;
    while current < Stage::Run {
        if !shared.serve_sender(&mut conn, &mut pending).await {
            shared.senders_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tokio::select! {
            now = wait_stage(&mut stage, Stage::Run) => current = now,
            read = conn.read_more() => if read.is_err() {
                ctx.error();
                shared.senders_failed.fetch_add(1, Ordering::Relaxed);
                return;
            },
        }
    }
    let count = messages_of(index, shared.senders, shared.total);
    let domain = ctx.target.domain.clone();
    let mut queued = 0u64;
    let mut batch = 0u64;
    while current == Stage::Run {
        if !shared.serve_sender(&mut conn, &mut pending).await {
            shared.senders_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if queued == count && pending.is_empty() {
            shared.senders_done.fetch_add(1, Ordering::Relaxed);
            shared.last_done_ns.fetch_max(now_ns(), Ordering::Relaxed);
            break;
        }
        if pending.len() < PINGS_IN_FLIGHT && queued < count {
            let n = PING_EVERY.min(count - queued);
            for _ in 0..n {
                let k = u64::from(index) + queued * u64::from(shared.senders);
                let (recipient, _) = recipient_of(k, shared.recipients);
                let to = format!("{}@{domain}", ctx.target.username(shared.senders.saturating_add(recipient)));
                let body = stamp(&ctx.run_id, index, k);
                conn.queue(
                    format!("<message to='{}' type='chat' id='o{k}'><body>{body}</body></message>", escape_attr(&to))
                        .as_bytes(),
                );
                queued += 1;
            }
            let id = format!("p{batch}");
            batch += 1;
            conn.queue(ping(&domain, &id).as_bytes());
            pending.push_back((id, n));
            shared.sent.fetch_add(n, Ordering::Relaxed);
            continue;
        }
        tokio::select! {
            changed = stage.changed() => match changed {
                Ok(()) => current = *stage.borrow_and_update(),
                Err(_) => current = Stage::Close,
            },
            read = conn.read_more() => if read.is_err() {
                ctx.error();
                shared.senders_failed.fetch_add(1, Ordering::Relaxed);
                return;
            },
        }
    }
    super::idle::hold(ctx, conn, stage, |stanza| {
        if stanza.name() == "message" && stanza.attr("type") == Some("error") {
            shared.on_bounce(stanza);
        }
    })
    .await;
}

/// What a recipient login is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    /// Read whatever is stored until quiet (not measured).
    Drain,
    /// Log in, ping, close: the login share of the read phase.
    Baseline,
    /// Read this run's messages.
    Read,
}

/// Outcome of one round of recipient logins.
#[derive(Debug, Default)]
struct Round {
    ok: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Round {
    /// Counts the failed logins.
    fn fill(&self, report: &mut Report) {
        report.login_failures += self.failed;
        report.errors += self.failed;
    }

    /// An error unless every recipient was done.
    fn check(&self, what: &str, recipients: u32) -> Result<(), Error> {
        if self.ok == u64::from(recipients) {
            return Ok(());
        }
        let not_started = u64::from(recipients).saturating_sub(self.ok + self.failed);
        Err(Error::Setup(format!(
            "{what}: {} of {recipients} recipients failed{}{}",
            self.failed,
            if not_started > 0 { format!(", {not_started} not started before max-seconds") } else { String::new() },
            self.first_error.as_deref().map(|e| format!("; first: {e}")).unwrap_or_default()
        )))
    }
}

/// Visits every recipient, `concurrency` at a time.
async fn visit_all(shared: &Arc<Shared>, concurrency: u32, visit: Visit, bar: &ProgressBar) -> Round {
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.min(shared.recipients) {
        let (shared, next, bar) = (shared.clone(), next.clone(), bar.clone());
        workers.spawn(async move {
            let mut round = Round::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= u64::from(shared.recipients) || shared.ctx.remaining().is_zero() {
                    break;
                }
                let recipient = u32::try_from(index).unwrap_or(u32::MAX);
                match visit_one(&shared, recipient, visit).await {
                    Ok(()) => round.ok += 1,
                    Err(error) => {
                        round.failed += 1;
                        let account = shared.senders.saturating_add(recipient);
                        round
                            .first_error
                            .get_or_insert_with(|| format!("{}: {error}", shared.ctx.target.username(account)));
                    }
                }
                bar.inc(1);
            }
            round
        });
    }
    let mut total = Round::default();
    while let Some(joined) = workers.join_next().await {
        if let Ok(round) = joined {
            total.ok += round.ok;
            total.failed += round.failed;
            if total.first_error.is_none() {
                total.first_error = round.first_error;
            }
        }
    }
    total
}

/// One recipient login: initial presence, then what `visit` asks, then
/// close.
async fn visit_one(shared: &Shared, recipient: u32, visit: Visit) -> Result<(), Error> {
    let ctx = &shared.ctx;
    let account = shared.senders.saturating_add(recipient);
    let limit = ctx.deadline.min(Instant::now() + LOGIN_TIMEOUT);
    let after = AfterBind { roster: false, presence: true };
    let mut conn = tokio::time::timeout_at(limit, Conn::login(&ctx.target, account, after))
        .await
        .unwrap_or(Err(Error::Timeout("login")))?;
    match visit {
        Visit::Drain | Visit::Baseline => {
            let limit = ctx.deadline.min(Instant::now() + DRAIN_LIMIT);
            conn.queue(ping(&ctx.target.domain, RECIPIENT_PING_ID).as_bytes());
            loop {
                let stanza = tokio::time::timeout_at(limit, conn.next_stanza())
                    .await
                    .map_err(|_| Error::Timeout("the answer to a ping"))??;
                if stanza.name() == "message" {
                    shared.on_message(recipient, &stanza, None);
                } else if stanza.name() == "iq" && stanza.attr("id") == Some(RECIPIENT_PING_ID) {
                    break;
                }
            }
            // Some servers route stored messages asynchronously: wait until
            // nothing more comes.
            if visit == Visit::Drain {
                loop {
                    conn.flush().await?;
                    let quiet = QUIET.min(limit.saturating_duration_since(Instant::now()));
                    let Ok(stanza) = tokio::time::timeout(quiet, conn.next_stanza()).await else { break };
                    let stanza = stanza?;
                    if stanza.name() == "message" {
                        shared.on_message(recipient, &stanza, None);
                    }
                }
            }
        }
        Visit::Read => {
            let per_recipient = shared.per_recipient;
            let mut seen = vec![false; per_recipient as usize];
            let mut got = 0u32;
            while got < per_recipient {
                let stanza = match tokio::time::timeout_at(ctx.deadline, conn.next_stanza()).await {
                    Ok(stanza) => stanza?,
                    Err(_) => {
                        return Err(Error::Setup(format!(
                            "{got} of {per_recipient} stored messages arrived before max-seconds"
                        )));
                    }
                };
                if stanza.name() == "message" && shared.on_message(recipient, &stanza, Some(&mut seen)) {
                    got += 1;
                }
            }
        }
    }
    conn.close(CLOSE_TIMEOUT).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recipient_gets_its_share_from_the_senders() {
        let (senders, recipients, per_recipient) = (3u32, 7u32, 5u64);
        let total = u64::from(recipients) * per_recipient;
        assert_eq!((0..senders).map(|s| messages_of(s, senders, total)).sum::<u64>(), total);
        assert_eq!(messages_of(0, senders, total), 12);
        assert_eq!(messages_of(2, senders, total), 11);
        assert_eq!(messages_of(5, 10, 3), 0);
        let mut slots = vec![vec![false; per_recipient as usize]; recipients as usize];
        for k in 0..total {
            let (recipient, slot) = recipient_of(k, recipients);
            let seen = &mut slots[recipient as usize][slot as usize];
            assert!(!*seen, "message {k} collides");
            *seen = true;
        }
        assert!(slots.iter().flatten().all(|seen| *seen));
    }

    #[test]
    fn pings_go_to_the_domain() {
        assert_eq!(
            ping("local'host", "p1"),
            "<iq type='get' id='p1' to='local&apos;host'><ping xmlns='urn:xmpp:ping'/></iq>"
        );
    }
}
