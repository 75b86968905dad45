//! The result of a run: one JSON line on stdout (the interface `bench/run.sh`
//! reads) and a human summary on stderr.

use std::io::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

/// One run. Fields that do not apply to the scenario are left out of the
/// JSON; the common ones are always present (`null` when unknown).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `idle`, `login`, `msg`, `fanout` or `offline`.
    pub scenario: String,
    /// Server name from `--label`.
    pub label: String,
    /// `starttls` or `direct`.
    pub tls: String,
    /// SASL mechanism name.
    pub mechanism: String,
    /// Target address.
    pub host: String,
    /// Target port.
    pub port: u16,
    /// XMPP domain.
    pub domain: String,
    /// Whether the run completed without a fatal error.
    pub ok: bool,
    /// The fatal error, if any.
    pub error: Option<String>,
    /// Non-fatal errors: failed logins, dropped connections, bounced stanzas.
    pub errors: u64,
    /// Logins that failed (during ramp-up or measured).
    pub login_failures: u64,
    /// Length of the measured phase in seconds.
    pub elapsed_s: f64,
    /// Length of the whole run in seconds.
    pub total_s: f64,
    /// Sessions ramp-up: time to log all sessions in.
    pub ramp_s: Option<f64>,
    /// Sessions ramp-up: logins per second.
    pub ramp_logins_per_s: Option<f64>,
    /// Server CPU seconds in the measured phase (needs `--server-pid`).
    pub server_cpu_s: Option<f64>,
    /// Where the CPU figure comes from: `schedstat` (ns) or `stat` (ticks).
    pub cpu_source: Option<String>,
    /// Server RSS before the scenario, kB.
    pub server_rss_before_kb: Option<u64>,
    /// Server RSS after the measured phase, kB.
    pub server_rss_after_kb: Option<u64>,
    /// Peak RSS of the load generator itself, kB.
    pub bench_rss_kb: u64,

    /// idle: sessions asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u64>,
    /// idle: sessions logged in and held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_up: Option<u64>,
    /// idle: hold time in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_s: Option<f64>,
    /// idle: RSS after minus before, kB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_delta_kb: Option<i64>,
    /// idle: RSS delta per held session, kB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_session_kb: Option<f64>,

    /// login: measured logins asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logins: Option<u64>,
    /// login: logins in flight; offline: recipient logins in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u64>,
    /// login: accounts cycled through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<u64>,
    /// login: successful measured logins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
    /// login: successful logins per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logins_per_s: Option<f64>,
    /// login: server CPU milliseconds per successful login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_login: Option<f64>,

    /// msg: offered rate (0 = saturation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// msg: sender/receiver pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<u64>,
    /// fanout: users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// fanout: contacts per user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<u64>,
    /// msg/fanout: outstanding window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
    /// msg/fanout: stanzas sent in the measured phase; offline: messages
    /// sent in the write phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
    /// msg: messages delivered; fanout: presence deliveries (one per
    /// contact); offline: stored messages delivered in the read phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    /// msg: sent but not delivered by the end of the drain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// msg: delivered per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
    /// fanout: presence deliveries per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries_per_s: Option<f64>,
    /// Latency percentiles in ms (msg, fanout: send to delivery; login: whole login).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// 99.9th percentile, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p999_ms: Option<f64>,
    /// Maximum, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    /// msg/fanout: server CPU seconds per 1000 deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_s_per_1k: Option<f64>,

    /// offline: sender sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub senders: Option<u64>,
    /// offline: recipient accounts (offline during the write phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u64>,
    /// offline: messages per recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_recipient: Option<u64>,
    /// offline: messages the server handled (a ping answered after them)
    /// without refusing them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<u64>,
    /// offline: messages refused with an error stanza (e.g. resource-constraint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounced: Option<u64>,
    /// offline: write phase length, first message to the last ping answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_elapsed_s: Option<f64>,
    /// offline: stored messages per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_msgs_per_s: Option<f64>,
    /// offline: server CPU seconds in the write phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_cpu_s: Option<f64>,
    /// offline: server CPU seconds per 1000 stored messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_cpu_s_per_1k: Option<f64>,
    /// offline: read phase length (recipient logins, deliveries, closes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_elapsed_s: Option<f64>,
    /// offline: delivered messages per second in the read phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_msgs_per_s: Option<f64>,
    /// offline: server CPU seconds in the read phase, the recipients'
    /// logins included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_cpu_s: Option<f64>,
    /// offline: `read_cpu_s` per 1000 delivered messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_cpu_s_per_1k: Option<f64>,
    /// offline: server CPU ms per recipient login (presence, ping, close)
    /// with nothing stored, measured before the write phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_login_cpu_ms: Option<f64>,
    /// offline: read CPU minus the baseline's (as many logins), per 1000
    /// delivered: an estimate of the delivery alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_net_cpu_s_per_1k: Option<f64>,
    /// offline: delivered messages without a XEP-0203 `<delay/>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_delay: Option<u64>,
    /// offline: messages left by earlier runs (drained before the write phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<u64>,
    /// offline: messages of this run received twice, by the wrong
    /// recipient, or before the read phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unexpected: Option<u64>,
}

