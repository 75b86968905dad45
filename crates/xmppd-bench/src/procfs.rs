//! Server RSS and CPU time from Linux `/proc` (proc(5)).
//!
//! CPU is taken two ways and the more precise one that is valid is used:
//! the sum of `/proc/PID/task/*/schedstat` run times (nanoseconds) when no
//! thread ended between the two samples, otherwise `utime + stime`
//! (fields 14 and 15 of `/proc/PID/stat`, in clock ticks), which also counts
//! threads that have exited.

use std::collections::BTreeMap;
use std::process::Command;

/// Clock ticks per second (`getconf CLK_TCK`), 100 if that fails.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// The fields of `/proc/PID/stat` after the command name, which may itself
/// contain spaces and parentheses: everything after the last `)`. The first
/// returned field is field 3 (`state`).
fn stat_fields_after_comm(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat.get(close + 1..)?.split_ascii_whitespace().collect())
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line, in ticks.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let fields = stat_fields_after_comm(stat)?;
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// The parent pid (field 4) of a `/proc/PID/stat` line.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    stat_fields_after_comm(stat)?.get(4 - 3)?.parse().ok()
}

/// `VmRSS` (or another `kB` field such as `VmHWM`) of `/proc/PID/status`.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// The first field of `/proc/PID/task/TID/schedstat`: time spent on the
/// CPU, in nanoseconds.
pub fn parse_schedstat_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_ascii_whitespace().next()?.parse().ok()
}

/// One process at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSample {
    /// `utime + stime` in ticks (includes exited threads).
    pub cpu_ticks: u64,
    /// Run time per live thread, in ns; empty if schedstat is unavailable.
    pub thread_ns: BTreeMap<u32, u64>,
    /// Resident set size in kB.
    pub rss_kb: u64,
}

/// The server (and, optionally, its descendants) at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// Per pid.
    pub processes: BTreeMap<u32, ProcessSample>,
}

impl Sample {
    /// Total RSS in kB.
    pub fn rss_kb(&self) -> u64 {
        self.processes.values().map(|process| process.rss_kb).sum()
    }
}

/// Which counter a CPU delta came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuSource {
    /// `/proc/PID/task/*/schedstat`, nanoseconds.
    Schedstat,
    /// `/proc/PID/stat` `utime + stime`, clock ticks.
    Stat,
}

impl CpuSource {
    /// The name used in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            CpuSource::Schedstat => "schedstat",
            CpuSource::Stat => "stat",
        }
    }
}

/// Reads one process; `None` if it is gone.
pub fn sample_process(pid: u32) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let cpu_ticks = parse_stat_cpu_ticks(&stat)?;
    let rss_kb = parse_status_kb(&status, "VmRSS").unwrap_or(0);
    let mut thread_ns = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            if let Some(ns) =
                std::fs::read_to_string(task.path().join("schedstat")).ok().as_deref().and_then(parse_schedstat_ns)
            {
                thread_ns.insert(tid, ns);
            }
        }
    }
    Some(ProcessSample { cpu_ticks, thread_ns, rss_kb })
}

/// All descendants of `pid` (children, grandchildren, …), from the parent
/// pids in `/proc/*/stat`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            if let Some(ppid) =
                std::fs::read_to_string(entry.path().join("stat")).ok().as_deref().and_then(parse_stat_ppid)
            {
                parent_of.push((child, ppid));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, _) in parent_of.iter().filter(|(_, ppid)| *ppid == parent) {
            if !found.contains(child) && *child != pid {
                found.push(*child);
                frontier.push(*child);
            }
        }
    }
    found
}

/// Samples `pid` and, with `include_children`, its descendants. `None` if
/// `pid` itself is gone.
pub fn sample(pid: u32, include_children: bool) -> Option<Sample> {
    let mut processes = BTreeMap::new();
    processes.insert(pid, sample_process(pid)?);
    if include_children {
        for child in descendants(pid) {
            if let Some(process) = sample_process(child) {
                processes.insert(child, process);
            }
        }
    }
    Some(Sample { processes })
}

