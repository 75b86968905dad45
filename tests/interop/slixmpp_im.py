"""Interop check of RFC 6121 (roster, subscriptions, presence, delivery) and
offline storage against xmppd, driven by real slixmpp clients. Exit status 0
on success; the failure reason goes to stderr. Each passed step prints a
line the Rust test looks for.

usage: slixmpp_im.py PORT SCENARIO PASSWORD
  SCENARIO: subscription | offline | rosterver | presence | offline-quota
Accounts alice, bob and carol @localhost must exist.
"""

import asyncio
import sys
import uuid

from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

import xmppd_client

PORT, SCENARIO, PASSWORD = sys.argv[1:4]
TIMEOUT = 15
NS_ROSTER = "jabber:iq:roster"
NS_DELAY = "urn:xmpp:delay"


def make_client(user, resource="test", initial_presence=True, priority=None):
    async def on_ready(client):
        await client.get_roster()
        if initial_presence:
            if priority is None:
                client.send_presence()
            else:
                client.send_presence(ppriority=priority)

    client = xmppd_client.make_client(f"{user}@localhost/{resource}", PASSWORD, PORT, on_ready=on_ready)
    # The test decides every subscription answer itself.
    client.roster.auto_authorize = None
    client.roster.auto_subscribe = False
    client.pushes = asyncio.Queue()
    client.presences = asyncio.Queue()
    client.messages = asyncio.Queue()

    def on_push(iq):
        for item in iq.xml.iter(f"{{{NS_ROSTER}}}item"):
            client.pushes.put_nowait(
                (
                    item.get("jid"),
                    item.get("subscription"),
                    item.get("ask"),
                    item.get("approved"),
                    iq.xml.find(f"{{{NS_ROSTER}}}query").get("ver"),
                )
            )

    def on_presence(presence):
        client.presences.put_nowait((presence["type"], str(presence["from"]), presence))

    client.register_handler(Callback("test roster push", StanzaPath("iq@type=set/roster"), on_push))
    client.register_handler(Callback("test presence", StanzaPath("presence"), on_presence))
    client.add_event_handler("message", lambda msg: client.messages.put_nowait(msg))
    return client


async def online(*clients):
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), TIMEOUT)
    await asyncio.sleep(0.3)
    for c in clients:
        drain(c)


def drain(client):
    for queue in (client.pushes, client.presences, client.messages):
        while not queue.empty():
            queue.get_nowait()


async def expect_push(client, jid, subscription, ask=None, approved=None):
    got = await asyncio.wait_for(client.pushes.get(), TIMEOUT)
    assert got[:4] == (jid, subscription, ask, approved), f"{client.boundjid}: push {got}, wanted {(jid, subscription, ask, approved)}"
    return got


async def expect_presence(client, ptype, from_bare):
    while True:
        got = await asyncio.wait_for(client.presences.get(), TIMEOUT)
        if got[0] == ptype and got[1].split("/")[0] == from_bare:
            return got
        # Presence of other kinds (e.g. the peer's own broadcasts) may come
        # in between; only subscription stanzas must never be unexpected.
        assert got[0] not in ("subscribe", "subscribed", "unsubscribe", "unsubscribed"), f"{client.boundjid}: unexpected {got[:2]}, wanted {ptype} from {from_bare}"


async def expect_quiet(client, what="anything", delay=0.5):
    await asyncio.sleep(delay)
    assert client.pushes.empty(), f"{client.boundjid}: unexpected push {client.pushes.get_nowait()} ({what})"
    subs = []
    while not client.presences.empty():
        got = client.presences.get_nowait()
        if got[0] in ("subscribe", "subscribed", "unsubscribe", "unsubscribed"):
            subs.append(got[:2])
    assert not subs, f"{client.boundjid}: unexpected {subs} ({what})"


def roster_item(client, jid):
    return client.client_roster[jid]


