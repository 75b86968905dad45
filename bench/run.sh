#!/usr/bin/env bash
# Side-by-side benchmark: xmppd vs Prosody vs ejabberd (issue 5).
# Run by hand as root on a dedicated Debian 12 machine; see bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [--quick] [--servers xmppd,prosody,ejabberd]
                    [--scenarios idle,login,msg,fanout,offline] [--no-install] [--no-build]

  --quick       small counts: a smoke test of the runner itself (about 2 minutes)
  --servers     which servers to measure, in this order (default: all three)
  --scenarios   which scenarios to run (default: idle,login,msg,fanout,offline)
  --no-install  do not touch apt even if Prosody/ejabberd are missing
  --no-build    use the existing target/release binaries
  --prepare     install, configure, provision and start/stop each server once; no scenarios
Results: bench/results/<UTC timestamp>.jsonl, .md and -<scenario>.png
EOF
}

QUICK=0
SERVERS="xmppd,prosody,ejabberd"
SCENARIOS="idle,login,msg,fanout,offline"
INSTALL=1
BUILD=1
PREPARE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; shift ;;
        --servers) SERVERS="$2"; shift 2 ;;
        --servers=*) SERVERS="${1#*=}"; shift ;;
        --scenarios) SCENARIOS="$2"; shift 2 ;;
        --scenarios=*) SCENARIOS="${1#*=}"; shift ;;
        --no-install) INSTALL=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --prepare) PREPARE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for s in ${SERVERS//,/ }; do
    case "$s" in xmppd|prosody|ejabberd) ;; *) echo "unknown server: $s" >&2; exit 2 ;; esac
done
for s in ${SCENARIOS//,/ }; do
    case "$s" in idle|login|msg|fanout|offline) ;; *) echo "unknown scenario: $s" >&2; exit 2 ;; esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh must run as root (apt, running servers as their own users, ulimit)" >&2
    exit 1
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
WORK="$BENCH/work"
RESULTS="$BENCH/results"
TS="$(date -u +%Y%m%dT%H%M%SZ)"
JSONL="$RESULTS/$TS.jsonl"
LOG="$WORK/run-$TS.log"
XMPPD_BIN="$ROOT/target/release/xmppd"
BENCH_BIN="$ROOT/target/release/xmppd-bench"
DOMAIN=localhost
PASSWORD=bench-password
SERVER_CORE=0
LOAD_CORE=1

# Private ports (STARTTLS c2s), below the ephemeral range; override with the
# environment if they are taken.
XMPPD_PORT="${BENCH_XMPPD_PORT:-15722}"      # and +1 for direct TLS
PROSODY_PORT="${BENCH_PROSODY_PORT:-25722}"
EJABBERD_PORT="${BENCH_EJABBERD_PORT:-26722}"
EJABBERD_NODE=xmppdbench@localhost

# Accounts are always provisioned at full size (once; cached in bench/work).
BENCH_USERS=20000
FAN_USERS=2100
FAN_CONTACTS=20

if [ "$QUICK" -eq 1 ]; then
    IDLE_SMALL=200; IDLE_LARGE=400; IDLE_HOLD=2
    LOGINS=100; LOGIN_CONC=20
    MSG_PAIRS=50; MSG_RATE=200; MSG_DURATION=3
    FAN_RUN_USERS=105; FAN_DURATION=3
    OFF_SENDERS=10; OFF_RECIPIENTS=100; OFF_PER=20; OFF_CONC=20
    MAX_SECONDS=120
else
    IDLE_SMALL=10000; IDLE_LARGE=19000; IDLE_HOLD=5
    LOGINS=2000; LOGIN_CONC=50
    MSG_PAIRS=1000; MSG_RATE=2000; MSG_DURATION=10
    FAN_RUN_USERS=2100; FAN_DURATION=10
    # 50 000 stored messages; 50 per recipient is far below every quota
    # (xmppd 1000, ejabberd 1000 as configured below, Prosody 10000).
    OFF_SENDERS=20; OFF_RECIPIENTS=1000; OFF_PER=50; OFF_CONC=50
    MAX_SECONDS=600
