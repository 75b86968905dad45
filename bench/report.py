#!/usr/bin/env python3
"""Turns a bench/results/<timestamp>.jsonl into <timestamp>.md (metric rows x
server columns, the table of issue 5) and one PNG chart per scenario.

usage: bench/.venv/bin/python bench/report.py bench/results/<timestamp>.jsonl
"""

import json
import os
import sys

SERVERS = ["xmppd", "prosody", "ejabberd"]
COLORS = {"xmppd": "#d9534f", "prosody": "#5b8cc9", "ejabberd": "#5cb85c"}


def load(path):
    header, runs = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("scenario") == "header":
                header = record
            else:
                runs.append(record)
    return header, runs


def variant_kind(variant):
    """idle-10000 -> ('idle', 10000); msg-rate-2000 -> ('msg-rate', 2000)."""
    if variant.startswith("idle-"):
        return "idle", int(variant.split("-", 1)[1])
    if variant.startswith("msg-rate-"):
        return "msg-rate", int(variant.rsplit("-", 1)[1])
    if variant.startswith("login-"):
        return "login", int(variant.split("-", 1)[1])
    return variant, None


class Results:
    def __init__(self, runs):
        self.by = {}  # (label, variant) -> record; the last one wins
        self.idle_sizes, self.msg_rates, self.login_counts = set(), set(), set()
        for r in runs:
            label, variant = r.get("label"), r.get("variant")
            if not label or not variant:
                continue
            self.by[(label, variant)] = r
            kind, n = variant_kind(variant)
            {"idle": self.idle_sizes, "msg-rate": self.msg_rates,
             "login": self.login_counts}.get(kind, set()).add(n)
        self.servers = [s for s in SERVERS if any(k[0] == s for k in self.by)]

    def get(self, label, variant):
        return self.by.get((label, variant))

    def value(self, label, variant, key):
        r = self.get(label, variant)
        if r is None or r.get("failed") or r.get("skipped"):
            return None
        if key == "busy_pct":
            cpu, elapsed = r.get("server_cpu_s"), r.get("elapsed_s")
            return 100.0 * cpu / elapsed if isinstance(cpu, (int, float)) and elapsed else None
        v = r.get(key)
        return v if isinstance(v, (int, float)) else None

    def cell(self, label, variant, key, fmt):
        r = self.get(label, variant)
        if r is None:
            return "—"
        if r.get("skipped"):
            return r["skipped"]
        v = self.value(label, variant, key)
        note = ""
        if variant.startswith("idle-") and r.get("sessions_up") is not None and r.get("sessions") \
                and r["sessions_up"] < r["sessions"]:
            note = f" ({r['sessions_up']} up)"
        if key == "busy_pct" and v is None:
            return "—"
        if v is None or r.get("ok") is False:
            reason = r.get("error") or ("failed" if r.get("failed") else "no value")
            if v is None:
                return f"failed: {short(reason)}"
            note += f" (error: {short(reason)})"
        return fmt.format(v) + note


