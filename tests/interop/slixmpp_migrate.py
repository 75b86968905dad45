"""Migration round trips seen by a real client (slixmpp): data made on
another server through the protocol, then checked on xmppd after
`xmppd import` by logging in with the old password.

usage:
  slixmpp_migrate.py prosody-setup PORT USER PASSWORD CONTACT CONTACT_PASSWORD NAME GROUP FN NICK
      On a server at 127.0.0.1:PORT (STARTTLS, SCRAM-SHA-256), USER and
      CONTACT (both @localhost) log in; USER adds CONTACT to the roster
      with NAME and GROUP (RFC 6121 §2.3), the two subscribe to each other
      (§3, both ways: subscription "both"), USER sets the vCard FN and
      PHOTO (XEP-0054, XEP-0153) and publishes the nick NICK (XEP-0172 over XEP-0163,
      item id "current").
  slixmpp_migrate.py check PORT USER PASSWORD EXPECTED...
      USER@localhost logs in to 127.0.0.1:PORT with PASSWORD (SCRAM-SHA-256)
      and checks each EXPECTED:
        roster=JID|SUBSCRIPTION|NAME|GROUP,GROUP  a roster item with exactly
                                                  these (empty NAME: none)
        roster-count=N                            N roster items in all
        vcard-fn=TEXT                             the own vCard's FN
        vcard-photo=setup                         the own vCard's PHOTO is the
                                                  one prosody-setup set
        nick=TEXT                                 the own PEP nick item
  slixmpp_migrate.py refused PORT USER PASSWORD
      The login of USER@localhost with PASSWORD is refused.

Exit status 0 on success; each passed step prints a line starting with
"ok:".
"""

import asyncio
import sys

from slixmpp import JID
from slixmpp.plugins.xep_0054 import VCardTemp
from slixmpp.xmlstream import ET

import xmppd_client

TIMEOUT = 20
NS_NICK = "http://jabber.org/protocol/nick"
# The avatar prosody-setup puts into the vCard (any bytes do: no server
# decodes the image).
PHOTO = bytes(range(256)) * 3
PLUGINS = ("xep_0030", "xep_0004", "xep_0054", "xep_0060", "xep_0163")


def make_client(port, user, password, *, presence=True, **kwargs):
    """A client of USER@localhost; with `presence`, it gets the roster and
    sends its initial presence once logged in."""
    async def on_ready(client):
        if presence:
            await client.get_roster(timeout=TIMEOUT)
            client.send_presence()

    return xmppd_client.make_client(f"{user}@localhost/migrate", password, port, plugins=PLUGINS,
                                    on_ready=on_ready, **kwargs)