fi

mkdir -p "$WORK" "$RESULTS"
chmod 755 "$WORK"
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }

# ---------------------------------------------------------------- install ---

# The mirror Debian itself is configured with (deb822 .sources or one-line).
debian_mirror() {
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri="$(awk 'BEGIN{RS="";FS="\n"}
            /Suites:[^\n]*bookworm/ && !/Suites:[^\n]*security/ {
                for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, a, " "); print a[1]; exit }
            }' "$f")"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri="$(awk '$1 == "deb" && $0 ~ / bookworm / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' "$f")"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    return 1
}

install_servers() {
    local want_prosody=0 want_ejabberd=0
    case ",$SERVERS," in *,prosody,*) want_prosody=1 ;; esac
    case ",$SERVERS," in *,ejabberd,*) want_ejabberd=1 ;; esac
    local missing=()
    if [ $want_prosody -eq 1 ] && ! dpkg-query -W -f='${Version}' prosody 2>/dev/null | grep -q '^13\.'; then
        missing+=(prosody)
    fi
    if [ $want_ejabberd -eq 1 ] && ! dpkg-query -W -f='${Version}' ejabberd 2>/dev/null | grep -q '^2[4-9]\.'; then
        missing+=(ejabberd)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$INSTALL" -eq 0 ]; then
        echo "missing: ${missing[*]} (and --no-install given)" >&2
        exit 1
    fi
    local mirror
    mirror="$(debian_mirror)" || { echo "cannot find the Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }
    local list=/etc/apt/sources.list.d/bookworm-backports.sources
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "enabling bookworm-backports from $mirror"
        cat >"$list" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt-get update
    # Keep the packages' postinst from starting system-wide instances; we run
    # our own. Only add a policy-rc.d if the machine has none.
    local policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports "${missing[@]}" || {
        [ $policy_added -eq 1 ] && rm -f /usr/sbin/policy-rc.d
        exit 1
    }
    [ $policy_added -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    for svc in "${missing[@]}"; do
        systemctl disable "$svc" >/dev/null 2>&1 || true
        invoke-rc.d "$svc" stop >/dev/null 2>&1 || true
    done
}

# ------------------------------------------------------------------ build ---

build() {
    if [ "$BUILD" -eq 1 ]; then
        log "building xmppd and xmppd-bench (release)"
        (cd "$ROOT" && cargo build --release -p xmppd-server -p xmppd-bench)
    fi
    [ -x "$XMPPD_BIN" ] || { echo "missing $XMPPD_BIN" >&2; exit 1; }
    [ "$PREPARE" -eq 1 ] || [ -x "$BENCH_BIN" ] || { echo "missing $BENCH_BIN" >&2; exit 1; }
}

# ------------------------------------------------------------- certificate ---

CERT="$WORK/tls/cert.pem"
KEY="$WORK/tls/key.pem"
make_cert() {
    [ -s "$CERT" ] && [ -s "$KEY" ] && return 0
    log "generating a P-256 certificate for $DOMAIN"
    mkdir -p "$WORK/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$KEY" -out "$CERT" -days 3650 -subj "/CN=$DOMAIN" \
        -addext "subjectAltName=DNS:$DOMAIN" 2>/dev/null
    # Benchmark-only key; Prosody and ejabberd run as their own users.
    chmod 755 "$WORK/tls"
    chmod 644 "$CERT" "$KEY"
}

# ---------------------------------------------------------------- python ---

VENV="$BENCH/.venv"
setup_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
        "$VENV/bin/pip" install --quiet matplotlib
    fi
}

# ------------------------------------------------------------ processes ---

