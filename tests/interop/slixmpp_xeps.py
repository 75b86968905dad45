"""Interop check of the small server XEPs: slixmpp clients query xmppd for
software version (XEP-0092), entity time (XEP-0202), private XML storage
(XEP-0049), vcard-temp (XEP-0054), service discovery with extension forms
(XEP-0030, XEP-0128, XEP-0157) and server uptime (XEP-0012). Exit status 0
on success; the failure reason goes to stderr. Each passed check prints a
line the Rust test looks for.

usage: slixmpp_xeps.py PORT MODE JID_A JID_B PASSWORD
  MODE: full          every check, against a server configured with
                      [modules.settings.contact_addresses] admin/status,
                      private max_bytes = 4096 and vcard max_bytes = 4096
        show-os       only: the version answer includes <os/>
        hide-version  only: version queries are refused and not advertised
"""

import asyncio
import datetime as dt
import sys
import time
import uuid

from slixmpp.xmlstream import ET, ElementBase

import xmppd_client
from xmppd_client import expect_error

PORT, MODE, JID_A, JID_B, PASSWORD = sys.argv[1:6]
TIMEOUT = 20

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DATA = "jabber:x:data"
SERVERINFO = "http://jabber.org/network/serverinfo"


class Prefs(ElementBase):
    """A private XML fragment (XEP-0049) for the roundtrip check."""

    name = "prefs"
    namespace = "urn:xmppd:test:prefs"
    plugin_attrib = "prefs"
    interfaces = {"color"}
    sub_interfaces = interfaces


class Unused(ElementBase):
    """A fragment that is never stored."""

    name = "unused"
    namespace = "urn:xmppd:test:unused"
    plugin_attrib = "unused"
    interfaces = set()


def make_client(jid):
    client = xmppd_client.make_client(jid, PASSWORD, PORT, plugins=(
        "xep_0030", "xep_0004", "xep_0128", "xep_0092", "xep_0202", "xep_0049", "xep_0054", "xep_0012"))
    client.plugin["xep_0049"].register(Prefs)
    client.plugin["xep_0049"].register(Unused)
    return client


def raw_iq(client, iq_type, payload, to=None):
    """An IQ carrying a raw XML payload (for requests the plugins cannot make)."""
    iq = client.make_iq(itype=iq_type, ito=to)
    iq.append(ET.fromstring(payload))
    return iq


async def disco_info(client):
    info = await client.plugin["xep_0030"].get_info(jid=client.boundjid.domain, timeout=TIMEOUT)
    features = set(info["disco_info"]["features"])
    forms = info.xml.findall(f"{{{NS_DISCO_INFO}}}query/{{{NS_DATA}}}x")
    return info, features, forms


async def check_version(a, show_os):
    iq = await a.plugin["xep_0092"].get_version(a.boundjid.domain, timeout=TIMEOUT)
    version = iq["software_version"]
    assert version["name"] == "xmppd", version
    assert version["version"], version
    os_name = version["os"]
    if show_os:
        assert os_name, f"no <os/> in {iq}"
    else:
        assert iq.xml.find("{jabber:iq:version}query/{jabber:iq:version}os") is None, f"<os/> leaked: {iq}"
    print(f"version ok: {version['name']} {version['version']} os={os_name or '-'}")


async def check_time(a):
    # COMPAT: slixmpp 1.17's EntityTime stanza cannot parse any XEP-0082
    # DateTime (it appends a second 'Z' to <utc/>, and parses <tzo/> without
    # a date), so the reply is read from the raw XML.
    iq = await a.plugin["xep_0202"].get_entity_time(a.boundjid.domain, timeout=TIMEOUT)
    tzo = iq.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}tzo")
    utc = iq.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}utc")
    assert tzo in ("Z", "+00:00"), tzo
    assert utc and utc.endswith("Z"), utc
    reported = dt.datetime.fromisoformat(utc)
    skew = abs((reported - dt.datetime.now(dt.timezone.utc)).total_seconds())
    assert skew < 5, f"server time {utc} is {skew:.1f} s off"
    print(f"time ok: {utc} tzo={tzo}")


async def check_private(a, b):
    private_a = a.plugin["xep_0049"]
    token = uuid.uuid4().hex
    prefs = Prefs()
    prefs["color"] = token
    await private_a.store(prefs, timeout=TIMEOUT)
    iq = await private_a.retrieve("prefs", timeout=TIMEOUT)
    assert iq["private"]["prefs"]["color"] == token, iq
    # Nothing stored: the requested element comes back empty.
    iq = await private_a.retrieve("unused", timeout=TIMEOUT)
    unused = iq.xml.find("{jabber:iq:private}query/{urn:xmppd:test:unused}unused")
    assert unused is not None and len(unused) == 0 and not (unused.text or "").strip(), iq
    print("private storage roundtrip ok")

    # Another user's storage: forbidden (XEP-0049 §2.3), reads and writes.
    query = "<query xmlns='jabber:iq:private'><prefs xmlns='urn:xmppd:test:prefs'/></query>"
    await expect_error("forbidden", raw_iq(b, "get", query, to=JID_A).send(timeout=TIMEOUT))
    stolen = "<query xmlns='jabber:iq:private'><prefs xmlns='urn:xmppd:test:prefs'><color>x</color></prefs></query>"
    await expect_error("forbidden", raw_iq(b, "set", stolen, to=JID_A).send(timeout=TIMEOUT))
    iq = await private_a.retrieve("prefs", timeout=TIMEOUT)
    assert iq["private"]["prefs"]["color"] == token, iq
    print("private storage of another user refused")

    # A child without its own namespace is in jabber:iq:private: refused.
    await expect_error("not-acceptable", raw_iq(a, "get", "<query xmlns='jabber:iq:private'><prefs/></query>").send(
        timeout=TIMEOUT))
    # Over the configured quota (4096 bytes).
    big = Prefs()
    big["color"] = "x" * 5000
    await expect_error("not-acceptable", private_a.store(big, timeout=TIMEOUT))
    iq = await private_a.retrieve("prefs", timeout=TIMEOUT)
    assert iq["private"]["prefs"]["color"] == token, iq
    print("private storage limits ok")