/// CPU seconds used between two samples. Uses schedstat when every thread
/// of `before` is still in `after` (so nothing was lost with an exited
/// thread), `utime + stime` otherwise. Processes that appeared in between
/// count fully; processes that disappeared are lost (their CPU went to
/// their parent's `cutime` only once reaped).
pub fn cpu_seconds(before: &Sample, after: &Sample, ticks_per_second: u64) -> (f64, CpuSource) {
    let mut total = 0.0;
    let mut source = CpuSource::Schedstat;
    let ticks_per_second = ticks_per_second.max(1) as f64;
    for (pid, now) in &after.processes {
        let then = before.processes.get(pid);
        let then_threads = then.map(|process| &process.thread_ns);
        let schedstat_valid = !now.thread_ns.is_empty()
            && then_threads.is_none_or(|threads| threads.keys().all(|tid| now.thread_ns.contains_key(tid)));
        if schedstat_valid {
            let ns: u64 = now
                .thread_ns
                .iter()
                .map(|(tid, ns)| {
                    let earlier = then_threads.and_then(|threads| threads.get(tid)).copied().unwrap_or(0);
                    ns.saturating_sub(earlier)
                })
                .sum();
            total += ns as f64 / 1e9;
        } else {
            source = CpuSource::Stat;
            let earlier = then.map_or(0, |process| process.cpu_ticks);
            total += now.cpu_ticks.saturating_sub(earlier) as f64 / ticks_per_second;
        }
    }
    (total, source)
}

/// Peak RSS of this process (`VmHWM`) in kB.
pub fn own_peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|status| parse_status_kb(&status, "VmHWM")).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let line = "4242 (my (odd) srv) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 9 0 1000 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(line), Some(325));
        assert_eq!(parse_stat_ppid(line), Some(17));
        assert_eq!(parse_stat_cpu_ticks("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_and_schedstat_fields() {
        let status = "Name:\txmppd\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(10240));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(20480));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
        assert_eq!(parse_schedstat_ns("587675130 8369243 65\n"), Some(587_675_130));
        assert_eq!(parse_schedstat_ns(""), None);
    }

    /// Burns CPU in this very process and sees it in /proc.
    #[test]
    fn own_process_is_measured() {
        let pid = std::process::id();
        let before = sample(pid, false).unwrap();
        assert!(before.rss_kb() > 0);
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let after = sample(pid, false).unwrap();
        let (seconds, _) = cpu_seconds(&before, &after, clock_ticks_per_second());
        assert!((0.1..5.0).contains(&seconds), "{seconds}");
        assert!(own_peak_rss_kb() >= after.rss_kb() / 2);
    }

    #[test]
    fn children_are_found() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let found = descendants(std::process::id());
        child.kill().ok();
        child.wait().ok();
        assert!(found.contains(&child.id()), "{found:?}");
    }

    #[test]
    fn exited_thread_falls_back_to_stat() {
        let thread = |ns: &[(u32, u64)]| ns.iter().copied().collect::<BTreeMap<u32, u64>>();
        let process =
            |ticks, threads: &[(u32, u64)]| ProcessSample { cpu_ticks: ticks, thread_ns: thread(threads), rss_kb: 1 };
        let before = Sample { processes: [(1, process(100, &[(1, 1_000_000_000), (2, 500_000_000)]))].into() };
        let same = Sample { processes: [(1, process(150, &[(1, 1_250_000_000), (2, 750_000_000)]))].into() };
        assert_eq!(cpu_seconds(&before, &same, 100), (0.5, CpuSource::Schedstat));
        let lost = Sample { processes: [(1, process(180, &[(1, 1_250_000_000), (3, 10)]))].into() };
        assert_eq!(cpu_seconds(&before, &lost, 100), (0.8, CpuSource::Stat));
    }
}
