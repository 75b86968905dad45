"""Interop check of account management: in-band registration, password
change and account removal (XEP-0077), ad-hoc commands (XEP-0050) and
service administration (XEP-0133), driven by slixmpp against xmppd. Exit
status 0 on success; the failure reason goes to stderr. Each passed check
prints a line the Rust test looks for.

usage: slixmpp_admin.py PORT MODE PASSWORD
  MODE: ibr            registration allowed: a new account registers in band
                       and logs in; an existing name is a conflict
        ibr-disabled   registration off: not offered, and the account
                       that would have been created cannot log in
        ibr-limit      registration allowed, 2 per address and hour: the
                       third registration is refused
        account        alice@localhost changes her password (new one works,
                       old one fails), then bob@localhost removes his
                       account (his session is closed, login fails)
        admin          admin@localhost (an admin) adds, re-passwords, lists
                       and deletes users; bob@localhost (not an admin) sees
                       no command and is refused with forbidden
"""

import asyncio
import sys

from slixmpp.exceptions import IqError

import xmppd_client
from xmppd_client import expect_error

PORT, MODE, PASSWORD = sys.argv[1:4]
TIMEOUT = 20
DOMAIN = "localhost"
ADMIN_NODE = "http://jabber.org/protocol/admin"
COMMANDS = "http://jabber.org/protocol/commands"


class Session:
    """One client connection with futures for its outcome."""

    def __init__(self, jid, password, register=False):
        self.client = xmppd_client.make_client(jid, password, PORT, raise_on_failure=False, plugins=(
            "xep_0030", "xep_0004", "xep_0050", "xep_0133", "xep_0077"))
        client = self.client
        self.ready = client.ready
        self.closed = asyncio.get_event_loop().create_future()
        self.registered = asyncio.get_event_loop().create_future()
        self.stream_error = None
        self.register_offered = False

        def disconnected(_event):
            if not self.ready.done():
                self.ready.set_result(False)
            if not self.closed.done():
                self.closed.set_result(True)

        def stream_error(error):
            self.stream_error = error["condition"]

        client.add_event_handler("disconnected", disconnected)
        client.add_event_handler("stream_error", stream_error)
        if register:
            async def on_register(_form):
                # XEP-0077 §3.1 on the not yet authenticated stream.
                self.register_offered = True
                iq = client.Iq()
                iq["type"] = "set"
                iq["register"]["username"] = client.boundjid.user
                iq["register"]["password"] = client.password
                try:
                    await iq.send(timeout=TIMEOUT)
                    self.registered.set_result(None)
                except IqError as error:
                    self.registered.set_result(error)
                    client.disconnect()

            client.add_event_handler("register", on_register)

    async def wait_ready(self):
        return await asyncio.wait_for(self.ready, TIMEOUT)

    async def close(self):
        self.client.disconnect()
        try:
            await asyncio.wait_for(self.closed, TIMEOUT)
        except asyncio.TimeoutError:
            pass


async def login(jid, password):
    """Whether jid can log in with password."""
    session = Session(jid, password)
    ok = await session.wait_ready()
    await session.close()
    return ok


async def logged_in(jid, password):
    session = Session(jid, password)
    assert await session.wait_ready(), f"{jid} could not log in"
    return session


async def register(jid, password):
    """In-band registration on a fresh connection; returns (session,
    IqError or None). The session is logged in when registration worked."""
    session = Session(jid, password, register=True)
    await asyncio.wait_for(asyncio.wait([session.ready, session.registered],
                                        return_when=asyncio.FIRST_COMPLETED), TIMEOUT)
    error = session.registered.result() if session.registered.done() else None
    return session, error


async def check_ibr():
    session, error = await register(f"newbie@{DOMAIN}", "n3w-passw0rd")
    assert error is None, f"registration failed: {error and error.iq}"
    assert session.register_offered, "the register stream feature was not used"
    assert await session.wait_ready(), "the new account could not log in on the same stream"
    await session.close()
    print("registered newbie in band and logged in")
    assert await login(f"newbie@{DOMAIN}", "n3w-passw0rd"), "a fresh login of the new account failed"
    print("new account logs in again")
    session, error = await register(f"Newbie@{DOMAIN}", "other")
    assert error is not None and error.condition == "conflict", f"expected a conflict, got {error}"
    await session.close()
    print("registration of an existing name refused: conflict")


async def check_ibr_disabled():
    session, error = await register(f"newbie@{DOMAIN}", "n3w-passw0rd")
    assert not session.register_offered, "registration was offered although disabled"
    assert error is None
    assert not await session.wait_ready(), "an unregistered account logged in"
    await session.close()
    print("registration not offered when disabled")