impl Report {
    /// Fills the percentile fields from a histogram of microseconds.
    pub fn set_latencies(&mut self, micros: &Histogram<u64>) {
        if micros.is_empty() {
            return;
        }
        let ms = |value: u64| round3(value as f64 / 1000.0);
        self.p50_ms = Some(ms(micros.value_at_quantile(0.50)));
        self.p99_ms = Some(ms(micros.value_at_quantile(0.99)));
        self.p999_ms = Some(ms(micros.value_at_quantile(0.999)));
        self.max_ms = Some(ms(micros.max()));
    }

    /// The JSON line (without newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"ok\":false,\"error\":\"serializing: {e}\"}}"))
    }

    /// Prints the JSON line to stdout and appends it to `json_out`.
    pub fn emit(&self, json_out: Option<&Path>) -> std::io::Result<()> {
        let line = self.to_json();
        println!("{line}");
        if let Some(path) = json_out {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            writeln!(file, "{line}")?;
        }
        Ok(())
    }

    /// A few lines for people, on stderr.
    pub fn summary(&self) -> String {
        let mut lines = vec![format!(
            "{} against {} ({}:{}, {}, {}): {}",
            self.scenario,
            if self.label.is_empty() { "server" } else { &self.label },
            self.host,
            self.port,
            self.tls,
            self.mechanism,
            match &self.error {
                None => "ok".to_owned(),
                Some(error) => format!("FAILED: {error}"),
            }
        )];
        let opt = |value: Option<f64>, unit: &str| value.map(|v| format!("{v:.3}{unit}")).unwrap_or_else(|| "-".into());
        if let Some(ramp) = self.ramp_s {
            lines.push(format!("  ramp-up {ramp:.2} s ({} logins/s)", opt(self.ramp_logins_per_s, "")));
        }
        match self.scenario.as_str() {
            "idle" => lines.push(format!(
                "  {} of {} sessions held {} s; server RSS {} -> {} kB, {} kB per session",
                self.sessions_up.unwrap_or(0),
                self.sessions.unwrap_or(0),
                opt(self.hold_s, ""),
                self.server_rss_before_kb.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                self.server_rss_after_kb.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                opt(self.rss_per_session_kb, ""),
            )),
            "login" => lines.push(format!(
                "  {} logins in {:.2} s = {} /s; server CPU {} ms per login; login p50 {} p99 {}",
                self.completed.unwrap_or(0),
                self.elapsed_s,
                opt(self.logins_per_s, ""),
                opt(self.cpu_ms_per_login, ""),
                opt(self.p50_ms, " ms"),
                opt(self.p99_ms, " ms"),
            )),
            "offline" => {
                if self.stored.is_some() {
                    lines.push(format!(
                        "  store: {} of {} messages ({} senders -> {} offline recipients x {}) in {} s = {} /s; \
                         server CPU {} s = {} s per 1000; refused {}",
                        self.stored.unwrap_or(0),
                        self.sent.unwrap_or(0),
                        self.senders.unwrap_or(0),
                        self.recipients.unwrap_or(0),
                        self.per_recipient.unwrap_or(0),
                        opt(self.store_elapsed_s, ""),
                        opt(self.store_msgs_per_s, ""),
                        opt(self.store_cpu_s, ""),
                        opt(self.store_cpu_s_per_1k, ""),
                        self.bounced.unwrap_or(0),
                    ));
                }
                if self.delivered.is_some() {
                    lines.push(format!(
                        "  read: {} delivered ({} without <delay/>) in {} s = {} /s; server CPU {} s = {} s per 1000 \
                         including {} logins ({} s per 1000 without them, from a baseline of {} ms CPU per login)",
                        self.delivered.unwrap_or(0),
                        self.without_delay.unwrap_or(0),
                        opt(self.read_elapsed_s, ""),
                        opt(self.read_msgs_per_s, ""),
                        opt(self.read_cpu_s, ""),
                        opt(self.read_cpu_s_per_1k, ""),
                        self.recipients.unwrap_or(0),
                        opt(self.read_net_cpu_s_per_1k, ""),
                        opt(self.baseline_login_cpu_ms, ""),
                    ));
                }
                if self.stale.unwrap_or(0) > 0 || self.unexpected.unwrap_or(0) > 0 {
                    lines.push(format!(
                        "  {} messages left by earlier runs drained; {} of this run unexpected (twice, misrouted)",
                        self.stale.unwrap_or(0),
                        self.unexpected.unwrap_or(0),
                    ));
                }
            }
            _ => lines.push(format!(
                "  sent {} delivered {} in {:.2} s = {} /s; latency p50 {} p99 {} p99.9 {}; server CPU {} s = {} s per 1000",
                self.sent.unwrap_or(0),
                self.delivered.unwrap_or(0),
                self.elapsed_s,
                opt(self.throughput.or(self.deliveries_per_s), ""),
                opt(self.p50_ms, " ms"),
                opt(self.p99_ms, " ms"),
                opt(self.p999_ms, " ms"),
                opt(self.server_cpu_s, ""),
                opt(self.cpu_s_per_1k, ""),
            )),
        }
        lines.push(format!(
            "  errors {}, login failures {}, total {:.2} s, load generator peak RSS {} kB",
            self.errors, self.login_failures, self.total_s, self.bench_rss_kb
        ));
        lines.join("\n")
    }
}