def short(text, limit=60):
    text = str(text).replace("|", "/").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rows(res):
    out = []
    for n in sorted(res.idle_sizes):
        out.append((f"RSS per idle session at {n} sessions (KiB)", f"idle-{n}", "rss_per_session_kb", "{:.1f}"))
    for n in sorted(res.login_counts):
        out.append((f"CPU ms per login ({n} logins)", f"login-{n}", "cpu_ms_per_login", "{:.2f}"))
        out.append(("logins/s", f"login-{n}", "logins_per_s", "{:.0f}"))
    out.append(("CPU s per 1k delivered messages at saturation", "msg-saturation", "cpu_s_per_1k", "{:.4f}"))
    out.append(("saturation throughput (msg/s)", "msg-saturation", "throughput", "{:.0f}"))
    out.append(("server core busy at saturation (%; < 90: load generator bound)", "msg-saturation", "busy_pct", "{:.0f}"))
    out.append(("CPU s per 1k presence deliveries", "fanout", "cpu_s_per_1k", "{:.4f}"))
    out.append(("presence deliveries/s", "fanout", "deliveries_per_s", "{:.0f}"))
    if any(v == "fanout-caps" for (_, v) in res.by):
        out.append(("CPU s per 1k presence deliveries, clients with caps (PEP interests)", "fanout-caps",
                    "cpu_s_per_1k", "{:.4f}"))
    for n in sorted(res.msg_rates):
        out.append((f"p99 latency at {n} msg/s (ms)", f"msg-rate-{n}", "p99_ms", "{:.2f}"))
        out.append((f"p50 / p999 latency at {n} msg/s (ms)", f"msg-rate-{n}", ("p50_ms", "p999_ms"), "{:.2f}"))
        out.append((f"CPU s per 1k messages at {n} msg/s", f"msg-rate-{n}", "cpu_s_per_1k", "{:.4f}"))
    if any(v == "offline" for (_, v) in res.by):
        out.append(("offline store: msgs/s, CPU s per 1k", "offline", ("store_msgs_per_s", "store_cpu_s_per_1k"),
                    ("{:.0f}", "{:.4f}")))
        out.append(("offline read: msgs/s, CPU s per 1k (incl. recipient logins)", "offline",
                    ("read_msgs_per_s", "read_cpu_s_per_1k"), ("{:.0f}", "{:.4f}")))
        out.append(("offline read: CPU s per 1k without the logins (baseline subtracted)", "offline",
                    "read_net_cpu_s_per_1k", "{:.4f}"))
    return out


