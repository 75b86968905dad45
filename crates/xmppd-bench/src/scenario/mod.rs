//! What all scenarios share: the run context, ramp-up with bounded login
//! concurrency, the stage signal that drives session tasks, latency
//! histograms and the wall clock carried in message bodies.

pub mod fanout;
pub mod idle;
pub mod login;
pub mod msg;
pub mod offline;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::Common;
use crate::error::Error;
use crate::procfs::{self, CpuSource, Sample};
use crate::report::{Report, round3, round6};
use crate::xmpp::{AfterBind, Conn, Target};

/// Longest a single login may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a session may take to close its stream.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the end of a run waits for session tasks to close.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// Latency histogram bound (60 s in µs).
const MAX_LATENCY_US: u64 = 60_000_000;

/// Where the session tasks of a scenario are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Logging in.
    Ramp,
    /// Measured phase: send.
    Run,
    /// Stop sending, keep receiving.
    Drain,
    /// Close the stream and end.
    Close,
}

/// The run: target, options, deadline, counters.
pub struct Ctx {
    /// Where to connect.
    pub target: Arc<Target>,
    /// Common options.
    pub common: Common,
    /// Everything must be done by then (a margin before `--max-seconds`).
    pub deadline: Instant,
    /// `CLK_TCK`.
    pub ticks_per_second: u64,
    /// Non-fatal errors (dropped connections, bounced stanzas).
    pub errors: AtomicU64,
    /// Random run id carried in bodies, to tell stale (offline) messages
    /// from an earlier run apart.
    pub run_id: String,
}

impl Ctx {
    /// Time left until the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Counts a non-fatal error.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Samples the server process, if `--server-pid` was given.
    pub fn sample(&self) -> Option<Sample> {
        procfs::sample(self.common.server_pid?, self.common.include_children)
    }

    /// Server CPU seconds between two samples, and the counter they come from.
    pub fn cpu_between(&self, before: &Option<Sample>, after: &Option<Sample>) -> Option<(f64, CpuSource)> {
        let (before, after) = (before.as_ref()?, after.as_ref()?);
        Some(procfs::cpu_seconds(before, after, self.ticks_per_second))
    }

    /// Fills the CPU fields from two samples; returns the CPU seconds.
    pub fn set_cpu(&self, report: &mut Report, before: &Option<Sample>, after: &Option<Sample>) -> Option<f64> {
        let (seconds, source) = self.cpu_between(before, after)?;
        report.server_cpu_s = Some(round6(seconds));
        report.cpu_source = Some(source.name().into());
        Some(seconds)
    }

    /// A progress bar on stderr (hidden when stderr is not a terminal).
    pub fn progress(&self, length: u64, what: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{prefix:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_owned());
        bar
    }
}

/// Login outcome sent by a session task to the scenario.
struct LoginResult {
    outcome: Result<(), String>,
}

/// Ramp-up: bounded login concurrency and outcome collection.
pub struct Ramp {
    gate: Semaphore,
    results: mpsc::UnboundedSender<LoginResult>,
    progress: ProgressBar,
    aborted: AtomicBool,
}

/// What a ramp-up achieved.
#[derive(Debug, Default)]
pub struct RampOutcome {
    /// Sessions logged in.
    pub ok: u64,
    /// Logins that failed.
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Seconds from start to the last outcome.
    pub elapsed: f64,
    /// Whether not every login reported before the deadline.
    pub timed_out: bool,
}

impl RampOutcome {
    /// An error if more than 1% of the logins failed or timed out.
    pub fn check(&self, total: u64) -> Result<(), Error> {
        if self.timed_out {
            return Err(Error::Setup(format!(
                "ramp-up did not finish in time: {} of {total} sessions logged in, {} failed{}",
                self.ok,
                self.failed,
                first(&self.first_error)
            )));
        }
        if self.failed * 100 > total {
            return Err(Error::Setup(format!(
                "{} of {total} logins failed (more than 1%){}",
                self.failed,
                first(&self.first_error)
            )));
        }
        Ok(())
    }

    /// Fills the ramp fields.
    pub fn fill(&self, report: &mut Report) {
        report.login_failures += self.failed;
        report.errors += self.failed;
        report.ramp_s = Some(round3(self.elapsed));
        if self.elapsed > 0.0 {
            report.ramp_logins_per_s = Some(round3(self.ok as f64 / self.elapsed));
        }
    }
}

