"""Interop check of the personal eventing service (XEP-0163 over XEP-0060)
against xmppd, driven by real slixmpp clients with their own XEP-0115 caps
and XEP-0163 interests. Exit status 0 on success; each passed step prints a
line the Rust test looks for.

usage: slixmpp_pep.py PORT SCENARIO PASSWORD
  SCENARIO: pep | avatar
Accounts alice, bob and carol @localhost must exist.
"""

import asyncio
import base64
import hashlib
import sys

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form
from slixmpp.xmlstream import ET

import xmppd_client

PORT, SCENARIO, PASSWORD = sys.argv[1:4]
TIMEOUT = 15
NS_NICK = "http://jabber.org/protocol/nick"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_ERRORS = "http://jabber.org/protocol/pubsub#errors"
OPEN_NODE = "urn:xmpp:test:open"
PRIVATE_NODE = "urn:xmpp:test:private"
PLUGINS = ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163")


def make_client(user, resource="test", interests=()):
    async def on_ready(client):
        for namespace in interests:
            client["xep_0163"].add_interest(namespace)
        await client.get_roster()
        client.send_presence()

    client = xmppd_client.make_client(f"{user}@localhost/{resource}", PASSWORD, PORT, plugins=PLUGINS, on_ready=on_ready)
    client.roster.auto_authorize = True
    client.roster.auto_subscribe = False
    client.events = asyncio.Queue()
    for kind in ("publish", "retract", "delete", "purge"):
        client.add_event_handler(f"pubsub_{kind}", lambda msg, kind=kind: client.events.put_nowait((kind, msg)))
    return client


async def online(*clients):
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), TIMEOUT)
    await asyncio.sleep(0.5)


async def expect_event(client, kind, node, what):
    while True:
        got_kind, msg = await asyncio.wait_for(client.events.get(), TIMEOUT)
        event = msg["pubsub_event"]
        got_node = event["items"]["node"] if kind in ("publish", "retract") else event[kind]["node"]
        if got_kind == kind and got_node == node:
            assert msg["from"].bare == "alice@localhost", f"{what}: from {msg['from']}"
            return msg


async def expect_no_event(client, what, delay=0.7):
    await asyncio.sleep(delay)
    assert client.events.empty(), f"{client.boundjid}: unexpected event ({what}): {client.events.get_nowait()[1]}"


def nick_payload(text):
    nick = ET.Element(f"{{{NS_NICK}}}nick")
    nick.text = text
    return nick


def test_payload(text):
    el = ET.Element("{urn:xmpp:test}data")
    el.text = text
    return el


def options(**fields):
    form = Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden", value=f"{NS_PUBSUB}#publish-options")
    for var, value in fields.items():
        form.add_field(var=f"pubsub#{var}", value=value)
    return form


async def wait_subscription(client, jid, wanted):
    for _ in range(100):
        if client.client_roster[jid]["subscription"] == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{client.boundjid}: subscription to {jid} is {client.client_roster[jid]['subscription']}, wanted {wanted}")


async def mutual(a, b):
    A, B = a.boundjid.bare, b.boundjid.bare
    # auto_authorize answers each request with subscribed.
    a.send_presence(pto=B, ptype="subscribe")
    await wait_subscription(a, B, "to")
    b.send_presence(pto=A, ptype="subscribe")
    await wait_subscription(b, A, "both")
    await wait_subscription(a, B, "both")


async def expect_iq_error(condition, application, awaitable):
    try:
        result = await awaitable
    except IqError as error:
        assert error.condition == condition, f"expected {condition}, got {error.condition}: {error.iq}"
        if application is not None:
            found = error.iq.xml.find(f".//{{{NS_ERRORS}}}{application}")
            assert found is not None, f"expected <{application}/>: {error.iq}"
        return
    raise AssertionError(f"expected {condition}, got a result: {result}")


def item_texts(iq, tag):
    return [el.text for el in iq.xml.iter(tag)]


