#!/usr/bin/env python3
"""Account provisioning for the side-by-side benchmark (issue 5).

Derives SCRAM-SHA-1 credentials once (RFC 5802 §3: SaltedPassword =
PBKDF2-HMAC-SHA-1, StoredKey = H(HMAC(SaltedPassword, "Client Key")),
ServerKey = HMAC(SaltedPassword, "Server Key")) with a distinct random salt
per account, caches them, and writes them in each server's own format:

  creds      -> <work>/creds.tsv (cache: user, salt, stored_key, server_key)
  xmppd      -> `jid SCRAM-SHA-1:iterations:salt:stored:server` lines (base64)
                for `xmppd user import --hashed` on stdout
  xmppd-rosters -> `user@localhost contact@localhost both` lines, the fanout
                rosters, for `xmppd roster import` on stdout (after the
                accounts: it refuses rosters of missing accounts)
  prosody    -> <dir>/localhost/accounts/<user>.dat and roster/<user>.dat,
                the Lua tables Prosody 13's internal storage reads
                (mod_auth_internal_hashed, core/rostermanager.lua)
  piefxis    -> a XEP-0227 file with <scram-credentials/> and rosters, which
                `ejabberdctl import_piefxis` (ejabberd >= 23) reads without
                re-deriving anything

Fanout users fan<i> are grouped by 21 (fan0..fan20 = group 0, ...); every
member's roster holds the other members of its group with subscription both.
"""

import argparse
import base64
import hashlib
import hmac
import multiprocessing
import os
import sys
import time
import uuid
from xml.sax.saxutils import quoteattr

DOMAIN = "localhost"
PASSWORD = "bench-password"
ITERATIONS = 4096


def users(bench_count, fan_count):
    return [f"bench{i}" for i in range(bench_count)] + [f"fan{i}" for i in range(fan_count)]