wait_port() { # port seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

SERVER_PID=""

# ------------------------------------------------------------------ xmppd ---

XD="$WORK/xmppd"
xmppd_configure() {
    mkdir -p "$XD/data"
    cat >"$XD/xmppd.toml" <<EOF
[server]
hosts = ["$DOMAIN"]
data_dir = "$XD/data"

[listen]
c2s = ["127.0.0.1:$XMPPD_PORT"]
c2s_direct_tls = ["127.0.0.1:$((XMPPD_PORT + 1))"]

[tls]
certificate = "$CERT"
key = "$KEY"
tls13_only = true

[c2s]
require_encryption = true
max_connections = 100000

[auth]
scram_iterations = 4096

[log]
level = "warn"

# Offline storage (XEP-0160) for the offline scenario, default quota of
# 1000 messages per user.
[modules]
enabled = ["disco", "ping", "roster", "presence", "offline"]
EOF
}

xmppd_provision() {
    local t0=$SECONDS
    # Two markers: work dirs provisioned before xmppd had rosters have the
    # accounts but still need the rosters.
    if [ ! -f "$XD/provisioned" ]; then
        log "xmppd: importing $BENCH_USERS + $FAN_USERS accounts"
        "$BENCH/.venv/bin/python" "$BENCH/provision.py" xmppd --work "$WORK" \
            --bench-users "$BENCH_USERS" --fan-users "$FAN_USERS" |
            "$XMPPD_BIN" --config "$XD/xmppd.toml" user import --hashed
        touch "$XD/provisioned"
    fi
    if [ ! -f "$XD/provisioned-rosters" ]; then
        log "xmppd: importing the fanout rosters ($FAN_USERS users, groups of $((FAN_CONTACTS + 1)), subscription both)"
        "$BENCH/.venv/bin/python" "$BENCH/provision.py" xmppd-rosters --work "$WORK" \
            --bench-users "$BENCH_USERS" --fan-users "$FAN_USERS" --contacts "$FAN_CONTACTS" |
            "$XMPPD_BIN" --config "$XD/xmppd.toml" roster import
        touch "$XD/provisioned-rosters"
    fi
    log "xmppd: provisioned in $((SECONDS - t0))s"
}

xmppd_start() {
    taskset -c "$SERVER_CORE" "$XMPPD_BIN" --config "$XD/xmppd.toml" serve >>"$XD/xmppd.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$XMPPD_PORT" 30 || { echo "xmppd did not start; see $XD/xmppd.log" >&2; return 1; }
}

xmppd_stop() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

xmppd_version() {
    local rev dirty=""
    rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || dirty="+dirty"
    echo "$("$XMPPD_BIN" --version 2>/dev/null | head -1) (git $rev$dirty)"
}

# ---------------------------------------------------------------- prosody ---

PD="$WORK/prosody"
prosody_configure() {
    mkdir -p "$PD/data" "$PD/certs"
    cat >"$PD/prosody.cfg.lua" <<EOF
-- Generated by bench/run.sh: minimal c2s server for the benchmark.
daemonize = false
pidfile = "$PD/prosody.pid"
data_path = "$PD/data"
certificates = "$PD/certs"
log = { error = "$PD/prosody.log"; warn = "$PD/prosody.log" }
network_backend = "epoll"
interfaces = { "127.0.0.1" }
c2s_ports = { $PROSODY_PORT }
c2s_direct_tls_ports = { }
s2s_ports = { }
-- Only what the scenarios need: roster + presence (core), offline storage
-- (XEP-0160, for the offline scenario; in the internal storage's archive,
-- 10000 items per user); no MAM, carbons, stream management or rate limits.
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "offline" }
modules_disabled = { "s2s", "s2s_auth_certs", "limits" }
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
ssl = {
    certificate = "$CERT";
    key = "$KEY";
    protocol = "tlsv1_3";
}
limits = { }

VirtualHost "$DOMAIN"
EOF
    chown -R prosody:prosody "$PD"
}

prosody_provision() {
    [ -f "$PD/provisioned" ] && return 0
    log "prosody: writing $BENCH_USERS + $FAN_USERS accounts and fanout rosters"
    local t0=$SECONDS
    "$BENCH/.venv/bin/python" "$BENCH/provision.py" prosody --work "$WORK" \
        --bench-users "$BENCH_USERS" --fan-users "$FAN_USERS" --contacts "$FAN_CONTACTS" \
        --out "$PD/data" --owner prosody
    log "prosody: provisioned in $((SECONDS - t0))s"
    touch "$PD/provisioned"
}