async def subscription():
    """RFC 6121 §3 and Appendix A: walk every state both ways."""
    a = make_client("alice")
    b = make_client("bob")
    await online(a, b)
    A, B = "alice@localhost", "bob@localhost"

    # none -> none+pending-out (A.3.1); B gets the request (§3.1.3).
    a.send_presence(pto=B, ptype="subscribe")
    await expect_push(a, B, "none", ask="subscribe")
    await expect_presence(b, "subscribe", A)
    print("step 1: subscribe: pending-out and request delivered")

    # B approves: B none->from, A none+pending-out->to (§3.1.5, A.2.3).
    b.send_presence(pto=A, ptype="subscribed")
    await expect_push(b, A, "from")
    await expect_push(a, B, "to")
    await expect_presence(a, "subscribed", B)
    await expect_presence(a, "available", B)
    print("step 2: subscribed: to/from and B's presence reaches A")

    # B subscribes back; A approves: both.
    b.send_presence(pto=A, ptype="subscribe")
    await expect_push(b, A, "from", ask="subscribe")
    await expect_presence(a, "subscribe", B)
    a.send_presence(pto=B, ptype="subscribed")
    await expect_push(a, B, "both")
    await expect_push(b, A, "both")
    await expect_presence(b, "subscribed", A)
    await expect_presence(b, "available", A)
    print("step 3: mutual: both")

    # Presence broadcast follows the subscription (§4.4).
    a.send_presence(pstatus="away for lunch", pshow="away")
    got = await expect_presence(b, "away", A)
    assert got[2]["status"] == "away for lunch", got[2]
    print("step 4: broadcast reaches the subscriber")

    # A unsubscribes from B: A both->from, B both->to (A.3.2, A.2.2).
    a.send_presence(pto=B, ptype="unsubscribe")
    await expect_push(a, B, "from")
    await expect_push(b, A, "to")
    await expect_presence(b, "unsubscribe", A)
    print("step 5: unsubscribe: both -> from / to")

    # B cancels A's... no: A cancels B's subscription to A: A from->none,
    # B to->none; B sees A go unavailable (§3.2).
    a.send_presence(pto=B, ptype="unsubscribed")
    await expect_push(a, B, "none")
    await expect_presence(b, "unavailable", A)
    await expect_presence(b, "unsubscribed", A)
    await expect_push(b, A, "none")
    print("step 6: unsubscribed: cancel, unavailable follows")

    # Spoofed approval: B says "subscribed" though A never asked again:
    # no state change, nothing delivered (A.2.3, no pending-out).
    b.send_presence(pto=A, ptype="subscribed")
    await expect_quiet(a, "unsolicited subscribed")
    await expect_push(b, A, "none", approved="true")  # B's own pre-approval (§3.4)
    print("step 7: unsolicited subscribed changes nothing for the receiver")

    # Pre-approved: A subscribes, B's server approves at once (§3.4).
    a.send_presence(pto=B, ptype="subscribe")
    await expect_push(a, B, "none", ask="subscribe")
    await expect_push(b, A, "from")
    await expect_push(a, B, "to")
    await expect_presence(a, "subscribed", B)
    await expect_quiet(b, "pre-approved request is not shown")
    print("step 8: pre-approval honoured")

    # Roster removal by B cancels both ways (§2.5.2).
    await b.del_roster_item(A)
    await expect_push(b, A, "remove")
    await expect_push(a, B, "none")
    await expect_presence(a, "unsubscribed", B)
    print("step 9: removal cancels the subscription")

    # Pending-in survives logout: C asks offline A, A sees it at login (§3.1.3).
    a.disconnect()
    await asyncio.sleep(0.5)
    c = make_client("carol")
    await online(c)
    request = c.make_presence(pto=A, ptype="subscribe", pstatus="it's carol")
    nick = ET.SubElement(request.xml, "{http://jabber.org/protocol/nick}nick")
    nick.text = "Carol C."
    request.send()
    await expect_push(c, A, "none", ask="subscribe")
    await asyncio.sleep(0.3)
    a2 = make_client("alice", resource="again")
    await asyncio.wait_for(a2.ready, TIMEOUT)
    got = await expect_presence(a2, "subscribe", "carol@localhost")
    assert got[2]["status"] == "it's carol", got[2]
    # §3.1.3: the whole stanza was kept, extensions included (XEP-0172).
    assert got[2].xml.find("{http://jabber.org/protocol/nick}nick").text == "Carol C.", got[2]
    print("step 10: stored request redelivered at login")
    for client in (a2, b, c):
        client.disconnect()
    await asyncio.sleep(0.2)


