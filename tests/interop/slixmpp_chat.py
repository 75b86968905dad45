"""Interop check: two slixmpp clients log in to xmppd, exchange messages
and IQs. Exit status 0 on success; the failure reason goes to stderr.

usage: slixmpp_chat.py PORT MODE MECHANISM JID_A JID_B PASSWORD
  MODE: starttls | direct
  MECHANISM: a SASL mechanism name, e.g. SCRAM-SHA-256, SCRAM-SHA-1-PLUS
"""

import asyncio
import hashlib
import ssl
import sys
import uuid

import slixmpp
from slixmpp.features.feature_mechanisms.mechanisms import FeatureMechanisms
from slixmpp.util.sasl import mechanisms as sasl_mechanisms

PORT, MODE, MECHANISM, JID_A, JID_B, PASSWORD = sys.argv[1:7]
TIMEOUT = 20

# COMPAT: Python's ssl module offers only tls-unique, which TLS 1.3 lacks
# (RFC 9266), so slixmpp cannot do SCRAM-*-PLUS on TLS 1.3 by itself. Feed
# it tls-server-end-point data (RFC 5929 §4.1: SHA-256 of the server
# certificate) instead; xmppd offers that type too (XEP-0440).
_original_credentials = FeatureMechanisms._default_credentials


def _credentials_with_end_point(self, required, optional):
    result = _original_credentials(self, required, optional)
    sock = self.xmpp.socket
    if "channel_binding" in required.union(optional) and isinstance(sock, (ssl.SSLSocket, ssl.SSLObject)):
        result["channel_binding"] = hashlib.sha256(sock.getpeercert(True)).digest()
    return result


_original_first = sasl_mechanisms.SCRAM.process_1


def _first_with_end_point(self, challenge):
    message = _original_first(self, challenge)
    if self.use_channel_binding and self.gs2_header.startswith(b"p="):
        bare_header = self.gs2_header.split(b",", 1)[1]
        self.gs2_header = b"p=tls-server-end-point," + bare_header
        self.client_first_message = self.gs2_header + self.client_first_message_bare
        return self.client_first_message
    return message


FeatureMechanisms._default_credentials = _credentials_with_end_point
sasl_mechanisms.SCRAM.process_1 = _first_with_end_point


def make_client(jid):
    client = slixmpp.ClientXMPP(jid, PASSWORD, sasl_mech=MECHANISM)
    client.enable_direct_tls = MODE == "direct"
    client.enable_starttls = MODE == "starttls"
    client.enable_plaintext = False
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    client.register_plugin("xep_0030")
    client.register_plugin("xep_0199")
    client.ready = asyncio.get_event_loop().create_future()
    client.inbox = asyncio.Queue()

    async def session_start(_event):
        client.send_presence()
        if not client.ready.done():
            client.ready.set_result(True)

    def failed(event):
        if not client.ready.done():
            client.ready.set_exception(RuntimeError(f"{jid}: authentication failed: {event}"))

    client.add_event_handler("session_start", session_start)
    client.add_event_handler("failed_all_auth", failed)
    client.add_event_handler("message", lambda msg: client.inbox.put_nowait(msg))
    client.connect("127.0.0.1", int(PORT))
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

    # IQ between clients: A pings B's full JID; B's XEP-0199 plugin answers.
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
    try:
        asyncio.run(asyncio.wait_for(main(), TIMEOUT * 3))
    except Exception as error:  # noqa: BLE001 - report any failure
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