fn first(error: &Option<String>) -> String {
    error.as_deref().map(|e| format!("; first: {e}")).unwrap_or_default()
}

/// The receiving side of a [`Ramp`].
pub struct RampResults(mpsc::UnboundedReceiver<LoginResult>);

impl Ramp {
    /// A ramp with `concurrency` logins in flight at most.
    pub fn new(ctx: &Ctx, concurrency: u32, total: u64) -> (Arc<Ramp>, RampResults) {
        let (results, receiver) = mpsc::unbounded_channel();
        let ramp = Ramp {
            gate: Semaphore::new(concurrency.max(1) as usize),
            results,
            progress: ctx.progress(total, "login"),
            aborted: AtomicBool::new(false),
        };
        (Arc::new(ramp), RampResults(receiver))
    }

    /// Logs `account` in (waiting for a login slot), reports the outcome,
    /// and returns the connection. `check` can veto a login that worked
    /// on the wire (e.g. an empty roster).
    pub async fn login(
        &self,
        ctx: &Ctx,
        account: u32,
        after: AfterBind,
        check: impl FnOnce(&Conn) -> Result<(), String>,
    ) -> Option<Conn> {
        let permit = self.gate.acquire().await.ok()?;
        if self.aborted.load(Ordering::Relaxed) {
            return None;
        }
        let limit = ctx.deadline.min(Instant::now() + LOGIN_TIMEOUT);
        let result = tokio::time::timeout_at(limit, Conn::login(&ctx.target, account, after))
            .await
            .unwrap_or(Err(Error::Timeout("login")));
        drop(permit);
        self.progress.inc(1);
        let (conn, outcome) = match result {
            Ok(conn) => match check(&conn) {
                Ok(()) => (Some(conn), Ok(())),
                Err(problem) => {
                    conn.close(CLOSE_TIMEOUT).await;
                    (None, Err(problem))
                }
            },
            Err(error) => (None, Err(format!("{}: {error}", ctx.target.username(account)))),
        };
        let _ = self.results.send(LoginResult { outcome });
        conn
    }

    /// Makes logins that have not started yet give up.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
        self.gate.close();
    }
}

impl RampResults {
    /// Waits for `total` login outcomes or the deadline.
    pub async fn wait(&mut self, ctx: &Ctx, ramp: &Ramp, total: u64) -> RampOutcome {
        let start = Instant::now();
        let mut outcome = RampOutcome::default();
        while outcome.ok + outcome.failed < total {
            match tokio::time::timeout_at(ctx.deadline, self.0.recv()).await {
                Ok(Some(result)) => match result.outcome {
                    Ok(()) => outcome.ok += 1,
                    Err(error) => {
                        outcome.failed += 1;
                        outcome.first_error.get_or_insert(error);
                    }
                },
                Ok(None) => break,
                Err(_) => {
                    outcome.timed_out = true;
                    break;
                }
            }
        }
        outcome.elapsed = start.elapsed().as_secs_f64();
        ramp.progress.finish_and_clear();
        outcome
    }
}