async def wait_for(what, predicate):
    """Polls `predicate()` until it is true, for at most TIMEOUT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def nick_payload(text):
    nick = ET.Element(f"{{{NS_NICK}}}nick")
    nick.text = text
    return nick


async def prosody_setup(port, user, password, contact, contact_password, name, group, full_name, nick):
    owner = make_client(port, user, password)
    other = make_client(port, contact, contact_password)
    for client in (owner, other):
        # Subscription requests are approved, and answered with one of
        # their own (RFC 6121 §3.1.3, §3.1.5).
        client.roster.auto_authorize = True
        client.roster.auto_subscribe = True
    await asyncio.wait_for(asyncio.gather(owner.ready, other.ready), TIMEOUT)
    print("ok: both logged in")

    owner_jid, contact_jid = f"{user}@localhost", f"{contact}@localhost"
    await owner.update_roster(contact_jid, name=name, groups=[group], timeout=TIMEOUT)
    owner.send_presence(pto=contact_jid, ptype="subscribe")

    def both(client, jid):
        return client.client_roster.has_jid(jid) and client.client_roster[jid]["subscription"] == "both"

    await wait_for("subscription both", lambda: both(owner, contact_jid) and both(other, owner_jid))
    item = owner.client_roster[contact_jid]
    assert item["name"] == name and list(item["groups"]) == [group], f"roster item: {item['name']} {item['groups']}"
    print("ok: subscribed both ways, roster item with name and group")

    vcard = VCardTemp()
    vcard["FN"] = full_name
    vcard["PHOTO"]["TYPE"] = "image/png"
    vcard["PHOTO"]["BINVAL"] = PHOTO
    await owner["xep_0054"].publish_vcard(vcard, timeout=TIMEOUT)
    got = await owner["xep_0054"].get_vcard(owner_jid, local=False, timeout=TIMEOUT)
    assert got["vcard_temp"]["FN"] == full_name, f"vCard: {got}"
    print("ok: vCard set")

    await owner["xep_0060"].publish(owner_jid, NS_NICK, id="current", payload=nick_payload(nick), timeout=TIMEOUT)
    print("ok: nick published")

    for client in (owner, other):
        client.disconnect()
    await asyncio.sleep(0.5)


async def check(port, user, password, expected):
    # No presence: the probes it sends could change what is checked (a
    # contact's server answers a probe without a subscription with
    # "unsubscribed", RFC 6121 §4.3.2).
    client = make_client(port, user, password, presence=False)
    await asyncio.wait_for(client.ready, TIMEOUT)
    print(f"ok: {user} logged in")
    jid = f"{user}@localhost"
    # A roster get without a version: the whole roster (RFC 6121 §2.1.3),
    # not the "no changes" answer to the version slixmpp keeps.
    query = client.make_iq_get()
    query.enable("roster")
    roster = await query.send(timeout=TIMEOUT)
    items = {JID(jid).bare: item for jid, item in roster["roster"]["items"].items()}
    for expectation in expected:
        kind, _, value = expectation.partition("=")
        if kind == "roster":
            contact, subscription, name, groups = value.split("|")
            item = items.get(contact)
            assert item is not None, f"no roster item {contact}: {sorted(items)}"
            got = (item["subscription"], item["name"], sorted(item["groups"]))
            want = (subscription, name, sorted(filter(None, groups.split(","))))
            assert got == want, f"roster item {contact}: {got}, expected {want}"
        elif kind == "roster-count":
            assert len(items) == int(value), f"{len(items)} roster items, expected {value}: {sorted(items)}"
        elif kind == "vcard-fn":
            got = await client["xep_0054"].get_vcard(jid, local=False, timeout=TIMEOUT)
            assert got["vcard_temp"]["FN"] == value, f"vCard: {got}"
        elif kind == "vcard-photo":
            got = await client["xep_0054"].get_vcard(jid, local=False, timeout=TIMEOUT)
            photo = got["vcard_temp"]["PHOTO"]
            assert value == "setup" and photo["BINVAL"] == PHOTO, f"vCard photo: {len(photo['BINVAL'] or b'')} bytes"
            assert photo["TYPE"] == "image/png", photo["TYPE"]
        elif kind == "nick":
            got = await client["xep_0060"].get_items(jid, NS_NICK, timeout=TIMEOUT)
            texts = [item.xml.find(f"{{{NS_NICK}}}nick").text for item in got["pubsub"]["items"]]
            assert texts == [value], f"nick items: {got}"
        else:
            raise ValueError(f"unknown expectation {expectation!r}")
        print(f"ok: {expectation}")
    client.disconnect()
    await asyncio.sleep(0.2)


async def refused(port, user, password):
    client = make_client(port, user, password, presence=False, raise_on_failure=False)
    ok = await asyncio.wait_for(client.ready, TIMEOUT)
    assert ok is False, f"{user} logged in with a wrong password"
    client.disconnect()
    print(f"ok: {user} refused")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "prosody-setup":
        return prosody_setup(*args)
    if command == "check":
        return check(args[0], args[1], args[2], args[3:])
    if command == "refused":
        return refused(*args)
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    xmppd_client.run(main, TIMEOUT * 3, print_traceback=True)