prosody_start() {
    # setpriv keeps the raised RLIMIT_NOFILE and the exec chain keeps the PID.
    taskset -c "$SERVER_CORE" setpriv --reuid=prosody --regid=prosody --init-groups \
        prosody --config "$PD/prosody.cfg.lua" >>"$PD/stdout.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$PROSODY_PORT" 30 || { echo "prosody did not start; see $PD/prosody.log" >&2; return 1; }
}

prosody_stop() { xmppd_stop; }

prosody_version() {
    local v
    v="$(setpriv --reuid=prosody --regid=prosody --init-groups prosody --version 2>/dev/null | head -1 || true)"
    echo "${v:-Prosody $(cat /usr/lib/prosody/prosody.version 2>/dev/null)} (deb $(dpkg-query -W -f='${Version}' prosody))"
}

# --------------------------------------------------------------- ejabberd ---

ED="$WORK/ejabberd"
# As the ejabberd user via setpriv rather than ejabberdctl's own su: su's
# pam_limits would reset the raised fd limit to 1024.
ejabberdctl_() {
    setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$ED" \
        ejabberdctl --config-dir "$ED/etc" --logs "$ED/log" --spool "$ED/db" "$@"
}

ejabberd_configure() {
    mkdir -p "$ED/etc" "$ED/log" "$ED/db"
    printf '{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n' >"$ED/etc/inetrc"
    cat >"$ED/etc/ejabberdctl.cfg" <<EOF
# Generated by bench/run.sh: our own node name and cookie, not the system one.
ERLANG_NODE=$EJABBERD_NODE
ERL_MAX_PORTS=65536
ERL_PROCESSES=1000000
ERL_MAX_ETS_TABLES=10000
ERL_OPTIONS="-setcookie xmppd-bench-$(hostname -s) -env ERL_CRASH_DUMP_BYTES 0 +S 1:1"
EOF
    cat >"$ED/etc/ejabberd.yml" <<EOF
# Generated by bench/run.sh: minimal c2s server for the benchmark.
loglevel: warning
hosts:
  - $DOMAIN
certfiles:
  - "$CERT"
  - "$KEY"
listen:
  -
    port: $EJABBERD_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls_required: true
    protocol_options:
      - "no_sslv3"
      - "no_tlsv1"
      - "no_tlsv1_1"
      - "no_tlsv1_2"
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
default_db: mnesia
max_fsm_queue: 1000000
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from: ejabberd_ctl
    who: all
    what: "*"
shaper_rules:
  max_user_sessions: 100
  # The offline quota: xmppd's default (without this rule there is none).
  max_user_offline_messages: 1000
  c2s_shaper: none
# roster + presence, offline storage (XEP-0160, mnesia) for the offline
# scenario; no MAM, carbons, stream management.
modules:
  mod_roster:
    versioning: false
  mod_disco: {}
  mod_ping: {}
  mod_offline: {}
EOF
    chown -R ejabberd:ejabberd "$ED"
}

ejabberd_beam_pid() {
    pgrep -f -- "beam.*-sname $EJABBERD_NODE( |\$)" | head -1
}

ejabberd_start() {
    # erl inherits the CPU affinity and the fd limit.
    taskset -c "$SERVER_CORE" bash -c "$(declare -f ejabberdctl_); ED='$ED'; ejabberdctl_ start"
    local i
    for ((i = 0; i < 120; i++)); do
        if ejabberdctl_ status >/dev/null 2>&1; then break; fi
        sleep 1
    done
    ejabberdctl_ status >/dev/null 2>&1 || { echo "ejabberd did not start; see $ED/log" >&2; return 1; }
    SERVER_PID="$(ejabberd_beam_pid)"
    [ -n "$SERVER_PID" ] || { echo "cannot find ejabberd's beam process" >&2; return 1; }
    wait_port "$EJABBERD_PORT" 30 || { echo "ejabberd is not listening on $EJABBERD_PORT" >&2; return 1; }
}

