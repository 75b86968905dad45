"""Interop check with the real terminal client Profanity, driven in tmux.

Alice uses Profanity (typed into a detached tmux session; every check reads
the screen with `tmux capture-pane`), Bob is a slixmpp client. Steps:
Alice logs in; Bob asks to subscribe to her presence; she accepts with
`/sub allow`; she sends Bob a message with `/msg`; Bob answers; the answer
shows up in Profanity's chat window. Each passed step prints a line the Rust
test looks for. Exit status 0 on success; on failure the reason, the last
screen and the tail of Profanity's debug log (its stanzas) go to stderr.

usage: profanity_tmux.py PORT PASSWORD WORKDIR
  PORT: the server's STARTTLS client port on 127.0.0.1
  WORKDIR: an empty or missing directory, private to this run; it gets the
  throwaway HOME of Profanity and the tmux socket (WORKDIR/tmux.sock).
Accounts alice and bob @localhost must exist with PASSWORD.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import xmppd_client

PORT, PASSWORD, WORKDIR = sys.argv[1:4]
TIMEOUT = 20
TOKEN = uuid.uuid4().hex[:12]
ALICE = "alice@localhost"
BOB = "bob@localhost"
SOCKET = os.path.join(WORKDIR, "tmux.sock")
SESSION = f"xmppd-profanity-{os.getpid()}-{TOKEN}"
HOME = os.path.join(WORKDIR, "home")
PROFANITY_LOG = os.path.join(HOME, ".local", "share", "profanity", "logs", "profanity.log")


def tmux(*args, check=True):
    return subprocess.run(
        ["tmux", "-u", "-S", SOCKET, *args], check=check, capture_output=True, text=True, timeout=10
    )


def screen():
    """The visible text of Profanity's terminal, or a note why there is none."""
    result = tmux("capture-pane", "-p", "-J", "-t", SESSION, check=False)
    if result.returncode != 0:
        return f"(no pane: {result.stderr.strip()})"
    return result.stdout


def pane_dead():
    result = tmux("display-message", "-p", "-t", SESSION, "#{pane_dead} #{pane_dead_status}", check=False)
    fields = result.stdout.split()
    return result.returncode != 0 or (fields[:1] == ["1"]), result.stdout.strip()


