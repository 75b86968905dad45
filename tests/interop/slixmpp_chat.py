"""Interop check: two slixmpp clients log in to xmppd, exchange messages
and IQs. Exit status 0 on success; the failure reason goes to stderr.

usage: slixmpp_chat.py PORT MODE MECHANISM JID_A JID_B PASSWORD
  MODE: starttls | direct
  MECHANISM: a SASL mechanism name, e.g. SCRAM-SHA-256, SCRAM-SHA-1-PLUS
"""

import asyncio
import sys
import uuid

import slixmpp

import xmppd_client

PORT, MODE, MECHANISM, JID_A, JID_B, PASSWORD = sys.argv[1:7]
TIMEOUT = 20

# SCRAM-*-PLUS on TLS 1.3 needs this (see its COMPAT note).
xmppd_client.use_tls_server_end_point()


def make_client(jid):
    client = xmppd_client.make_client(jid, PASSWORD, PORT, mechanism=MECHANISM, direct_tls=MODE == "direct",
                                      plugins=("xep_0030", "xep_0199"), on_ready=lambda c: c.send_presence())
    client.inbox = asyncio.Queue()
    client.add_event_handler("message", lambda msg: client.inbox.put_nowait(msg))
    return client


async def main():
    a = make_client(JID_A)
    b = make_client(JID_B)
    await asyncio.wait_for(asyncio.gather(a.ready, b.ready), TIMEOUT)
    for client in (a, b):
        mech = client.plugin["feature_mechanisms"].mech
        used = f"{mech.name}" if mech else "?"
        print(f"{client.boundjid} authenticated with {used}")
    # Presence must reach the server before bare-JID delivery picks a resource.
    await asyncio.sleep(0.3)

    token = uuid.uuid4().hex
    a.send_message(mto=JID_B, mbody=f"hello {token}", mtype="chat")
    msg = await asyncio.wait_for(b.inbox.get(), TIMEOUT)
    assert msg["body"] == f"hello {token}", msg
    assert msg["from"] == a.boundjid, (msg["from"], a.boundjid)
    b.send_message(mto=msg["from"], mbody=f"reply {token}", mtype="chat")
    reply = await asyncio.wait_for(a.inbox.get(), TIMEOUT)
    assert reply["body"] == f"reply {token}", reply
    assert reply["from"] == b.boundjid, (reply["from"], b.boundjid)
    print("messages exchanged")

    # IQ between clients (RFC 6121 §8.5.3.1): refused while B shares no
    # presence with A, delivered once B sent A directed presence; B's
    # XEP-0199 plugin answers.
    try:
        await a.plugin["xep_0199"].ping(jid=b.boundjid, timeout=TIMEOUT)
        raise AssertionError("iq from a stranger to a full JID was delivered")
    except slixmpp.exceptions.IqError as error:
        assert error.condition == "service-unavailable", error.condition
    b.send_presence(pto=a.boundjid.bare)
    await asyncio.sleep(0.3)
    rtt = await a.plugin["xep_0199"].ping(jid=b.boundjid, timeout=TIMEOUT)
    print(f"client-to-client ping ok ({rtt * 1000:.1f} ms)")
    # IQ to the server and disco#info of the server.
    await a.plugin["xep_0199"].ping(jid=a.boundjid.domain, timeout=TIMEOUT)
    info = await a.plugin["xep_0030"].get_info(jid=a.boundjid.domain, timeout=TIMEOUT)
    features = info["disco_info"]["features"]
    assert "urn:xmpp:ping" in features, features
    print("server ping and disco ok")

    # An IQ to an unknown account bounces with service-unavailable.
    try:
        await a.plugin["xep_0030"].get_info(jid="nobody@" + a.boundjid.domain, timeout=TIMEOUT)
        raise AssertionError("iq to an unknown user was answered")
    except slixmpp.exceptions.IqError as error:
        assert error.condition == "service-unavailable", error.condition
    print("unknown user bounced")

    a.disconnect()
    b.disconnect()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    xmppd_client.run(main, TIMEOUT * 3)