ejabberd_stop() {
    [ -n "$SERVER_PID" ] || return 0
    ejabberdctl_ stop >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 60; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.5
    done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

ejabberd_provision() {
    [ -f "$ED/provisioned" ] && return 0
    log "ejabberd: importing $BENCH_USERS + $FAN_USERS accounts and fanout rosters (XEP-0227)"
    local t0=$SECONDS
    "$BENCH/.venv/bin/python" "$BENCH/provision.py" piefxis --work "$WORK" \
        --bench-users "$BENCH_USERS" --fan-users "$FAN_USERS" --contacts "$FAN_CONTACTS" \
        --out "$ED/import.xml"
    chown ejabberd:ejabberd "$ED/import.xml"
    ejabberdctl_ --no-timeout import_piefxis "$ED/import.xml"
    log "ejabberd: provisioned in $((SECONDS - t0))s"
    touch "$ED/provisioned"
}

ejabberd_version() {
    local v
    v="$(ejabberdctl_ status 2>/dev/null | grep -o 'ejabberd [^ ]* is running' | head -1 | sed 's/ is running//' || true)"
    echo "${v:-ejabberd} (deb $(dpkg-query -W -f='${Version}' ejabberd), $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null))"
}

# --------------------------------------------------------------- scenarios ---

port_of() { case "$1" in xmppd) echo $XMPPD_PORT ;; prosody) echo $PROSODY_PORT ;; ejabberd) echo $EJABBERD_PORT ;; esac; }

# Appends one result line (the bench's JSON plus our variant/exit code) to
# $JSONL, or a failure record when the bench printed no JSON.
record() { # label variant exit_code stdout_file args...
    local label=$1 variant=$2 rc=$3 out=$4
    shift 4
    "$VENV/bin/python" - "$label" "$variant" "$rc" "$out" "$JSONL" "$*" <<'EOF'
import json, sys
label, variant, rc, out, jsonl, args = sys.argv[1:7]
record = None
with open(out) as f:
    for line in f:
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                pass
if record is None:
    record = {"label": label, "failed": True}
record["variant"] = variant
record["exit_code"] = int(rc)
record["args"] = args
with open(jsonl, "a") as f:
    f.write(json.dumps(record) + "\n")
print(json.dumps(record))
EOF
}

run_variant() { # server variant scenario args...
    local server=$1 variant=$2
    shift 2
    local port out rc=0
    port="$(port_of "$server")"
    "${server}_start" || {
        log "$server failed to start for $variant"
        echo "{\"label\":\"$server\",\"variant\":\"$variant\",\"failed\":true,\"error\":\"server did not start\"}" >>"$JSONL"
        "${server}_stop" || true
        return 0
    }
    log "$server: $variant (server pid $SERVER_PID on core $SERVER_CORE)"
    out="$WORK/last-bench.out"
    taskset -c "$LOAD_CORE" "$BENCH_BIN" "$@" \
        --host 127.0.0.1 --port "$port" --domain "$DOMAIN" --password "$PASSWORD" \
        --tls starttls --mechanism SCRAM-SHA-1 --server-pid "$SERVER_PID" \
        --label "$server" --max-seconds "$MAX_SECONDS" >"$out" 2> >(tee -a "$LOG" >&2) || rc=$?
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$server died during $variant"
        rc=${rc:-0}
        echo "{\"label\":\"$server\",\"variant\":\"$variant\",\"server_died\":true}" >>"$JSONL"
        SERVER_PID=""
    fi
    record "$server" "$variant" "$rc" "$out" "$@" | tee -a "$LOG"
    "${server}_stop"
    sleep 2
}