async def wait_screen(needle, what, fail=()):
    """Polls the screen until it shows `needle`; any of `fail` ends it early."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        text = screen()
        if needle in text:
            return text
        for bad in fail:
            if bad in text:
                raise AssertionError(f"{what}: Profanity shows {bad!r}")
        dead, status = pane_dead()
        if dead:
            raise AssertionError(f"{what}: Profanity exited ({status}) before showing {needle!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {needle!r} not on screen after {TIMEOUT}s")
        await asyncio.sleep(0.1)


def type_line(line):
    tmux("send-keys", "-t", SESSION, "-l", line)
    tmux("send-keys", "-t", SESSION, "Enter")


def write_profanity_config():
    config = os.path.join(HOME, ".config", "profanity")
    data = os.path.join(HOME, ".local", "share", "profanity")
    os.makedirs(config, exist_ok=True)
    os.makedirs(data, exist_ok=True)
    # Nothing that pops up, waits for a desktop or pings on its own.
    with open(os.path.join(config, "profrc"), "w", encoding="utf-8") as f:
        f.write(
            "[connection]\nautoping=0\n"
            "[notifications]\nmessage=false\nroom=false\ninvite=false\nsub=false\ntray=false\n"
            "[ui]\nsplash=false\n"
        )
    # The account: STARTTLS to 127.0.0.1:PORT, trusting the server's
    # self-signed certificate (tls.policy=trust, as `/connect ... tls trust`).
    path = os.path.join(data, "accounts")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        f.write(
            "[alice]\n"
            "enabled=true\n"
            f"jid={ALICE}\n"
            "server=127.0.0.1\n"
            f"port={PORT}\n"
            "resource=profanity\n"
            f"password={PASSWORD}\n"
            "tls.policy=trust\n"
        )


def start_profanity():
    os.makedirs(WORKDIR, exist_ok=True)
    write_profanity_config()
    with open(os.path.join(WORKDIR, "tmux.conf"), "w", encoding="utf-8") as f:
        # Keep the pane (and its last screen) if Profanity dies.
        f.write("set -g remain-on-exit on\n")
    env = [
        f"HOME={HOME}",
        f"XDG_CONFIG_HOME={os.path.join(HOME, '.config')}",
        f"XDG_DATA_HOME={os.path.join(HOME, '.local', 'share')}",
        f"XDG_CACHE_HOME={os.path.join(HOME, '.cache')}",
        f"XDG_RUNTIME_DIR={WORKDIR}",
        "LANG=C.UTF-8",
        "DBUS_SESSION_BUS_ADDRESS=disabled:",
        "DISPLAY=",
    ]
    tmux(
        "-f", os.path.join(WORKDIR, "tmux.conf"),
        "new-session", "-d", "-s", SESSION, "-x", "200", "-y", "50",
        "env", "-u", "TMUX", *env, "profanity", "-a", "alice", "-l", "DEBUG",
    )


def stop_profanity():
    """Quits Profanity if it still runs, then ends the private tmux server."""
    try:
        if not pane_dead()[0]:
            type_line("/quit")
            deadline = time.monotonic() + 5
            while not pane_dead()[0] and time.monotonic() < deadline:
                time.sleep(0.1)
    except Exception:  # noqa: BLE001 - cleanup goes on regardless
        pass
    tmux("kill-server", check=False)


def make_bob():
    async def on_ready(bob):
        await bob.get_roster()
        bob.send_presence()

    bob = xmppd_client.make_client(f"{BOB}/slixmpp", PASSWORD, PORT, on_ready=on_ready)
    bob.roster.auto_authorize = None
    bob.roster.auto_subscribe = False
    bob.presences = asyncio.Queue()
    bob.messages = asyncio.Queue()
    bob.add_event_handler("presence", lambda p: bob.presences.put_nowait((p["type"], str(p["from"]))))
    bob.add_event_handler("message", lambda m: bob.messages.put_nowait(m))
    return bob


async def expect_presence(bob, ptype, from_bare):
    while True:
        got = await asyncio.wait_for(bob.presences.get(), TIMEOUT)
        if got[0] == ptype and got[1].split("/")[0] == from_bare:
            return got


async def scenario():
    start_profanity()
    await wait_screen("logged in successfully", "alice's login", fail=("Login failed",))
    print("profanity: alice logged in over STARTTLS")

    bob = make_bob()
    await asyncio.wait_for(bob.ready, TIMEOUT)
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await wait_screen(f"Received authorization request from {BOB}", "subscription request")
    print("profanity: shows bob's subscription request")

    type_line(f"/sub allow {BOB}")
    await expect_presence(bob, "subscribed", ALICE)
    print("slixmpp: bob received subscribed from alice")
    await expect_presence(bob, "available", ALICE)
    print("slixmpp: bob received alice's presence")

    hello = f"hello-from-profanity-{TOKEN}"
    type_line(f"/msg {BOB} {hello}")
    while True:
        msg = await asyncio.wait_for(bob.messages.get(), TIMEOUT)
        if msg["body"]:
            break
    assert msg["body"] == hello, f"bob got {msg['body']!r}, wanted {hello!r}"
    assert str(msg["from"]) == f"{ALICE}/profanity", f"message from {msg['from']}"
    assert msg["type"] == "chat", f"message type {msg['type']}"
    await wait_screen(f"me: {hello}", "alice's own message")
    print("slixmpp: bob received alice's message")

    reply = f"reply-{TOKEN}"
    bob.send_message(mto=msg["from"], mbody=reply, mtype="chat")
    text = await wait_screen(reply, "bob's reply")
    assert f"{BOB}/slixmpp: {reply}" in text, f"reply not shown as from bob:\n{text}"
    print("profanity: shows bob's reply")

    bob.disconnect()
    await asyncio.sleep(0.2)


def report_failure():
    print("--- last Profanity screen ---", file=sys.stderr)
    print("\n".join(line.rstrip() for line in screen().splitlines() if line.strip()), file=sys.stderr)
    try:
        with open(PROFANITY_LOG, encoding="utf-8", errors="replace") as f:
            lines = [line.rstrip() for line in f if "SENT:" in line or "RECV:" in line or "ERR" in line or "WRN" in line]
        print("--- Profanity log (stanzas, warnings, errors; last 60) ---", file=sys.stderr)
        print("\n".join(lines[-60:]), file=sys.stderr)
    except OSError as error:
        print(f"(no Profanity log: {error})", file=sys.stderr)


def on_term(_signum, _frame):
    raise SystemExit(143)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    status = 0
    try:
        asyncio.run(asyncio.wait_for(scenario(), TIMEOUT * 4))
    except BaseException as error:  # noqa: BLE001 - report any failure
        import traceback

        traceback.print_exc()
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        report_failure()
        status = 1
    finally:
        stop_profanity()
    sys.exit(status)