async def check_ibr_limit():
    for n in (1, 2):
        session, error = await register(f"limited{n}@{DOMAIN}", "passw0rd")
        assert error is None, f"registration {n} failed: {error and error.iq}"
        await session.close()
    session, error = await register(f"limited3@{DOMAIN}", "passw0rd")
    assert error is not None, "the third registration within the hour was accepted"
    assert error.condition == "not-acceptable", error.iq
    assert error.iq["error"]["type"] == "wait", error.iq
    await session.close()
    assert not await login(f"limited3@{DOMAIN}", "passw0rd"), "the refused account exists"
    print("rate limit hit on the third registration: not-acceptable/wait")


async def check_account():
    alice = await logged_in(f"alice@{DOMAIN}", PASSWORD)
    form = await alice.client.plugin["xep_0077"].get_registration(jid=DOMAIN, timeout=TIMEOUT)
    assert form["register"]["registered"], form
    assert form["register"]["username"] == "alice", form
    await alice.client.plugin["xep_0077"].change_password("s3cond-Π", timeout=TIMEOUT)
    await alice.close()
    assert await login(f"alice@{DOMAIN}", "s3cond-Π"), "the new password does not work"
    assert not await login(f"alice@{DOMAIN}", PASSWORD), "the old password still works"
    print("password changed: new password logs in, old fails")

    bob = await logged_in(f"bob@{DOMAIN}", PASSWORD)
    other = await logged_in(f"bob@{DOMAIN}/other", PASSWORD)
    await bob.client.plugin["xep_0077"].cancel_registration(timeout=TIMEOUT)
    print("account removal answered with a result")
    for session in (bob, other):
        await asyncio.wait_for(session.closed, TIMEOUT)
        assert session.stream_error == "not-authorized", session.stream_error
    print("every session of the removed account closed with not-authorized")
    assert not await login(f"bob@{DOMAIN}", PASSWORD), "the removed account still logs in"
    print("removed account cannot log in")


def submit_form(client, values):
    form = client.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN_NODE)
    for var, value in values.items():
        if isinstance(value, list):
            form.add_field(var=var, ftype="jid-multi", value=value)
        else:
            form.add_field(var=var, value=value)
    return form


async def admin_command(client, name, values=None):
    """Runs an XEP-0133 command through slixmpp's XEP-0050 session
    workflow: the first form is answered with `values`. Returns the final
    <iq/> (result or error)."""
    done = asyncio.get_event_loop().create_future()

    def on_next(iq, session):
        if iq["command"]["status"] == "completed":
            if not done.done():
                done.set_result(iq)
            return
        assert values is not None, f"{name} asked for a form: {iq}"
        assert iq["command"]["form"]["type"] == "form", iq
        assert form_values(iq)["FORM_TYPE"] == [ADMIN_NODE], iq
        session["payload"] = submit_form(client, values)
        session["next"] = on_next
        client.plugin["xep_0050"].complete_command(session)

    def on_error(iq, session):
        if not done.done():
            done.set_result(iq)
        client.plugin["xep_0050"].terminate_command(session)

    session = {"next": on_next, "error": on_error}
    getattr(client.plugin["xep_0133"], name.replace("-", "_"))(session=session)
    return await asyncio.wait_for(done, TIMEOUT)


def form_values(iq):
    """var -> list of values of the data form in an <iq/>'s <command/>
    (read from the XML: slixmpp's form accessors vary by field type)."""
    form = iq.xml.find(f"{{{COMMANDS}}}command/{{jabber:x:data}}x")
    assert form is not None, f"no form in {iq}"
    return {
        field.get("var"): [value.text or "" for value in field.findall("{jabber:x:data}value")]
        for field in form.findall("{jabber:x:data}field")
    }


def notes(iq):
    return [(note_type, text) for note_type, text in iq["command"]["notes"]]


async def command_nodes(client):
    items = await client.plugin["xep_0050"].get_commands(DOMAIN, timeout=TIMEOUT)
    return {node for _jid, node, _name in items["disco_items"]["items"]}