/// Signals `Close`, waits (bounded) for the session tasks, aborts the rest.
pub async fn shut_down(ctx: &Ctx, stage: &watch::Sender<Stage>, ramp: Option<&Ramp>, tasks: &mut JoinSet<()>) {
    if let Some(ramp) = ramp {
        ramp.abort();
    }
    stage.send_replace(Stage::Close);
    let limit = SHUTDOWN_WAIT.min(ctx.remaining());
    let _ = tokio::time::timeout(limit, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
}

/// Nanoseconds on a process-wide monotonic clock (for send timestamps).
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Latency histograms in µs, sharded so that receivers rarely contend.
pub struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Latencies {
    /// `shards` histograms of 1 µs .. 60 s with 3 significant digits.
    pub fn new(shards: usize) -> Latencies {
        let shards = (0..shards.max(1)).map(|_| Mutex::new(new_histogram())).collect();
        Latencies { shards }
    }

    /// Records one latency in nanoseconds.
    pub fn record_ns(&self, shard: usize, ns: u64) {
        let Some(histogram) = self.shards.get(shard % self.shards.len().max(1)) else { return };
        if let Ok(mut histogram) = histogram.lock() {
            histogram.saturating_record((ns / 1000).clamp(1, MAX_LATENCY_US));
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut total = new_histogram();
        for shard in &self.shards {
            if let Ok(shard) = shard.lock() {
                let _ = total.add(&*shard);
            }
        }
        total
    }
}

/// An empty latency histogram: 1 µs .. 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// Waits until the stage changes to one at or past `stage`, or the sender
/// is gone.
pub async fn wait_stage(receiver: &mut watch::Receiver<Stage>, stage: Stage) -> Stage {
    loop {
        let current = *receiver.borrow_and_update();
        if current >= stage {
            return current;
        }
        if receiver.changed().await.is_err() {
            return Stage::Close;
        }
    }
}

/// Body/status marker: `xb <run> <sender> <seq> <send-ns>`.
pub fn stamp(run_id: &str, sender: u32, seq: u64) -> String {
    format!("xb {run_id} {sender} {seq} {}", now_ns())
}

/// Parses a [`stamp`]: `(sender, seq, send-ns)` if it is from run `run_id`.
pub fn parse_stamp(text: &str, run_id: &str) -> Option<(u32, u64, u64)> {
    let mut parts = text.split_ascii_whitespace();
    if parts.next()? != "xb" || parts.next()? != run_id {
        return None;
    }
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((sender, seq, sent))
}

/// Finds a [`stamp`] of run `run_id` anywhere in a stanza's bytes (it is
/// plain ASCII, so servers copy it verbatim into `<body/>` or `<status/>`
/// whatever else they change), without building a DOM.
pub fn find_stamp(stanza: &[u8], run_id: &str) -> Option<(u32, u64, u64)> {
    let marker = format!("xb {run_id} ");
    let start = stanza.windows(marker.len()).position(|window| window == marker.as_bytes())?;
    let rest = stanza.get(start..)?;
    let end = rest.iter().position(|byte| *byte == b'<').unwrap_or(rest.len());
    parse_stamp(std::str::from_utf8(rest.get(..end)?).ok()?, run_id)
}

/// Updates `bar` every 100 ms until `until` with the elapsed time and the
/// sent and delivered counters of the measured phase.
pub async fn show_progress(bar: &ProgressBar, start: Instant, until: Instant, sent: &AtomicU64, delivered: &AtomicU64) {
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now()))).await;
        bar.set_position(start.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        bar.set_message(format!(
            "sent {} delivered {}",
            sent.load(Ordering::Relaxed),
            delivered.load(Ordering::Relaxed)
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_other_runs_are_ignored() {
        let text = stamp("r1", 12, 34);
        let (sender, seq, sent) = parse_stamp(&text, "r1").unwrap();
        assert_eq!((sender, seq), (12, 34));
        assert!(sent <= now_ns());
        assert_eq!(parse_stamp(&text, "r2"), None);
        assert_eq!(parse_stamp("hello", "r1"), None);
        assert_eq!(parse_stamp("xb r1 1 2", "r1"), None);
    }

    #[test]
    fn stamps_are_found_in_raw_stanzas() {
        let stanza = format!(
            "<message from='a@b/c' type='chat'><body xmlns='jabber:client'>{}</body></message>",
            stamp("r1", 7, 8)
        );
        assert_eq!(find_stamp(stanza.as_bytes(), "r1").map(|(s, q, _)| (s, q)), Some((7, 8)));
        assert_eq!(find_stamp(stanza.as_bytes(), "r2"), None);
        assert_eq!(find_stamp(b"<presence><status>xb r1 1</status></presence>", "r1"), None);
        assert_eq!(find_stamp(b"", "r1"), None);
    }

    #[test]
    fn latencies_merge_across_shards() {
        let latencies = Latencies::new(4);
        for i in 0..100u64 {
            latencies.record_ns(i as usize, (i + 1) * 1_000_000);
        }
        latencies.record_ns(0, 0);
        let merged = latencies.merged();
        assert_eq!(merged.len(), 101);
        assert!((49_000..=51_000).contains(&merged.value_at_quantile(0.5)));
    }

    #[test]
    fn ramp_fails_above_one_percent() {
        let outcome = RampOutcome { ok: 99, failed: 1, first_error: Some("x".into()), ..RampOutcome::default() };
        assert!(outcome.check(100).is_ok());
        let outcome =
            RampOutcome { ok: 98, failed: 2, first_error: Some("bench3: boom".into()), ..RampOutcome::default() };
        let error = outcome.check(100).unwrap_err().to_string();
        assert!(error.contains("2 of 100") && error.contains("bench3: boom"), "{error}");
    }
}
