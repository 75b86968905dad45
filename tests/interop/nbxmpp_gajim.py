"""Gajim's protocol library, nbxmpp (Debian's python3-nbxmpp), against
xmppd: the requests Gajim makes after login, through nbxmpp's own
modules. Run with the system Python (nbxmpp needs PyGObject and GLib from
Debian). Exit status 0 on success; each passed step prints a line the
Rust test looks for.

usage: nbxmpp_gajim.py PORT USER PASSWORD
USER@localhost must exist; the server listens on 127.0.0.1:PORT (STARTTLS).
"""

import hashlib
import logging
import os
import sys
import traceback

from gi.repository import GLib

import nbxmpp
from nbxmpp.client import Client
from nbxmpp.const import ConnectionProtocol, ConnectionType
from nbxmpp.modules.user_avatar import Avatar
from nbxmpp.namespaces import Namespace
from nbxmpp.protocol import JID, Iq
from nbxmpp.structs import BookmarkData, OMEMOBundle

PORT, USER, PASSWORD = sys.argv[1:4]
DOMAIN = "localhost"
TIMEOUT_SECONDS = int(os.environ.get("NBXMPP_TIMEOUT", "60"))
if os.environ.get("NBXMPP_DEBUG"):
    logging.basicConfig(level=logging.DEBUG)

loop = GLib.MainLoop()
failure = []


def fail(message):
    failure.append(message)
    loop.quit()


def scenario(client):
    """The steps, as a generator: each yields a Task (or an IQ to send)
    and gets its result back."""
    own = JID.from_string(f"{USER}@{DOMAIN}")

    info = yield client.get_module("Discovery").disco_info(DOMAIN)
    for feature in (Namespace.CARBONS, Namespace.BLOCKING, Namespace.PING):
        assert feature in info.features, f"server disco lacks {feature}: {info.features}"
    print("server disco: carbons, blocking, ping")

    info = yield client.get_module("Discovery").disco_info(own)
    assert any(i.category == "pubsub" and i.type == "pep" for i in info.identities), info.identities
    assert Namespace.PUBSUB_PUBLISH_OPTIONS in info.features, info.features
    print("account disco: PEP with publish-options")

    roster = yield client.get_module("Roster").request_roster()
    assert roster.version is not None, roster
    print(f"roster received (version {roster.version})")

    enable = Iq("set")
    enable.addChild("enable", namespace=Namespace.CARBONS)
    answer = yield enable
    assert answer.getType() == "result", answer
    print("carbons enabled")

    blocked = yield client.get_module("Blocking").request_blocking_list()
    assert blocked == set(), blocked
    print("blocking list received")

    client.send_stanza(nbxmpp.Presence())

    avatar = Avatar()
    image = bytes(range(256)) * 2
    avatar.add_image_source(image, "image/png", 16, 16)
    yield client.get_module("UserAvatar").set_avatar(avatar, public=True)
    metadata = yield client.get_module("UserAvatar").request_avatar_metadata(own)
    assert metadata is not None and metadata.avatar_shas == [hashlib.sha1(image).hexdigest()], metadata
    data = yield client.get_module("UserAvatar").request_avatar_data(hashlib.sha1(image).hexdigest(), own)
    assert data is not None and data.data == image, "avatar data differs"
    print("avatar published and read back (XEP-0084, publish-options)")

    vcard = yield client.get_module("VCardTemp").request_vcard()
    photo, _sha = vcard.get_avatar()
    assert photo == image, "the vCard has no converted avatar"
    print("vCard carries the PEP avatar (XEP-0398)")

    # OMEMO (Gajim's plugin, legacy namespace): the device list and a
    # bundle, each in an open node set up through publish-options.
    omemo = client.get_module("OMEMO")
    yield omemo.set_devicelist([4223, 31415])
    devices = yield omemo.request_devicelist(own)
    assert sorted(devices) == [4223, 31415], devices
    key = bytes([5]) + bytes(range(32))
    bundle = OMEMOBundle(
        spk={"id": "1", "key": key},
        spk_signature=bytes(64),
        ik=key,
        otpks=[{"id": str(n), "key": key} for n in range(1, 4)],
    )
    yield omemo.set_bundle(bundle, 31415)
    fetched = yield omemo.request_bundle(own, 31415)
    assert fetched.ik == key and len(fetched.otpks) == 3, fetched
    print("OMEMO device list and bundle published and read back")

    # XEP-0402 bookmarks with Gajim's node options (whitelist, max items).
    room = JID.from_string("room@conference.example.org")
    client.get_module("NativeBookmarks").store_bookmarks([BookmarkData(jid=room, name="Room", autojoin=True)])
    bookmarks = []
    for _ in range(20):
        wait = Iq("get", to=DOMAIN)
        wait.addChild("ping", namespace=Namespace.PING)
        yield wait
        bookmarks = yield client.get_module("NativeBookmarks").request_bookmarks()
        if bookmarks:
            break
    assert [b.jid for b in bookmarks] == [room] and bookmarks[0].autojoin, bookmarks
    print("bookmarks stored and read back (XEP-0402)")


def drive(client, steps, value=None, error=None):
    try:
        step = steps.throw(error) if error is not None else steps.send(value)
    except StopIteration:
        client.disconnect()
        loop.quit()
        return
    except Exception as exc:  # an assertion in the scenario
        traceback.print_exc()
        fail(f"{type(exc).__name__}: {exc}")
        return
    if isinstance(step, Iq):
        client.send_stanza(step, callback=lambda _client, stanza: drive(client, steps, stanza))
        return

    def done(task):
        try:
            result = task.finish()
        except Exception as exc:
            drive(client, steps, error=exc)
            return
        drive(client, steps, result)

    step.add_done_callback(done, weak=False)


def main():
    client = Client()
    client.set_domain(DOMAIN)
    client.set_username(USER)
    client.set_password(PASSWORD)
    client.set_resource("gajim")
    client.set_custom_host(f"127.0.0.1:{PORT}", ConnectionProtocol.TCP, ConnectionType.START_TLS)
    client.set_ignore_tls_errors(True)
    client.subscribe("connected", lambda _client, _signal: drive(client, scenario(client)))
    client.subscribe("connection-failed", lambda _client, _signal: fail(f"connection failed: {client.get_error()}"))
    client.subscribe("disconnected", lambda _client, _signal: loop.quit())
    GLib.timeout_add_seconds(TIMEOUT_SECONDS, lambda: fail("timed out"))
    client.connect()
    loop.run()
    if failure:
        print(f"FAILED: {failure[0]}", file=sys.stderr)
        sys.exit(1)
    print("done")


if __name__ == "__main__":
    main()