async def pep():
    alice = make_client("alice", interests=(NS_NICK,))
    bob = make_client("bob", interests=(NS_NICK, OPEN_NODE))
    carol = make_client("carol", interests=(NS_NICK,))
    await online(alice, bob, carol)
    await mutual(alice, bob)
    await asyncio.sleep(0.5)

    info = await alice["xep_0030"].get_info(jid="alice@localhost", timeout=TIMEOUT)
    identities = info["disco_info"]["identities"]
    features = info["disco_info"]["features"]
    assert any(i[0] == "pubsub" and i[1] == "pep" for i in identities), identities
    assert f"{NS_PUBSUB}#publish-options" in features, features
    print("disco: pep identity and publish-options")

    await alice["xep_0060"].publish("alice@localhost", NS_NICK, id="current", payload=nick_payload("Alice"), timeout=TIMEOUT)
    msg = await expect_event(bob, "publish", NS_NICK, "bob notified")
    assert msg.xml.find(f".//{{{NS_NICK}}}nick").text == "Alice"
    await expect_event(alice, "publish", NS_NICK, "own resource notified")
    await expect_no_event(carol, "carol has no subscription")
    print("publish: contact and own resource notified, stranger not")

    items = await bob["xep_0060"].get_items("alice@localhost", NS_NICK, timeout=TIMEOUT)
    assert item_texts(items, f"{{{NS_NICK}}}nick") == ["Alice"], items
    await expect_iq_error("not-authorized", "presence-subscription-required", carol["xep_0060"].get_items("alice@localhost", NS_NICK, timeout=TIMEOUT))
    await expect_iq_error("forbidden", None, bob["xep_0060"].publish("alice@localhost", NS_NICK, payload=nick_payload("Mallory"), timeout=TIMEOUT))
    print("retrieve: subscriber reads, stranger refused, only the owner publishes")

    # A second resource of bob gets the last item when it comes online.
    bob2 = make_client("bob", "second", interests=(NS_NICK,))
    await asyncio.wait_for(bob2.ready, TIMEOUT)
    msg = await expect_event(bob2, "publish", NS_NICK, "last item on presence")
    assert msg.xml.find(f".//{{{NS_NICK}}}nick").text == "Alice"
    print("last published item sent on presence")

    # XEP-0222-style open node via publish-options; precondition checks.
    await alice["xep_0060"].publish("alice@localhost", OPEN_NODE, id="one", payload=test_payload("1"),
                                    options=options(access_model="open", max_items="max"), timeout=TIMEOUT)
    items = await carol["xep_0060"].get_items("alice@localhost", OPEN_NODE, timeout=TIMEOUT)
    assert item_texts(items, "{urn:xmpp:test}data") == ["1"], items
    await expect_event(bob, "publish", OPEN_NODE, "open node notified")
    await alice["xep_0060"].publish("alice@localhost", OPEN_NODE, id="two", payload=test_payload("2"),
                                    options=options(access_model="open", max_items="max"), timeout=TIMEOUT)
    await expect_iq_error("conflict", "precondition-not-met", alice["xep_0060"].publish(
        "alice@localhost", OPEN_NODE, payload=test_payload("3"), options=options(access_model="whitelist"), timeout=TIMEOUT))
    items = await carol["xep_0060"].get_items("alice@localhost", OPEN_NODE, timeout=TIMEOUT)
    assert item_texts(items, "{urn:xmpp:test}data") == ["1", "2"], items
    items = await carol["xep_0060"].get_items("alice@localhost", OPEN_NODE, max_items=1, timeout=TIMEOUT)
    assert item_texts(items, "{urn:xmpp:test}data") == ["2"], items
    print("publish-options: open node for strangers, precondition-not-met on mismatch")

    # XEP-0223: private storage.
    await alice["xep_0060"].publish("alice@localhost", PRIVATE_NODE, id="current", payload=test_payload("secret"),
                                    options=options(access_model="whitelist", persist_items="true"), timeout=TIMEOUT)
    items = await alice["xep_0060"].get_items("alice@localhost", PRIVATE_NODE, timeout=TIMEOUT)
    assert item_texts(items, "{urn:xmpp:test}data") == ["secret"], items
    await expect_iq_error("not-allowed", "closed-node", bob["xep_0060"].get_items("alice@localhost", PRIVATE_NODE, timeout=TIMEOUT))
    print("whitelist node: owner only")

    disco = await carol["xep_0030"].get_items(jid="alice@localhost", timeout=TIMEOUT)
    nodes = sorted(item[1] for item in disco["disco_items"]["items"])
    assert nodes == [OPEN_NODE], nodes
    disco = await alice["xep_0030"].get_items(jid="alice@localhost", timeout=TIMEOUT)
    nodes = sorted(item[1] for item in disco["disco_items"]["items"])
    assert nodes == sorted([NS_NICK, OPEN_NODE, PRIVATE_NODE]), nodes
    print("disco#items: nodes as each requester may see them")

    form = await alice["xep_0060"].get_node_config("alice@localhost", OPEN_NODE, timeout=TIMEOUT)
    values = form["pubsub_owner"]["configure"]["form"].get_values()
    assert values["pubsub#access_model"] == "open" and values["pubsub#max_items"] == "max", values
    config = Form()
    config["type"] = "submit"
    config.add_field(var="FORM_TYPE", ftype="hidden", value=f"{NS_PUBSUB}#node_config")
    config.add_field(var="pubsub#max_items", value="1")
    await alice["xep_0060"].set_node_config("alice@localhost", OPEN_NODE, config, timeout=TIMEOUT)
    items = await carol["xep_0060"].get_items("alice@localhost", OPEN_NODE, timeout=TIMEOUT)
    assert item_texts(items, "{urn:xmpp:test}data") == ["2"], items
    print("configure: form read and max_items lowered")

    # XEP-0163 §4.3.5: a new subscriber gets the last items at once.
    while not carol.events.empty():
        carol.events.get_nowait()
    carol.send_presence(pto="alice@localhost", ptype="subscribe")
    msg = await expect_event(carol, "publish", NS_NICK, "new subscriber gets the last item")
    assert msg.xml.find(f".//{{{NS_NICK}}}nick").text == "Alice"
    print("new subscriber gets the last item")

    await alice["xep_0060"].retract("alice@localhost", OPEN_NODE, "two", notify=True, timeout=TIMEOUT)
    await expect_event(bob, "retract", OPEN_NODE, "retract notified")
    await expect_iq_error("item-not-found", None, alice["xep_0060"].retract("alice@localhost", OPEN_NODE, "two", timeout=TIMEOUT))
    await alice["xep_0060"].delete_node("alice@localhost", OPEN_NODE, timeout=TIMEOUT)
    await expect_event(bob, "delete", OPEN_NODE, "delete notified")
    await expect_iq_error("item-not-found", None, carol["xep_0060"].get_items("alice@localhost", OPEN_NODE, timeout=TIMEOUT))
    print("retract and delete: notified, then gone")

    for c in (alice, bob, bob2, carol):
        c.disconnect()
    await asyncio.sleep(0.3)


