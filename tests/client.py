#!/usr/bin/env python3
"""A real XMPP client (slixmpp, c2s) driven by the Rust tests over stdin/stdout.

    client.py JID PASSWORD HOST PORT [--register]

With --register the account is created first by in-band registration (XEP-0077).

stdout: one JSON line per event: {"online": "<full jid>"} once logged in, then
{"stanza": "<xml>"} for every stanza received. stdin: one JSON string per line, raw XML
to send. Exits when stdin closes.
"""
import asyncio
import json
import logging
import os
import sys

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from slixmpp.xmlstream.tostring import tostring


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Driven(slixmpp.ClientXMPP):
    def __init__(self, jid, password, register=False):
        super().__init__(
            jid,
            password,
            # plaintext on loopback only: tests never leave 127.0.0.1
            plugin_config={"feature_mechanisms": {"unencrypted_plain": True, "unencrypted_scram": True}},
        )
        self.add_event_handler("session_start", self.start)
        if register:
            self.register_plugin("xep_0077")
            self["xep_0077"].force_registration = True
            self.add_event_handler("register", self.register)
        self.add_event_handler("failed_auth", lambda *_: (emit({"error": "auth failed"}), sys.exit(2)))
        for name in ("message", "presence", "iq"):
            self.register_handler(Callback(name, MatchXPath("{jabber:client}%s" % name), self.got))

    async def register(self, _event):
        iq = self.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = self.boundjid.user
        iq["register"]["password"] = self.password
        try:
            await iq.send()
            emit({"registered": self.boundjid.bare})
        except slixmpp.exceptions.IqError as e:
            emit({"error": "registration refused: %s" % e.iq["error"]["condition"]})
            sys.exit(2)

    def got(self, stanza):
        emit({"stanza": tostring(stanza.xml, top_level=True)})

    async def start(self, _event):
        self.send_presence()
        emit({"online": str(self.boundjid)})
        # asyncio keeps only weak references to tasks, and slixmpp none to its handler tasks:
        # hold this one, or the garbage collector may end the stdin loop mid-test.
        self.stdin_task = asyncio.ensure_future(self.pump())

    async def pump(self):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                self.disconnect()
                return
            if line.strip():
                self.send_raw(json.loads(line))


def main():
    if os.environ.get("CLIENT_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    jid, password, host, port = sys.argv[1:5]
    xmpp = Driven(jid, password, register="--register" in sys.argv[5:])
    xmpp.enable_starttls = False
    xmpp.enable_direct_tls = False
    xmpp.use_ipv6 = False
    xmpp.enable_plaintext = True
    xmpp.connect(host=host, port=int(port))
    xmpp.loop.run_until_complete(xmpp.disconnected)


if __name__ == "__main__":
    main()