async def presence():
    """§4: initial presence, probes, unavailable on abrupt loss, directed
    presence, own resources, priority-based delivery."""
    a = make_client("alice")
    b = make_client("bob")
    await online(a, b)
    A, B = "alice@localhost", "bob@localhost"
    await mutual(a, b)
    print("mutual subscription set up")

    # A second resource of A: its initial presence probes B and shows the
    # other resource (§4.2.2, §4.3).
    a2 = make_client("alice", resource="phone", priority=5)
    await asyncio.wait_for(a2.ready, TIMEOUT)
    # Its own presence comes back first (§4.2.2: all available resources,
    # the sender included), then B's (probe answer), then the sibling's.
    got = await expect_presence(a2, "available", A)
    assert got[1] == f"{A}/phone", got
    await expect_presence(a2, "available", B)
    got = await expect_presence(a2, "available", A)
    assert got[1] == f"{A}/test", got
    await expect_presence(a, "available", A)  # a sees its sibling
    await expect_presence(b, "available", A)
    print("initial presence: probe answered, own resources informed")

    # Bare-JID messages go to the highest priority (§8.5.2.1.1).
    token = uuid.uuid4().hex
    b.send_message(mto=A, mbody=token, mtype="chat")
    msg = await asyncio.wait_for(a2.messages.get(), TIMEOUT)
    assert msg["body"] == token
    await asyncio.sleep(0.3)
    assert a.messages.empty(), "lower priority resource got the message"
    print("bare JID message to highest priority")

    # Abrupt TCP loss: the server announces unavailable (§4.5.2).
    a2.transport.abort()
    got = await expect_presence(b, "unavailable", A)
    assert got[1] == f"{A}/phone", got
    print("abrupt disconnect announced unavailable")

    # Directed presence to a non-contact, then logout: C gets unavailable (§4.6).
    c = make_client("carol")
    await online(c)
    a.send_presence(pto="carol@localhost/test", pstatus="hi carol")
    await expect_presence(c, "available", A)
    a.disconnect()
    await expect_presence(c, "unavailable", A)
    print("directed presence followed by unavailable")

    # A probe from a non-subscriber reveals nothing (§4.3.2).
    c.send_presence(pto=B, ptype="probe")
    await asyncio.sleep(0.5)
    while not c.presences.empty():
        got = c.presences.get_nowait()
        assert not (got[1].startswith(B) and got[0] == "available"), got
    print("probe from a non-subscriber reveals nothing")

    # The probe of a contact with no available resource is answered with
    # unavailable, the last status and a XEP-0203 delay (§4.3.2).
    b.send_presence(ptype="unavailable", pstatus="gone fishing")
    await asyncio.sleep(0.2)
    b.disconnect()
    await asyncio.sleep(0.5)
    a3 = make_client("alice", resource="again")
    await asyncio.wait_for(a3.ready, TIMEOUT)
    got = await expect_presence(a3, "unavailable", B)
    delay = got[2].xml.find(f"{{{NS_DELAY}}}delay")
    assert delay is not None and delay.get("stamp", "").endswith("Z"), got[2]
    assert got[2]["status"] == "gone fishing", got[2]
    print("probe of an offline contact: unavailable with delay")
    a3.disconnect()
    c.disconnect()
    await asyncio.sleep(0.2)


