#!/usr/bin/env python3
"""Writes a XEP-0227 (PIEFXIS) file for the `xmppd import` benchmark
(BENCHMARKS.md, "Migration import").

Every account has hashed SCRAM credentials (SCRAM-SHA-1 and SCRAM-SHA-256,
XEP-0227 §4.3, so the import does no PBKDF2) and a roster of ROSTER items,
subscription both, each in one group. The keys are random bytes: the import
stores them as they are and never checks them.

    bench/gen_xep0227.py OUT.xml [--accounts 100000] [--roster 20] [--host localhost]
"""

import argparse
import base64
import os
import random

SCRAM_NS = "urn:xmpp:pie:0#scram"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def scram(mechanism: str, key_len: int, rng: random.Random) -> str:
    return (
        f"<scram-credentials xmlns='{SCRAM_NS}' mechanism='{mechanism}'>"
        f"<iter-count>4096</iter-count>"
        f"<salt>{b64(rng.randbytes(16))}</salt>"
        f"<server-key>{b64(rng.randbytes(key_len))}</server-key>"
        f"<stored-key>{b64(rng.randbytes(key_len))}</stored-key>"
        f"</scram-credentials>"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--roster", type=int, default=20)
    parser.add_argument("--host", default="localhost")
    args = parser.parse_args()
    rng = random.Random(227)  # the same file every time
    with open(args.out, "w", encoding="ascii", buffering=1 << 20) as out:
        out.write("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n")
        out.write(f"<host jid='{args.host}'>\n")
        for n in range(args.accounts):
            items = "".join(
                f"<item jid='contact{(n + k + 1) % args.accounts}@{args.host}' subscription='both'>"
                f"<group>Group {k % 4}</group></item>"
                for k in range(args.roster)
            )
            out.write(
                f"<user name='user{n}'>"
                f"{scram('SCRAM-SHA-1', 20, rng)}{scram('SCRAM-SHA-256', 32, rng)}"
                f"<query xmlns='jabber:iq:roster'>{items}</query>"
                "</user>\n"
            )
        out.write("</host>\n</server-data>\n")
    print(f"{args.out}: {args.accounts} accounts, {args.roster}-item rosters, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