def derive(user):
    # Prosody uses a UUID string as the raw salt; any byte string works for
    # the others, so the same salt serves all three servers.
    salt = str(uuid.uuid4())
    salted = hashlib.pbkdf2_hmac("sha1", PASSWORD.encode(), salt.encode(), ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    stored_key = hashlib.sha1(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    return user, salt, stored_key.hex(), server_key.hex()


def load_creds(work, bench_count, fan_count):
    """Returns {user: (salt, stored_hex, server_hex)}, deriving what is missing."""
    path = os.path.join(work, "creds.tsv")
    creds = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4:
                    creds[parts[0]] = (parts[1], parts[2], parts[3])
    missing = [u for u in users(bench_count, fan_count) if u not in creds]
    if missing:
        started = time.monotonic()
        with multiprocessing.Pool() as pool:
            derived = pool.map(derive, missing, chunksize=256)
        with open(path, "a") as f:
            for user, salt, stored, server in derived:
                creds[user] = (salt, stored, server)
                f.write(f"{user}\t{salt}\t{stored}\t{server}\n")
        print(f"derived {len(missing)} SCRAM-SHA-1 credentials in {time.monotonic() - started:.1f}s",
              file=sys.stderr)
    return creds


def group_of(index, group_size):
    start = (index // group_size) * group_size
    return [f"fan{j}" for j in range(start, start + group_size) if j != index]


def fan_contacts(fan_count, contacts):
    size = contacts + 1
    out = {}
    for i in range(fan_count):
        # A trailing partial group only holds the members that exist.
        out[f"fan{i}"] = [c for c in group_of(i, size) if int(c[3:]) < fan_count]
    return out


def write_prosody(directory, creds, user_list, contacts_of, uid, gid):
    host_dir = os.path.join(directory, DOMAIN)  # "localhost" needs no %-encoding
    accounts = os.path.join(host_dir, "accounts")
    roster = os.path.join(host_dir, "roster")
    for d in (directory, host_dir, accounts, roster):
        os.makedirs(d, exist_ok=True)
    now = int(time.time())
    for user in user_list:
        salt, stored, server = creds[user]
        with open(os.path.join(accounts, f"{user}.dat"), "w") as f:
            f.write("return {\n"
                    f"\t[\"created\"] = {now};\n"
                    f"\t[\"updated\"] = {now};\n"
                    f"\t[\"iteration_count\"] = {ITERATIONS};\n"
                    f"\t[\"salt\"] = \"{salt}\";\n"
                    f"\t[\"stored_key\"] = \"{stored}\";\n"
                    f"\t[\"server_key\"] = \"{server}\";\n"
                    "};\n")
    for user, contacts in contacts_of.items():
        lines = ["return {", "\t[false] = { [\"version\"] = 1; [\"pending\"] = {}; };"]
        for contact in contacts:
            lines.append(f"\t[\"{contact}@{DOMAIN}\"] = {{ [\"subscription\"] = \"both\"; [\"groups\"] = {{}}; }};")
        lines.append("};\n")
        with open(os.path.join(roster, f"{user}.dat"), "w") as f:
            f.write("\n".join(lines))
    if uid is not None:
        for root, dirs, files in os.walk(directory):
            os.chown(root, uid, gid)
            for name in files:
                os.chown(os.path.join(root, name), uid, gid)


def write_piefxis(path, creds, user_list, contacts_of):
    # ejabberd keeps SCRAM fields base64-encoded in its database and
    # import_piefxis base64-decodes the file's text once before storing it
    # (its own export encodes the stored value again), so each field is
    # base64(base64(raw)) here.
    def b64(raw):
        return base64.b64encode(base64.b64encode(raw)).decode()

    with open(path, "w") as f:
        f.write("<?xml version='1.0' encoding='UTF-8'?>\n"
                "<server-data xmlns='urn:xmpp:pie:0'>\n"
                f"<host jid='{DOMAIN}'>\n")
        for user in user_list:
            salt, stored, server = creds[user]
            f.write(f"<user name={quoteattr(user)}>"
                    "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>"
                    f"<iter-count>{ITERATIONS}</iter-count>"
                    f"<salt>{b64(salt.encode())}</salt>"
                    f"<server-key>{b64(bytes.fromhex(server))}</server-key>"
                    f"<stored-key>{b64(bytes.fromhex(stored))}</stored-key>"
                    "</scram-credentials>")
            contacts = contacts_of.get(user)
            if contacts:
                f.write("<query xmlns='jabber:iq:roster'>")
                for contact in contacts:
                    f.write(f"<item jid='{contact}@{DOMAIN}' subscription='both'/>")
                f.write("</query>")
            f.write("</user>\n")
        f.write("</host>\n</server-data>\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=["creds", "xmppd", "xmppd-rosters", "prosody", "piefxis"])
    parser.add_argument("--work", required=True, help="bench/work (holds the credential cache)")
    parser.add_argument("--bench-users", type=int, default=20000)
    parser.add_argument("--fan-users", type=int, default=2100)
    parser.add_argument("--contacts", type=int, default=20)
    parser.add_argument("--out", help="prosody data dir or piefxis file")
    parser.add_argument("--no-fan", action="store_true", help="accounts only for fan users (no rosters)")
    parser.add_argument("--owner", help="user name to chown prosody files to")
    args = parser.parse_args()

    user_list = users(args.bench_users, args.fan_users)
    if args.target == "xmppd-rosters":
        # The same groups and subscriptions as the peers' rosters; no
        # credentials needed.
        contacts_of = {} if args.no_fan else fan_contacts(args.fan_users, args.contacts)
        out = sys.stdout
        for user, contacts in contacts_of.items():
            for contact in contacts:
                out.write(f"{user}@{DOMAIN} {contact}@{DOMAIN} both\n")
        return
    creds = load_creds(args.work, args.bench_users, args.fan_users)
    if args.target == "creds":
        return
    if args.target == "xmppd":
        # The same SCRAM-SHA-1 credentials the peers get, for
        # `xmppd user import --hashed` (nothing is derived again).
        def b64(raw):
            return base64.b64encode(raw).decode()

        out = sys.stdout
        for user in user_list:
            salt, stored, server = creds[user]
            out.write(f"{user}@{DOMAIN} SCRAM-SHA-1:{ITERATIONS}:{b64(salt.encode())}:"
                      f"{b64(bytes.fromhex(stored))}:{b64(bytes.fromhex(server))}\n")
        return
    contacts_of = {} if args.no_fan else fan_contacts(args.fan_users, args.contacts)
    started = time.monotonic()
    if args.target == "prosody":
        uid = gid = None
        if args.owner:
            import pwd
            entry = pwd.getpwnam(args.owner)
            uid, gid = entry.pw_uid, entry.pw_gid
        write_prosody(args.out, creds, user_list, contacts_of, uid, gid)
    else:
        write_piefxis(args.out, creds, user_list, contacts_of)
    print(f"wrote {args.target} data for {len(user_list)} accounts in {time.monotonic() - started:.1f}s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