async def rosterver():
    """§2.6 / XEP-0237: an unchanged version yields an empty result."""
    a = make_client("alice")
    await online(a)
    await a.update_roster("bob@localhost", name="Bob", groups=["Friends", "Café ☕"])
    await expect_push(a, "bob@localhost", "none")
    iq = a.Iq(stype="get")
    iq.enable("roster")
    result = await iq.send(timeout=TIMEOUT)
    ver = result.xml.find(f"{{{NS_ROSTER}}}query").get("ver")
    assert ver, "no version in roster result"
    items = result.xml.findall(f"{{{NS_ROSTER}}}query/{{{NS_ROSTER}}}item")
    groups = sorted(g.text for g in items[0].findall(f"{{{NS_ROSTER}}}group"))
    assert groups == ["Café ☕", "Friends"], groups
    iq = a.Iq(stype="get")
    iq.enable("roster")
    iq["roster"]["ver"] = ver
    result = await iq.send(timeout=TIMEOUT)
    assert result.xml.find(f"{{{NS_ROSTER}}}query") is None, "unchanged roster was sent again"
    print("unchanged version: empty result")
    iq = a.Iq(stype="get")
    iq.enable("roster")
    iq["roster"]["ver"] = "0"
    result = await iq.send(timeout=TIMEOUT)
    assert result.xml.find(f"{{{NS_ROSTER}}}query").get("ver") == ver
    print("stale version: full roster")
    # §2.6.3: a known older version: an empty result, then one push per
    # change (each contact once, in its final state) in version order.
    for jid in ("x1@localhost", "x2@localhost", "x3@localhost"):
        await a.update_roster(jid)
        await expect_push(a, jid, "none")
    iq = a.Iq(stype="get")
    iq.enable("roster")
    result = await iq.send(timeout=TIMEOUT)
    old_ver = result.xml.find(f"{{{NS_ROSTER}}}query").get("ver")
    await a.update_roster("bob@localhost", name="Robert", groups=["Friends"])
    await expect_push(a, "bob@localhost", "none")
    await a.update_roster("x1@localhost", name="gone soon")
    await expect_push(a, "x1@localhost", "none")
    await a.del_roster_item("x1@localhost")
    await expect_push(a, "x1@localhost", "remove")
    iq = a.Iq(stype="get")
    iq.enable("roster")
    iq["roster"]["ver"] = old_ver
    result = await iq.send(timeout=TIMEOUT)
    assert result.xml.find(f"{{{NS_ROSTER}}}query") is None, f"expected an empty result: {result}"
    first = await expect_push(a, "bob@localhost", "none")
    second = await expect_push(a, "x1@localhost", "remove")
    assert int(old_ver) < int(first[4]) < int(second[4]), (old_ver, first, second)
    await asyncio.sleep(0.3)
    assert a.pushes.empty(), f"an extra push: {a.pushes.get_nowait()}"
    print("older version: empty result and interim pushes")
    # Duplicate groups are refused (§2.3.3).
    try:
        await a.update_roster("carol@localhost", groups=["X", "X"])
        raise AssertionError("duplicate group accepted")
    except IqError as error:
        assert error.condition == "bad-request", error.condition
    # Another user's roster is forbidden (§2.1.5? §2.3.3).
    iq = a.Iq(stype="get", sto="bob@localhost")
    iq.enable("roster")
    try:
        await iq.send(timeout=TIMEOUT)
        raise AssertionError("read someone else's roster")
    except IqError as error:
        assert error.condition == "forbidden", error.condition
    print("roster errors ok")
    a.disconnect()
    await asyncio.sleep(0.2)