run_server() {
    local server=$1
    "${server}_configure"
    if [ "$server" = ejabberd ]; then
        ejabberd_start
        ejabberd_provision
        VERSIONS[ejabberd]="$(ejabberd_version)"
        ejabberd_stop
    else
        "${server}_provision"
    fi
    if [ "$PREPARE" -eq 1 ]; then
        "${server}_start"
        log "$server is up (pid $SERVER_PID, port $(port_of "$server")); stopping"
        "${server}_stop"
        return 0
    fi
    local scenario
    for scenario in ${SCENARIOS//,/ }; do
        case "$scenario" in
            idle)
                run_variant "$server" "idle-$IDLE_SMALL" idle --sessions "$IDLE_SMALL" --hold-seconds "$IDLE_HOLD"
                run_variant "$server" "idle-$IDLE_LARGE" idle --sessions "$IDLE_LARGE" --hold-seconds "$IDLE_HOLD"
                ;;
            login)
                run_variant "$server" "login-$LOGINS" login --logins "$LOGINS" --concurrency "$LOGIN_CONC"
                ;;
            msg)
                run_variant "$server" "msg-rate-$MSG_RATE" msg --pairs "$MSG_PAIRS" --rate "$MSG_RATE" --duration "$MSG_DURATION"
                run_variant "$server" "msg-saturation" msg --pairs "$MSG_PAIRS" --rate 0 --duration "$MSG_DURATION"
                ;;
            fanout)
                run_variant "$server" "fanout" fanout --user-prefix fan --users "$FAN_RUN_USERS" \
                    --contacts "$FAN_CONTACTS" --duration "$FAN_DURATION"
                # The same with clients that announce XEP-0115 caps with PEP
                # interests and answer the server's disco#info, as real ones do.
                run_variant "$server" "fanout-caps" fanout --user-prefix fan --users "$FAN_RUN_USERS" \
                    --contacts "$FAN_CONTACTS" --duration "$FAN_DURATION" --caps
                ;;
            offline)
                # Senders bench0.., recipients after them; the bench drains
                # whatever an earlier run left stored before it measures.
                run_variant "$server" "offline" offline --senders "$OFF_SENDERS" --recipients "$OFF_RECIPIENTS" \
                    --per-recipient "$OFF_PER" --concurrency "$OFF_CONC"
                ;;
        esac
    done
}

# -------------------------------------------------------------------- main ---

install_servers
build
make_cert
setup_venv
"$VENV/bin/python" "$BENCH/provision.py" creds --work "$WORK" \
    --bench-users "$BENCH_USERS" --fan-users "$FAN_USERS"

# Both the servers and the load generator inherit this.
ulimit -n "$(ulimit -Hn)"
log "fd limit $(ulimit -n); servers on core $SERVER_CORE, load generator on core $LOAD_CORE"

declare -A VERSIONS=()
for s in ${SERVERS//,/ }; do
    case "$s" in
        xmppd) VERSIONS[xmppd]="$(xmppd_version)" ;;
        prosody) VERSIONS[prosody]="$(prosody_version)" ;;
    esac
done

CURRENT=""
cleanup() {
    if [ -n "$CURRENT" ] && [ -n "$SERVER_PID" ]; then "${CURRENT}_stop" || true; fi
}
trap cleanup EXIT
for s in ${SERVERS//,/ }; do
    CURRENT=$s
    run_server "$s"
    CURRENT=""
done

# Header line last in time but first in the file: versions are only known
# once ejabberd has run.
versions_json="$("$VENV/bin/python" - "$QUICK" "$SERVERS" "$SCENARIOS" "$TS" \
    "xmppd=${VERSIONS[xmppd]:-}" "prosody=${VERSIONS[prosody]:-}" "ejabberd=${VERSIONS[ejabberd]:-}" <<'EOF'
import json, os, platform, sys
quick, servers, scenarios, ts = sys.argv[1:5]
versions = dict(v.split("=", 1) for v in sys.argv[5:])
cpu = ""
try:
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
except OSError:
    pass
print(json.dumps({"scenario": "header", "timestamp": ts, "quick": quick == "1",
                  "servers": servers.split(","), "scenarios": scenarios.split(","),
                  "versions": {k: v for k, v in versions.items() if v},
                  "kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count()}))
EOF
)"
{ echo "$versions_json"; cat "$JSONL" 2>/dev/null || true; } >"$JSONL.tmp" && mv "$JSONL.tmp" "$JSONL"

[ "$PREPARE" -eq 1 ] && { rm -f "$JSONL"; exit 0; }
log "writing the report"
"$VENV/bin/python" "$BENCH/report.py" "$JSONL"
log "done: $JSONL, ${JSONL%.jsonl}.md"
