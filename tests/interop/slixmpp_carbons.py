"""Interop check of XEP-0280 Message Carbons against xmppd with real
slixmpp clients (their xep_0280 plugin). Exit status 0 on success; each
passed step prints a line the Rust test looks for.

usage: slixmpp_carbons.py PORT PASSWORD
Accounts alice and bob @localhost must exist.
"""

import asyncio
import sys

from slixmpp.xmlstream import ET

import xmppd_client

PORT, PASSWORD = sys.argv[1:3]
TIMEOUT = 15
NS_CARBONS = "urn:xmpp:carbons:2"


def make_client(jid, priority):
    async def on_ready(client):
        await client.get_roster()
        client.send_presence(ppriority=priority)

    client = xmppd_client.make_client(jid, PASSWORD, PORT, plugins=("xep_0030", "xep_0280"), on_ready=on_ready)
    client.carbons = asyncio.Queue()
    client.messages = asyncio.Queue()
    client.add_event_handler("carbon_received", lambda msg: client.carbons.put_nowait(("received", msg)))
    client.add_event_handler("carbon_sent", lambda msg: client.carbons.put_nowait(("sent", msg)))
    client.add_event_handler("message", lambda msg: client.messages.put_nowait(msg))
    return client


async def expect_carbon(client, direction, body):
    got, msg = await asyncio.wait_for(client.carbons.get(), TIMEOUT)
    forwarded = msg[f"carbon_{direction}"]
    assert got == direction and forwarded["body"] == body, f"{client.boundjid}: {got} {forwarded}"
    assert msg["from"] == client.boundjid.bare, f"carbon from {msg['from']}"
    return forwarded


async def expect_nothing(client, what):
    await asyncio.sleep(0.7)
    assert client.carbons.empty(), f"{client.boundjid}: unexpected carbon ({what})"


async def main():
    phone = make_client("alice@localhost/phone", 10)
    laptop = make_client("alice@localhost/laptop", 0)
    bob = make_client("bob@localhost/desk", 0)
    await asyncio.wait_for(asyncio.gather(phone.ready, laptop.ready, bob.ready), TIMEOUT)

    info = await phone["xep_0030"].get_info(jid="localhost", timeout=TIMEOUT)
    assert NS_CARBONS in info["disco_info"]["features"], info
    await phone["xep_0280"].enable(timeout=TIMEOUT)
    await laptop["xep_0280"].enable(timeout=TIMEOUT)
    await laptop["xep_0280"].enable(timeout=TIMEOUT)  # a second enable is a no-op (§7.1)
    # Addressed to the server instead of the own account: the same.
    iq = phone.make_iq_set(ito="localhost")
    iq.append(ET.Element(f"{{{NS_CARBONS}}}enable"))
    await iq.send(timeout=TIMEOUT)
    print("carbons enabled")

    # To the bare JID: the phone (priority 10) gets it, the laptop a copy.
    bob.send_message(mto="alice@localhost", mbody="hello", mtype="chat")
    msg = await asyncio.wait_for(phone.messages.get(), TIMEOUT)
    assert msg["body"] == "hello"
    forwarded = await expect_carbon(laptop, "received", "hello")
    assert forwarded["from"] == bob.boundjid, forwarded["from"]
    await expect_nothing(phone, "the direct recipient gets no copy")
    print("received carbon to the other device")

    phone.send_message(mto="bob@localhost", mbody="reply", mtype="chat")
    forwarded = await expect_carbon(laptop, "sent", "reply")
    assert forwarded["to"] == "bob@localhost" and forwarded["from"] == phone.boundjid, forwarded
    print("sent carbon to the other device")

    # §6.1: private messages, no-copy hints and headlines are not copied.
    msg = bob.make_message(mto="alice@localhost", mbody="secret", mtype="chat")
    msg.append(ET.Element(f"{{{NS_CARBONS}}}private"))
    msg.append(ET.Element("{urn:xmpp:hints}no-copy"))
    msg.send()
    bob.send_message(mto="alice@localhost", mbody="news", mtype="headline")
    await expect_nothing(laptop, "private and headline")
    print("private and headline messages not copied")

    await laptop["xep_0280"].disable(timeout=TIMEOUT)
    bob.send_message(mto="alice@localhost", mbody="after", mtype="chat")
    await expect_nothing(laptop, "disabled")
    print("disabled: no more copies")

    for c in (phone, laptop, bob):
        c.disconnect()
    await asyncio.sleep(0.3)


if __name__ == "__main__":
    xmppd_client.run(main, TIMEOUT * 4, print_traceback=True)