async def offline():
    """XEP-0160 + XEP-0203: stored while offline, delivered with a delay."""
    b = make_client("bob")
    await online(b)
    token = uuid.uuid4().hex
    b.send_message(mto="alice@localhost", mbody=f"while you were out {token}", mtype="chat")
    b.send_message(mto="alice@localhost/gone", mbody=f"second {token}", mtype="normal")
    await asyncio.sleep(0.5)
    a = make_client("alice")
    await asyncio.wait_for(a.ready, TIMEOUT)
    for expected in (f"while you were out {token}", f"second {token}"):
        msg = await asyncio.wait_for(a.messages.get(), TIMEOUT)
        assert msg["body"] == expected, msg
        delay = msg.xml.find(f"{{{NS_DELAY}}}delay")
        assert delay is not None and delay.get("stamp", "").endswith("Z"), msg
        assert msg["from"].bare == "bob@localhost", msg["from"]
    print("offline messages delivered with delay stamps")
    # Delivered once only.
    a.disconnect()
    await asyncio.sleep(0.3)
    a2 = make_client("alice")
    await asyncio.wait_for(a2.ready, TIMEOUT)
    await asyncio.sleep(0.5)
    assert a2.messages.empty(), "offline messages delivered twice"
    print("offline messages removed after delivery")
    a2.disconnect()
    b.disconnect()
    await asyncio.sleep(0.2)


async def offline_quota():
    """XEP-0160 with a quota of 3: the 4th is refused, never dropped."""
    b = make_client("bob")
    await online(b)
    errors = asyncio.Queue()
    b.add_event_handler("message_error", lambda msg: errors.put_nowait(msg))
    for i in range(4):
        b.send_message(mto="alice@localhost", mbody=f"m{i}", mtype="chat")
    err = await asyncio.wait_for(errors.get(), TIMEOUT)
    assert err["error"]["condition"] == "resource-constraint", err
    print("over quota: resource-constraint")
    a = make_client("alice")
    await asyncio.wait_for(a.ready, TIMEOUT)
    bodies = [(await asyncio.wait_for(a.messages.get(), TIMEOUT))["body"] for _ in range(3)]
    assert bodies == ["m0", "m1", "m2"], bodies
    print("the stored three arrive in order")
    a.disconnect()
    b.disconnect()
    await asyncio.sleep(0.2)


async def mutual(a, b):
    """Sets up a 'both' subscription between two online clients."""
    A, B = a.boundjid.bare, b.boundjid.bare
    a.send_presence(pto=B, ptype="subscribe")
    await expect_presence(b, "subscribe", A)
    b.send_presence(pto=A, ptype="subscribed")
    await expect_presence(a, "subscribed", B)
    await expect_presence(a, "available", B)
    b.send_presence(pto=A, ptype="subscribe")
    await expect_presence(a, "subscribe", B)
    a.send_presence(pto=B, ptype="subscribed")
    await expect_presence(b, "subscribed", A)
    await expect_presence(b, "available", A)
    await asyncio.sleep(0.2)
    drain(a)
    drain(b)


NS_BLOCKING = "urn:xmpp:blocking"


async def blocking_iq(client, name, jids, stype="set"):
    iq = client.Iq(stype=stype)
    el = ET.Element(f"{{{NS_BLOCKING}}}{name}")
    for jid in jids:
        ET.SubElement(el, f"{{{NS_BLOCKING}}}item", {"jid": jid})
    iq.append(el)
    return await iq.send(timeout=TIMEOUT)


