//! `fanout`: users in groups of K+1 have each other in their rosters
//! (subscription both, provisioned beforehand). All log in, fetch the
//! roster, send initial presence and wait until every contact is seen
//! online; then each user sends presence updates (changing status) with a
//! window of W updates not yet received by all its contacts. Reports
//! presence deliveries (one per contact) per second and server CPU per 1000.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use xmppd_xml::RawElement;

use super::{CLOSE_TIMEOUT, Ctx, Latencies, Ramp, Stage, find_stamp, now_ns, shut_down, stamp, wait_stage};
use crate::cli::FanoutArgs;
use crate::error::Error;
use crate::report::{Report, round3, round6};
use crate::xmpp::{AfterBind, Conn};

/// Longest wait for every user to see all its contacts online.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for in-flight presence after the sending phase.
const DRAIN: Duration = Duration::from_secs(5);
/// Upper bound on updates per user.
const MAX_PER_USER: u64 = 10_000_000;

/// Roster groups: users `[start, end)` have each other as contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// First user of the group.
    pub start: u32,
    /// One past the last user of the group.
    pub end: u32,
}

impl Group {
    /// The group of `user` among `users` users with `contacts` contacts each.
    pub fn of(user: u32, users: u32, contacts: u32) -> Group {
        let size = contacts.saturating_add(1);
        let start = user / size * size;
        Group { start, end: start.saturating_add(size).min(users) }
    }

    /// How many contacts each member has (the group size minus one).
    pub fn contacts(self) -> u32 {
        self.end.saturating_sub(self.start).saturating_sub(1)
    }

    /// Whether `user` is in the group.
    pub fn contains(self, user: u32) -> bool {
        (self.start..self.end).contains(&user)
    }
}

struct User {
    group: Group,
    /// Updates not yet received by every contact.
    window: Semaphore,
    /// Deliveries of this user's updates to its contacts.
    deliveries: AtomicU64,
    /// Logged in with a good roster.
    up: AtomicBool,
}

struct Shared {
    ctx: Arc<Ctx>,
    /// The clients' XEP-0115 caps, with `--caps`.
    caps: Option<Caps>,
    users: Vec<User>,
    /// Users that have seen all their contacts online.
    settled: AtomicU64,
    sent: AtomicU64,
    delivered: AtomicU64,
    last_delivery_ns: AtomicU64,
    latencies: Latencies,
    start: OnceLock<Instant>,
}

/// The node of the bench clients' caps (XEP-0115 §4).
const CAPS_NODE: &str = "https://xmppd.invalid/bench";

/// What a caps-announcing client says about itself: its identity and
/// features, the `<c/>` for its presence and the disco#info answer.
struct Caps {
    /// `<c xmlns='http://jabber.org/protocol/caps' …/>`.
    element: String,
    /// The children of the disco#info answer.
    query: String,
    ver: String,
}

impl Caps {
    /// The features of a modern client: PEP interests included.
    fn new() -> Caps {
        let features = [
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/nick+notify",
            "urn:xmpp:avatar:metadata+notify",
            "eu.siacs.conversations.axolotl.devicelist+notify",
            "urn:xmpp:bookmarks:1+notify",
            "urn:xmpp:receipts",
        ];
        let identity = xmppd_proto::caps::Identity {
            category: "client".into(),
            kind: "bot".into(),
            lang: None,
            name: Some("xmppd-bench".into()),
        };
        let ver = xmppd_proto::caps::verification_string(std::slice::from_ref(&identity), &features, &[]);
        let mut query = "<identity category='client' type='bot' name='xmppd-bench'/>".to_owned();
        for feature in features {
            query.push_str(&format!("<feature var='{feature}'/>"));
        }
        let element =
            format!("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='{CAPS_NODE}' ver='{ver}'/>");
        Caps { element, query, ver }
    }

    /// The answer to a disco#info query (`id`, `from`), if `stanza` is one.
    fn answer(&self, stanza: &RawElement) -> Option<String> {
        if stanza.attr("type") != Some("get") {
            return None;
        }
        let (id, from) = (stanza.attr("id")?, stanza.attr("from")?);
        Some(format!(
            "<iq type='result' id='{id}' to='{from}'><query xmlns='http://jabber.org/protocol/disco#info' \
             node='{CAPS_NODE}#{ver}'>{query}</query></iq>",
            ver = self.ver,
            query = self.query
        ))
    }
}

