"""slixmpp client set-up shared by the interop scripts in this directory.

The scripts import it as a sibling module: Python puts a script's own
directory first on sys.path, also when the script is run by an absolute
path (as the Rust tests do).
"""

import asyncio
import hashlib
import inspect
import ssl
import sys
import traceback

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.features.feature_mechanisms.mechanisms import FeatureMechanisms
from slixmpp.util.sasl import mechanisms as sasl_mechanisms


def make_client(jid, password, port, *, mechanism="SCRAM-SHA-256", direct_tls=False, plugins=(), on_ready=None,
                raise_on_failure=True):
    """A slixmpp client for `jid`, connecting to xmppd on 127.0.0.1:`port`.

    TLS is STARTTLS, or direct TLS with `direct_tls`; never plaintext. The
    server's certificate is not verified (the tests' servers make their
    own). `plugins` are registered before connecting.

    `client.ready` is a future: after session_start it becomes True, once
    `on_ready(client)` (awaited if it returns an awaitable) has run. When
    authentication fails it gets a RuntimeError, or becomes False if
    `raise_on_failure` is false.

    Handlers the caller adds right after this returns are in place before
    anything is received: connecting only starts once the caller awaits.
    """
    client = slixmpp.ClientXMPP(jid, password, sasl_mech=mechanism)
    client.enable_direct_tls = direct_tls
    client.enable_starttls = not direct_tls
    client.enable_plaintext = False
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    for plugin in plugins:
        client.register_plugin(plugin)
    client.ready = asyncio.get_event_loop().create_future()

    async def session_start(_event):
        if on_ready is not None:
            result = on_ready(client)
            if inspect.isawaitable(result):
                await result
        if not client.ready.done():
            client.ready.set_result(True)

    def failed(event):
        if client.ready.done():
            return
        if raise_on_failure:
            client.ready.set_exception(RuntimeError(f"{jid}: authentication failed: {event}"))
        else:
            client.ready.set_result(False)

    client.add_event_handler("session_start", session_start)
    client.add_event_handler("failed_all_auth", failed)
    client.connect("127.0.0.1", int(port))
    return client


async def expect_error(condition, awaitable):
    """Awaits an IQ that must fail with `condition`; returns the IqError."""
    try:
        result = await awaitable
    except IqError as error:
        assert error.condition == condition, f"expected {condition}, got {error.condition}: {error.iq}"
        return error
    raise AssertionError(f"expected {condition}, got a result: {result}")


def run(main, timeout, *, print_traceback=False):
    """Runs the coroutine `main()` for at most `timeout` seconds. Any
    failure ends the process with exit status 1 and `FAILED: …` on stderr
    (after the traceback with `print_traceback`)."""
    try:
        asyncio.run(asyncio.wait_for(main(), timeout))
    except Exception as error:  # noqa: BLE001 - report any failure
        if print_traceback:
            traceback.print_exc()
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


# COMPAT: Python's ssl module offers only tls-unique, which TLS 1.3 lacks
# (RFC 9266), so slixmpp cannot do SCRAM-*-PLUS on TLS 1.3 by itself. Feed
# it tls-server-end-point data (RFC 5929 §4.1: SHA-256 of the server
# certificate) instead; xmppd offers that type too (XEP-0440).
_original_credentials = FeatureMechanisms._default_credentials
_original_first = sasl_mechanisms.SCRAM.process_1


def _credentials_with_end_point(self, required, optional):
    result = _original_credentials(self, required, optional)
    sock = self.xmpp.socket
    if "channel_binding" in required.union(optional) and isinstance(sock, (ssl.SSLSocket, ssl.SSLObject)):
        result["channel_binding"] = hashlib.sha256(sock.getpeercert(True)).digest()
    return result


def _first_with_end_point(self, challenge):
    message = _original_first(self, challenge)
    if self.use_channel_binding and self.gs2_header.startswith(b"p="):
        bare_header = self.gs2_header.split(b",", 1)[1]
        self.gs2_header = b"p=tls-server-end-point," + bare_header
        self.client_first_message = self.gs2_header + self.client_first_message_bare
        return self.client_first_message
    return message


def use_tls_server_end_point():
    """Makes slixmpp's SCRAM-*-PLUS use tls-server-end-point channel
    binding (see the COMPAT note above), for every client of the process."""
    FeatureMechanisms._default_credentials = _credentials_with_end_point
    sasl_mechanisms.SCRAM.process_1 = _first_with_end_point