async def check_admin():
    admin = await logged_in(f"admin@{DOMAIN}", PASSWORD)
    bob = await logged_in(f"bob@{DOMAIN}", PASSWORD)
    a = admin.client

    info = await a.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=TIMEOUT)
    assert COMMANDS in info["disco_info"]["features"], info
    nodes = await command_nodes(a)
    for command in ("add-user", "delete-user", "change-user-password", "get-online-users-list",
                    "get-online-users-num"):
        assert f"{ADMIN_NODE}#{command}" in nodes, sorted(nodes)
    node_info = await a.plugin["xep_0030"].get_info(jid=DOMAIN, node=f"{ADMIN_NODE}#add-user", timeout=TIMEOUT)
    identities = node_info["disco_info"]["identities"]
    assert any(i[:2] == ("automation", "command-node") and "Add a User" in i for i in identities), node_info
    print("admin sees the service administration commands")

    result = await admin_command(a, "add-user", {"accountjid": f"carol@{DOMAIN}", "password": "car0l",
                                                 "password-verify": "car0l"})
    assert result["type"] == "result" and result["command"]["status"] == "completed", result
    carol = await logged_in(f"carol@{DOMAIN}", "car0l")
    print("add-user: carol created and logs in")
    # Errors by hand: slixmpp's workflow matches replies by the sessionid
    # of their <command/>, which error replies do not repeat.
    first = await a.plugin["xep_0050"].send_command(DOMAIN, f"{ADMIN_NODE}#add-user", timeout=TIMEOUT)
    await expect_error("conflict", a.plugin["xep_0050"].send_command(
        DOMAIN, f"{ADMIN_NODE}#add-user", action="complete", sessionid=first["command"]["sessionid"],
        payload=submit_form(a, {"accountjid": f"carol@{DOMAIN}", "password": "x"}), timeout=TIMEOUT))
    print("add-user of an existing account: conflict")

    result = await admin_command(a, "change-user-password", {"accountjid": f"carol@{DOMAIN}",
                                                              "password": "n3w-car0l"})
    assert result["type"] == "result" and result["command"]["status"] == "completed", result
    assert await login(f"carol@{DOMAIN}", "n3w-car0l"), "carol's new password does not work"
    assert not await login(f"carol@{DOMAIN}", "car0l"), "carol's old password still works"
    print("change-user-password: new password logs in, old fails")

    result = await admin_command(a, "get-online-users-list")
    online = form_values(result)["onlineuserjids"]
    assert {f"admin@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"} <= set(online), online
    result = await admin_command(a, "get-online-users-num")
    [number] = form_values(result)["onlineusersnum"]
    number = int(number)
    assert number == len(online) >= 3, (number, online)
    print(f"get-online-users-list and -num: {number} online")

    result = await admin_command(a, "delete-user", {"accountjids": [f"carol@{DOMAIN}", f"nobody@{DOMAIN}"]})
    assert result["command"]["status"] == "completed", result
    kinds = [kind for kind, _ in notes(result)]
    assert "error" in kinds, notes(result)  # nobody@ did not exist
    await asyncio.wait_for(carol.closed, TIMEOUT)
    assert carol.stream_error == "not-authorized", carol.stream_error
    assert not await login(f"carol@{DOMAIN}", "n3w-car0l"), "the deleted account still logs in"
    print("delete-user: carol's session closed and login fails")

    assert not (await command_nodes(bob.client)) & {f"{ADMIN_NODE}#add-user"}, "bob sees admin commands"
    await expect_error("forbidden", bob.client.plugin["xep_0050"].send_command(
        DOMAIN, f"{ADMIN_NODE}#add-user", timeout=TIMEOUT))
    await expect_error("forbidden", bob.client.plugin["xep_0030"].get_info(
        jid=DOMAIN, node=f"{ADMIN_NODE}#add-user", timeout=TIMEOUT))
    print("non-admin: no commands listed, execution forbidden")

    # The multi-stage flow by hand: execute, cancel; a cancelled session is gone.
    first = await a.plugin["xep_0050"].send_command(DOMAIN, f"{ADMIN_NODE}#add-user", timeout=TIMEOUT)
    sessionid = first["command"]["sessionid"]
    assert first["command"]["status"] == "executing", first
    cancelled = await a.plugin["xep_0050"].send_command(DOMAIN, f"{ADMIN_NODE}#add-user", action="cancel",
                                                        sessionid=sessionid, timeout=TIMEOUT)
    assert cancelled["command"]["status"] == "canceled", cancelled
    await expect_error("not-allowed", a.plugin["xep_0050"].send_command(
        DOMAIN, f"{ADMIN_NODE}#add-user", action="complete", sessionid=sessionid,
        payload=submit_form(a, {"accountjid": f"dave@{DOMAIN}", "password": "d"}), timeout=TIMEOUT))
    print("cancelled command session is gone")

    await admin.close()
    await bob.close()


async def main():
    checks = {
        "ibr": check_ibr,
        "ibr-disabled": check_ibr_disabled,
        "ibr-limit": check_ibr_limit,
        "account": check_account,
        "admin": check_admin,
    }
    await checks[MODE]()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    xmppd_client.run(main, TIMEOUT * 6, print_traceback=True)