def markdown(header, res, jsonl):
    lines = [f"# Benchmark {header.get('timestamp', os.path.basename(jsonl))}", ""]
    if header.get("quick"):
        lines += ["**Quick run (`--quick`): small counts, a smoke test of the runner; do not compare.**", ""]
    lines += [f"Machine: {header.get('cpu', '?')}, {header.get('cores', '?')} cores, Linux {header.get('kernel', '?')}. "
              "Each server pinned to core 0, the load generator to core 1; "
              "STARTTLS with TLS 1.3, SCRAM-SHA-1 (4096 iterations) on all.", ""]
    versions = header.get("versions", {})
    if versions:
        lines += ["| server | version |", "|---|---|"]
        lines += [f"| {s} | {short(versions[s], 200)} |" for s in SERVERS if s in versions]
        lines.append("")
    cols = res.servers
    lines.append("| metric | " + " | ".join(cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for title, variant, key, fmt in rows(res):
        if isinstance(key, tuple):
            # Two values in one cell: "a / b".
            fmts = fmt if isinstance(fmt, tuple) else (fmt, fmt)
            cells = []
            for s in cols:
                a, b = res.value(s, variant, key[0]), res.value(s, variant, key[1])
                r = res.get(s, variant)
                if r is None:
                    cells.append("—")
                elif a is None:
                    cells.append(res.cell(s, variant, key[0], "{}"))
                else:
                    note = f" (error: {short(r.get('error'))})" if r.get("ok") is False else ""
                    second = fmts[1].format(b) if b is not None else "—"
                    cells.append(f"{fmts[0].format(a)} / {second}{note}")
        else:
            cells = [res.cell(s, variant, key, fmt) for s in cols]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "Lower is better except for logins/s, throughput, deliveries/s and msgs/s. "
              f"Raw data: `{os.path.basename(jsonl)}` (one JSON line per run; `variant` names the row).", ""]
    problems = []
    for (label, variant), r in sorted(res.by.items()):
        if r.get("failed") or r.get("ok") is False or r.get("exit_code") not in (None, 0) or r.get("server_died"):
            problems.append(f"- {label} {variant}: exit {r.get('exit_code')}, "
                            f"{short(r.get('error') or ('server died' if r.get('server_died') else 'failed'), 200)}")
        elif r.get("errors") or r.get("login_failures"):
            problems.append(f"- {label} {variant}: {r.get('errors', 0)} non-fatal errors, "
                            f"{r.get('login_failures', 0)} login failures")
        if r.get("without_delay"):
            problems.append(f"- {label} {variant}: {r['without_delay']} offline messages delivered without a "
                            "XEP-0203 <delay/>")
        if r.get("stale"):
            problems.append(f"- {label} {variant}: {r['stale']} messages left stored by an earlier run were drained "
                            "before measuring (not counted)")
    if problems:
        lines += ["## Problems during the run", ""] + problems + [""]
    return "\n".join(lines)


def charts(res, prefix):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def bars(ax, groups, key, title, ylabel):
        """groups: [(group label, variant)] or [(group label, variant, key)] (a key of its
        own for that group); one bar per server per group."""
        width = 0.8 / max(1, len(res.servers))
        for i, s in enumerate(res.servers):
            xs, ys = [], []
            for g, group in enumerate(groups):
                variant, group_key = group[1], group[2] if len(group) > 2 else key
                v = res.value(s, variant, group_key)
                xs.append(g + i * width)
                ys.append(v if v is not None else 0)
                if v is None:
                    ax.text(g + i * width, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
            rects = ax.bar(xs, ys, width, label=s, color=COLORS.get(s))
            for rect, y in zip(rects, ys):
                if y:
                    ax.annotate(f"{y:.3g}", (rect.get_x() + rect.get_width() / 2, y),
                                ha="center", va="bottom", fontsize=7)
        ax.set_xticks([g + width * (len(res.servers) - 1) / 2 for g in range(len(groups))])
        ax.set_xticklabels([group[0] for group in groups])
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)

    written = []
    specs = {
        "idle": [([(f"{n} sessions", f"idle-{n}") for n in sorted(res.idle_sizes)],
                  "rss_per_session_kb", "RSS per idle session", "KiB")],
        "login": [([(f"{n} logins", f"login-{n}") for n in sorted(res.login_counts)],
                   "cpu_ms_per_login", "server CPU per login", "ms"),
                  ([(f"{n} logins", f"login-{n}") for n in sorted(res.login_counts)],
                   "logins_per_s", "logins per second", "logins/s")],
        "msg": [([(f"p50 at {n} msg/s", f"msg-rate-{n}") for n in sorted(res.msg_rates)], "p50_ms",
                 "latency p50 at offered rate", "ms"),
                ([(f"p99 at {n} msg/s", f"msg-rate-{n}") for n in sorted(res.msg_rates)], "p99_ms",
                 "latency p99 at offered rate", "ms"),
                ([("saturation", "msg-saturation")], "throughput", "throughput at saturation", "msg/s"),
                ([("saturation", "msg-saturation")], "cpu_s_per_1k", "CPU per 1k delivered", "s")],
        "fanout": [([("fanout", "fanout"), ("with caps", "fanout-caps")], "deliveries_per_s",
                    "presence deliveries per second", "1/s"),
                   ([("fanout", "fanout"), ("with caps", "fanout-caps")], "cpu_s_per_1k",
                    "CPU per 1k presence deliveries", "s")],
        "offline": [([("store", "offline", "store_msgs_per_s"), ("read", "offline", "read_msgs_per_s")], None,
                     "offline messages per second", "msg/s"),
                    ([("store", "offline", "store_cpu_s_per_1k"), ("read", "offline", "read_cpu_s_per_1k"),
                      ("read w/o logins", "offline", "read_net_cpu_s_per_1k")], None,
                     "server CPU per 1k offline messages", "s")],
    }
    present = {variant_kind(v)[0].split("-")[0] for (_, v) in res.by}
    for scenario, panels in specs.items():
        if scenario not in present:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 4.2 * len(panels)), 3.8), squeeze=False)
        for ax, (groups, key, title, ylabel) in zip(axes[0], panels):
            bars(ax, groups, key, title, ylabel)
        fig.suptitle(f"{scenario}: xmppd vs Prosody vs ejabberd", fontsize=10)
        fig.tight_layout()
        path = f"{prefix}-{scenario}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    jsonl = sys.argv[1]
    header, runs = load(jsonl)
    res = Results(runs)
    prefix = jsonl[: -len(".jsonl")] if jsonl.endswith(".jsonl") else jsonl
    md = markdown(header, res, jsonl)
    pngs = charts(res, prefix)
    if pngs:
        md += "\n## Charts\n\n" + "\n".join(f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in pngs) + "\n"
    with open(prefix + ".md", "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