/// Rounds to 3 decimals (JSON readability).
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Rounds to 6 decimals.
pub fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn msg_json_has_the_interface_fields() {
        let mut report = Report {
            scenario: "msg".into(),
            label: "xmppd".into(),
            tls: "starttls".into(),
            mechanism: "SCRAM-SHA-1".into(),
            ok: true,
            rate: Some(2000),
            pairs: Some(1000),
            delivered: Some(19998),
            throughput: Some(1999.8),
            server_cpu_s: Some(0.21),
            cpu_s_per_1k: Some(0.0105),
            elapsed_s: 10.0,
            ..Report::default()
        };
        let mut micros = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for value in 1..=1000u64 {
            micros.record(value * 10).unwrap();
        }
        report.set_latencies(&micros);
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        let object = value.as_object().unwrap();
        for key in [
            "scenario",
            "label",
            "tls",
            "mechanism",
            "rate",
            "pairs",
            "delivered",
            "throughput",
            "p50_ms",
            "p99_ms",
            "p999_ms",
            "server_cpu_s",
            "cpu_s_per_1k",
            "errors",
            "elapsed_s",
            "ok",
            "error",
        ] {
            assert!(object.contains_key(key), "missing {key}: {value}");
        }
        assert_eq!(value["scenario"], "msg");
        assert_eq!(value["delivered"], 19998);
        assert_eq!(value["error"], serde_json::Value::Null);
        assert!((value["p50_ms"].as_f64().unwrap() - 5.0).abs() < 0.05, "{value}");
        assert!((value["p99_ms"].as_f64().unwrap() - 9.9).abs() < 0.05, "{value}");
        // Fields of other scenarios are left out.
        assert!(!object.contains_key("rss_per_session_kb"));
        assert!(!object.contains_key("cpu_ms_per_login"));
        // One line.
        assert!(!report.to_json().contains('\n'));
        assert!(report.summary().contains("delivered 19998"));
    }

    #[test]
    fn offline_json_has_both_phases() {
        let report = Report {
            scenario: "offline".into(),
            ok: true,
            senders: Some(20),
            recipients: Some(200),
            per_recipient: Some(50),
            sent: Some(10_000),
            stored: Some(10_000),
            bounced: Some(0),
            store_msgs_per_s: Some(5000.0),
            store_cpu_s_per_1k: Some(0.05),
            delivered: Some(10_000),
            read_msgs_per_s: Some(20_000.0),
            read_cpu_s_per_1k: Some(0.02),
            without_delay: Some(0),
            ..Report::default()
        };
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        for key in ["stored", "store_msgs_per_s", "store_cpu_s_per_1k", "delivered", "read_msgs_per_s"] {
            assert!(value.get(key).is_some_and(|v| !v.is_null()), "missing {key}: {value}");
        }
        assert!(value.get("rate").is_none());
        let summary = report.summary();
        assert!(summary.contains("store: 10000 of 10000") && summary.contains("read: 10000 delivered"), "{summary}");
    }

    #[test]
    fn failed_run_still_reports_common_fields() {
        let report = Report { scenario: "fanout".into(), error: Some("roster empty".into()), ..Report::default() };
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(value["ok"], false);
        assert_eq!(value["error"], "roster empty");
        assert_eq!(value["server_cpu_s"], serde_json::Value::Null);
        assert!(report.summary().contains("FAILED: roster empty"));
    }
}