async def blocking():
    """XEP-0191: blocked contacts see nothing, reach nobody."""
    a = make_client("alice")
    b = make_client("bob")
    await online(a, b)
    A, B = "alice@localhost", "bob@localhost"
    await mutual(a, b)
    pushes = asyncio.Queue()
    a.register_handler(
        Callback("blocking push", StanzaPath("iq@type=set"), lambda iq: pushes.put_nowait(iq.xml))
    )
    result = await blocking_iq(a, "blocklist", [], stype="get")
    assert result.xml.find(f"{{{NS_BLOCKING}}}blocklist") is not None
    await blocking_iq(a, "block", [B])
    push = await asyncio.wait_for(pushes.get(), TIMEOUT)
    assert push.find(f"{{{NS_BLOCKING}}}block/{{{NS_BLOCKING}}}item").get("jid") == B
    await expect_presence(b, "unavailable", A)
    result = await blocking_iq(a, "blocklist", [], stype="get")
    items = [i.get("jid") for i in result.xml.iter(f"{{{NS_BLOCKING}}}item")]
    assert items == [B], items
    print("blocked: push sent, contact saw unavailable")

    errors = asyncio.Queue()
    b.add_event_handler("message_error", lambda msg: errors.put_nowait(msg))
    a.add_event_handler("message_error", lambda msg: errors.put_nowait(msg))
    b.send_message(mto=A, mbody="can you hear me", mtype="chat")
    err = await asyncio.wait_for(errors.get(), TIMEOUT)
    assert err["error"]["condition"] == "service-unavailable", err
    b.send_presence(pshow="dnd")
    await asyncio.sleep(0.5)
    assert a.messages.empty(), "a blocked message arrived"
    while not a.presences.empty():
        got = a.presences.get_nowait()
        assert not got[1].startswith(B), f"presence from a blocked contact: {got[:2]}"
    print("inbound: message bounced, presence hidden")

    a.send_message(mto=B, mbody="secret", mtype="chat")
    err = await asyncio.wait_for(errors.get(), TIMEOUT)
    assert err["error"]["condition"] == "not-acceptable", err
    assert err.xml.find("{jabber:client}error/{urn:xmpp:blocking:errors}blocked") is not None, err
    await asyncio.sleep(0.3)
    assert b.messages.empty(), "a message to a blocked contact was routed"
    print("outbound: not-acceptable with <blocked/>")

    await blocking_iq(a, "unblock", [])
    push = await asyncio.wait_for(pushes.get(), TIMEOUT)
    assert push.find(f"{{{NS_BLOCKING}}}unblock") is not None
    await expect_presence(b, "available", A)
    token = uuid.uuid4().hex
    b.send_message(mto=A, mbody=token, mtype="chat")
    msg = await asyncio.wait_for(a.messages.get(), TIMEOUT)
    assert msg["body"] == token
    print("unblocked: presence and messages flow again")
    a.disconnect()
    b.disconnect()
    await asyncio.sleep(0.2)


async def last_query(client, to):
    iq = client.Iq(stype="get", sto=to)
    iq.append(ET.Element("{jabber:iq:last}query"))
    result = await iq.send(timeout=TIMEOUT)
    query = result.xml.find("{jabber:iq:last}query")
    return int(query.get("seconds")), (query.text or "")


async def last_activity():
    """XEP-0012 §3: seconds since logout, status, 0 online, forbidden."""
    a = make_client("alice")
    b = make_client("bob")
    await online(a, b)
    await mutual(a, b)
    seconds, _ = await last_query(a, "bob@localhost")
    assert seconds == 0, seconds
    print("online user: 0 seconds")
    b.send_presence(ptype="unavailable", pstatus="Heading Home")
    await asyncio.sleep(0.2)
    b.disconnect()
    await asyncio.sleep(1.5)
    seconds, status = await last_query(a, "bob@localhost")
    assert 1 <= seconds <= 10 and status == "Heading Home", (seconds, status)
    print("offline user: seconds and status")
    c = make_client("carol")
    await online(c)
    try:
        await last_query(c, "bob@localhost")
        raise AssertionError("a non-subscriber saw last activity")
    except IqError as error:
        assert error.condition == "forbidden", error.condition
    print("non-subscriber: forbidden")
    a.disconnect()
    c.disconnect()
    await asyncio.sleep(0.2)


SCENARIOS = {
    "last": last_activity,
    "blocking": blocking,
    "subscription": subscription,
    "presence": presence,
    "rosterver": rosterver,
    "offline": offline,
    "offline-quota": offline_quota,
}

if __name__ == "__main__":
    xmppd_client.run(lambda: SCENARIOS[SCENARIO](), TIMEOUT * 6, print_traceback=True)