/// Runs the scenario, filling `report`.
pub async fn run(ctx: Arc<Ctx>, args: &FanoutArgs, report: &mut Report) -> Result<(), Error> {
    let users = args.users;
    report.users = Some(u64::from(users));
    report.contacts = Some(u64::from(args.contacts));
    report.window = Some(u64::from(args.window));
    let shared = Arc::new(Shared {
        users: (0..users)
            .map(|user| User {
                group: Group::of(user, users, args.contacts),
                window: Semaphore::new(args.window as usize),
                deliveries: AtomicU64::new(0),
                up: AtomicBool::new(false),
            })
            .collect(),
        settled: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        last_delivery_ns: AtomicU64::new(0),
        latencies: Latencies::new(64),
        start: OnceLock::new(),
        caps: args.caps.then(Caps::new),
        ctx: ctx.clone(),
    });

    let total = u64::from(users);
    let (stage, _) = watch::channel(Stage::Ramp);
    let (ramp, mut results) = Ramp::new(&ctx, ctx.common.connect_concurrency, total);
    let mut tasks = JoinSet::new();
    for user in 0..users {
        let (shared, ramp, stage) = (shared.clone(), ramp.clone(), stage.subscribe());
        tasks.spawn(async move { member(shared, ramp, user, stage).await });
    }
    let outcome = results.wait(&ctx, &ramp, total).await;
    outcome.fill(report);
    if let Err(error) = outcome.check(total) {
        shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
        return Err(error);
    }

    // Everyone whose whole group is up must see all its contacts online.
    let expected = shared
        .users
        .iter()
        .filter(|user| {
            let group = user.group;
            (group.start..group.end)
                .all(|member| shared.users.get(member as usize).is_some_and(|u| u.up.load(Ordering::Relaxed)))
        })
        .count() as u64;
    let settle_start = Instant::now();
    let settle_until = (settle_start + SETTLE_TIMEOUT).min(ctx.deadline);
    while shared.settled.load(Ordering::Relaxed) < expected && Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settled = shared.settled.load(Ordering::Relaxed);
    if settled < expected {
        shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
        return Err(Error::Setup(format!(
            "presence was not delivered: only {settled} of {expected} users saw all their contacts online within \
             {:.1} s (rosters must hold the group's contacts with subscription both)",
            settle_start.elapsed().as_secs_f64()
        )));
    }

    let before = ctx.sample();
    report.server_rss_before_kb = before.as_ref().map(|sample| sample.rss_kb());
    let start = Instant::now();
    let start_ns = now_ns();
    let _ = shared.start.set(start);
    stage.send_replace(Stage::Run);
    let duration = Duration::from_secs_f64(args.duration.max(0.0));
    let send_until = (start + duration).min(ctx.deadline);
    let bar = ctx.progress(duration.as_millis().try_into().unwrap_or(u64::MAX), "fanout");
    super::show_progress(&bar, start, send_until, &shared.sent, &shared.delivered).await;
    let send_elapsed = start.elapsed().as_secs_f64();
    stage.send_replace(Stage::Drain);
    let drain_until = (Instant::now() + DRAIN).min(ctx.deadline);
    while !shared.drained(args.window) && Instant::now() < drain_until {
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
    if elapsed > 0.0 {
        report.deliveries_per_s = Some(round3(delivered as f64 / elapsed));
    }
    report.set_latencies(&shared.latencies.merged());
    if let Some(cpu) = ctx.set_cpu(report, &before, &after)
        && delivered > 0
    {
        report.cpu_s_per_1k = Some(round6(cpu * 1000.0 / delivered as f64));
    }
    shut_down(&ctx, &stage, Some(&ramp), &mut tasks).await;
    if delivered == 0 {
        return Err(Error::Setup(format!("no presence update was delivered ({sent} sent)")));
    }
    Ok(())
}

impl Shared {
    /// Whether every update sent has reached every contact: each user's
    /// window is full again.
    fn drained(&self, window: u32) -> bool {
        self.users.iter().all(|user| {
            !user.up.load(Ordering::Relaxed)
                || user.group.contacts() == 0
                || user.window.available_permits() >= window as usize
        })
    }

    /// A presence stanza received by `user`.
    fn on_presence(&self, user: u32, stanza: &RawElement, seen: &mut [bool], seen_count: &mut u32) {
        let Some(me) = self.users.get(user as usize) else { return };
        let Some(from) = stanza.attr("from").and_then(|from| self.ctx.target.account_of(from)) else { return };
        if from == user || !me.group.contains(from) {
            return;
        }
        match stanza.attr("type") {
            None => {}
            Some("error") => {
                self.ctx.error();
                return;
            }
            Some(_) => return,
        }
        if let Some(flag) = seen.get_mut((from - me.group.start) as usize)
            && !*flag
        {
            *flag = true;
            *seen_count += 1;
            if *seen_count == me.group.contacts() {
                self.settled.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some((sender, _, sent_ns)) = find_stamp(stanza.bytes(), &self.ctx.run_id) else {
            return;
        };
        let now = now_ns();
        self.latencies.record_ns(user as usize, now.saturating_sub(sent_ns));
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
        if let Some(sender) = self.users.get(sender as usize) {
            let count = sender.deliveries.fetch_add(1, Ordering::Relaxed) + 1;
            let contacts = u64::from(sender.group.contacts().max(1));
            if count % contacts == 0 {
                sender.window.add_permits(1);
            }
        }
    }
}

/// One user: logs in, checks the roster, sends initial presence, then
/// presence updates while the stage is `Run`.
async fn member(shared: Arc<Shared>, ramp: Arc<Ramp>, user: u32, mut stage: watch::Receiver<Stage>) {
    let ctx = &shared.ctx;
    let Some(me) = shared.users.get(user as usize) else { return };
    let contacts = me.group.contacts();
    let after = AfterBind { roster: true, presence: true };
    let check = |conn: &Conn| match &conn.roster {
        Some(Ok(items)) if *items >= contacts as usize => {
            me.up.store(true, Ordering::Relaxed);
            Ok(())
        }
        Some(Ok(items)) => Err(format!(
            "roster of {} has {items} items, expected at least {contacts} (provision the group's contacts with \
             subscription both)",
            conn.jid
        )),
        Some(Err(condition)) => Err(format!(
            "roster get for {} failed: {condition} (the fanout scenario needs rosters with {contacts} contacts)",
            conn.jid
        )),
        None => Err("no roster result".into()),
    };
    let Some(mut conn) = ramp.login(ctx, user, after, check).await else { return };
    let mut seen = vec![false; (me.group.end - me.group.start) as usize];
    let mut seen_count = 0u32;
    if contacts == 0 {
        shared.settled.fetch_add(1, Ordering::Relaxed);
    }
    let mut seq: u64 = 0;
    loop {
        let now = *stage.borrow_and_update();
        if now == Stage::Close {
            break;
        }
        loop {
            match conn.poll_stanza() {
                Ok(Some(stanza)) if stanza.name() == "presence" => {
                    shared.on_presence(user, &stanza, &mut seen, &mut seen_count);
                }
                Ok(Some(stanza)) if stanza.name() == "iq" => {
                    if let Some(answer) = shared.caps.as_ref().and_then(|caps| caps.answer(&stanza)) {
                        conn.queue(answer.as_bytes());
                    }
                }
                Ok(Some(_)) => {}
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
        let sending = now == Stage::Run && contacts > 0 && seq < MAX_PER_USER;
        tokio::select! {
            changed = stage.changed() => if changed.is_err() { break },
            read = conn.read_more() => if read.is_err() {
                ctx.error();
                return;
            },
            permit = me.window.acquire(), if sending => {
                if let Ok(permit) = permit {
                    permit.forget();
                    let status = stamp(&ctx.run_id, user, seq);
                    let caps = shared.caps.as_ref().map_or("", |caps| caps.element.as_str());
                    conn.queue(format!("<presence><status>{status}</status>{caps}</presence>").as_bytes());
                    seq += 1;
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let _ = wait_stage(&mut stage, Stage::Close).await;
    conn.close(CLOSE_TIMEOUT).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_of_k_plus_one() {
        assert_eq!(Group::of(0, 2100, 20), Group { start: 0, end: 21 });
        assert_eq!(Group::of(20, 2100, 20), Group { start: 0, end: 21 });
        assert_eq!(Group::of(21, 2100, 20), Group { start: 21, end: 42 });
        assert_eq!(Group::of(2099, 2100, 20).contacts(), 20);
        // A short last group.
        assert_eq!(Group::of(22, 23, 20), Group { start: 21, end: 23 });
        assert_eq!(Group::of(22, 23, 20).contacts(), 1);
        assert!(Group::of(5, 2100, 20).contains(20) && !Group::of(5, 2100, 20).contains(21));
    }
}