async def own_vcard(client):
    iq = client.make_iq_get()
    iq.enable("vcard_temp")
    return await iq.send(timeout=TIMEOUT)


async def check_vcard(a, b):
    vcard_a = a.plugin["xep_0054"]
    vcard_b = b.plugin["xep_0054"]
    # No vCard yet: one's own is empty (XEP-0054 §3.1), another's is
    # service-unavailable (§3.3).
    iq = await own_vcard(b)
    empty = iq.xml.find("{vcard-temp}vCard")
    assert empty is not None and len(empty) == 0, iq
    await expect_error("service-unavailable", vcard_a.get_vcard(JID_B, timeout=TIMEOUT))

    token = uuid.uuid4().hex
    card = vcard_a.make_vcard()
    card["FN"] = f"Alice {token}"
    card["NICKNAME"] = "alice"
    await vcard_a.publish_vcard(card, timeout=TIMEOUT)
    iq = await vcard_b.get_vcard(JID_A, timeout=TIMEOUT)
    assert iq["vcard_temp"]["FN"] == f"Alice {token}", iq
    assert iq.xml.findtext("{vcard-temp}vCard/{vcard-temp}NICKNAME") == "alice", iq
    iq = await own_vcard(a)
    assert iq["vcard_temp"]["FN"] == f"Alice {token}", iq
    print("vcard set by alice, read by bob ok")

    # Only the owner may set it (XEP-0054 §3.2).
    forged = vcard_b.make_vcard()
    forged["FN"] = "Mallory"
    await expect_error("forbidden", vcard_b.publish_vcard(forged, jid=JID_A, timeout=TIMEOUT))
    # Over the configured size limit (4096 bytes).
    huge = vcard_a.make_vcard()
    huge["FN"] = "Alice"
    huge["DESC"] = "x" * 5000
    await expect_error("not-acceptable", vcard_a.publish_vcard(huge, timeout=TIMEOUT))
    iq = await vcard_b.get_vcard(JID_A, timeout=TIMEOUT)
    assert iq["vcard_temp"]["FN"] == f"Alice {token}", iq
    print("vcard refusals ok")


async def check_disco(a):
    info, features, forms = await disco_info(a)
    for feature in (NS_DISCO_INFO, "urn:xmpp:ping", "jabber:iq:version", "urn:xmpp:time", "vcard-temp",
                    "jabber:iq:last"):
        assert feature in features, (feature, sorted(features))
    # XEP-0157 via slixmpp's XEP-0128 support: the first form of the reply.
    form = info["disco_info"]["form"]
    values = form.get_values()
    # slixmpp gives list values for fields it did not see declared.
    assert values.get("FORM_TYPE") in (SERVERINFO, [SERVERINFO]), values
    assert values.get("admin-addresses") == ["xmpp:admin@localhost", "mailto:admin@example.org"], values
    assert len(forms) == 1, f"expected one extension form, got {len(forms)}"
    assert form["type"] == "result", form
    fields = {}
    for field in forms[0].findall(f"{{{NS_DATA}}}field"):
        fields[field.get("var")] = [value.text for value in field.findall(f"{{{NS_DATA}}}value")]
    assert fields == {
        "FORM_TYPE": [SERVERINFO],
        "admin-addresses": ["xmpp:admin@localhost", "mailto:admin@example.org"],
        "status-addresses": ["https://status.example.org"],
    }, fields
    print("disco features and contact addresses ok")


async def check_last(a):
    last = a.plugin["xep_0012"]
    first = (await last.get_last_activity(a.boundjid.domain, timeout=TIMEOUT))["last_activity"]
    assert 0 <= first["seconds"] < 600, first
    assert not (first.xml.text or "").strip(), first
    started = time.monotonic()
    await asyncio.sleep(1.2)
    second = (await last.get_last_activity(a.boundjid.domain, timeout=TIMEOUT))["last_activity"]
    elapsed = time.monotonic() - started
    # Whole seconds of a running clock: at least one more, at most the
    # elapsed time (plus rounding) more.
    grown = second["seconds"] - first["seconds"]
    assert 1 <= grown <= elapsed + 1, (first["seconds"], second["seconds"], elapsed)
    print(f"server uptime ok ({second['seconds']} s)")


async def main():
    a = make_client(JID_A)
    clients = [a]
    if MODE == "full":
        b = make_client(JID_B)
        clients.append(b)
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), TIMEOUT)

    if MODE == "full":
        await check_version(a, show_os=False)
        await check_time(a)
        await check_private(a, b)
        await check_vcard(a, b)
        await check_disco(a)
        await check_last(a)
    elif MODE == "show-os":
        await check_version(a, show_os=True)
    elif MODE == "hide-version":
        await expect_error("service-unavailable", a.plugin["xep_0092"].get_version(a.boundjid.domain,
                                                                                   timeout=TIMEOUT))
        _, features, forms = await disco_info(a)
        assert "jabber:iq:version" not in features, sorted(features)
        assert "urn:xmpp:time" in features, sorted(features)
        # No contact addresses configured: no extension form.
        assert not forms, forms
        print("version hidden ok")
    else:
        raise AssertionError(f"unknown mode {MODE}")

    for client in clients:
        client.disconnect()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    xmppd_client.run(main, TIMEOUT * 3)