NS_AVATAR_DATA = "urn:xmpp:avatar:data"
NS_AVATAR_METADATA = "urn:xmpp:avatar:metadata"
NS_VCARD_UPDATE = "vcard-temp:x:update"


async def expect_photo_presence(client, from_bare, photo_hash):
    while True:
        presence = await asyncio.wait_for(client.presences.get(), TIMEOUT)
        if presence["from"].bare != from_bare or presence["type"] not in ("available", ""):
            continue
        photo = presence.xml.find(f"{{{NS_VCARD_UPDATE}}}x/{{{NS_VCARD_UPDATE}}}photo")
        if photo is not None and photo.text == photo_hash:
            return


async def avatar():
    """XEP-0398: PEP avatar → vCard, vCard → PEP avatar, hash in presence."""
    # No xep_0153 plugin: it would put its own (possibly empty) photo in
    # presence, which the server must leave alone.
    plugins = ("xep_0054", "xep_0084")
    alice = make_client("alice", interests=(NS_AVATAR_METADATA,))
    bob = make_client("bob", interests=(NS_AVATAR_METADATA,))
    for client in (alice, bob):
        for plugin in plugins:
            client.register_plugin(plugin)
        client.presences = asyncio.Queue()
        client.add_event_handler("presence", lambda p, c=client: c.presences.put_nowait(p))
    await online(alice, bob)
    await mutual(alice, bob)
    await asyncio.sleep(0.3)

    info = await alice["xep_0030"].get_info(jid="alice@localhost", timeout=TIMEOUT)
    assert "urn:xmpp:pep-vcard-conversion:0" in info["disco_info"]["features"], info
    print("disco: pep-vcard-conversion announced")

    # A XEP-0084 upload as modern clients do it: data, then metadata, open.
    image = bytes(range(256)) * 4
    image_id = hashlib.sha1(image).hexdigest()
    await alice["xep_0084"].publish_avatar(image, options=options(access_model="open"), timeout=TIMEOUT)
    await alice["xep_0084"].publish_avatar_metadata({"id": image_id, "type": "image/png", "bytes": len(image)},
                                                    options=options(access_model="open"), timeout=TIMEOUT)
    msg = await expect_event(bob, "publish", NS_AVATAR_METADATA, "metadata notified")
    assert msg.xml.find(f".//{{{NS_AVATAR_METADATA}}}info").get("id") == image_id
    vcard = await bob["xep_0054"].get_vcard("alice@localhost", timeout=TIMEOUT)
    photo = vcard["vcard_temp"]["PHOTO"]
    assert photo["BINVAL"] == image, "vCard photo differs from the PEP avatar"
    assert photo["TYPE"] == "image/png", photo["TYPE"]
    print("PEP avatar copied into the vCard")

    while not bob.presences.empty():
        bob.presences.get_nowait()
    alice.send_presence(pstatus="back")
    await expect_photo_presence(bob, "alice@localhost", image_id)
    print("presence carries the avatar hash")

    # A vCard upload as older clients do it: the avatar appears in PEP.
    second = b"second avatar" * 20
    second_id = hashlib.sha1(second).hexdigest()
    card = bob["xep_0054"].make_vcard()
    card["FN"] = "Alice"
    card["PHOTO"]["TYPE"] = "image/jpeg"
    card["PHOTO"]["BINVAL"] = second
    await alice["xep_0054"].publish_vcard(card, timeout=TIMEOUT)
    msg = await expect_event(bob, "publish", NS_AVATAR_METADATA, "vCard photo published to PEP")
    info = msg.xml.find(f".//{{{NS_AVATAR_METADATA}}}info")
    assert (info.get("id"), info.get("type"), info.get("bytes")) == (second_id, "image/jpeg", str(len(second))), info.attrib
    items = await bob["xep_0060"].get_items("alice@localhost", NS_AVATAR_DATA, item_ids=[second_id], timeout=TIMEOUT)
    data = items.xml.find(f".//{{{NS_AVATAR_DATA}}}data")
    assert base64.b64decode(data.text) == second
    alice.send_presence(pstatus="again")
    await expect_photo_presence(bob, "alice@localhost", second_id)
    print("vCard avatar published to PEP and announced in presence")

    # Deleting the avatar from PEP takes it out of the vCard as well.
    await alice["xep_0060"].delete_node("alice@localhost", NS_AVATAR_METADATA, timeout=TIMEOUT)
    vcard = await bob["xep_0054"].get_vcard("alice@localhost", timeout=TIMEOUT)
    assert not vcard["vcard_temp"]["PHOTO"]["BINVAL"], "the vCard photo stayed"
    assert vcard["vcard_temp"]["FN"] == "Alice", vcard
    print("avatar withdrawn from PEP and vCard")

    for c in (alice, bob):
        c.disconnect()
    await asyncio.sleep(0.3)


SCENARIOS = {"pep": pep, "avatar": avatar}

if __name__ == "__main__":
    xmppd_client.run(lambda: SCENARIOS[SCENARIO](), TIMEOUT * 8, print_traceback=True)
