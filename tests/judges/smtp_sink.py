#!/usr/bin/env python3
"""A real SMTP server for qcert's mail tests (aiosmtpd), listening on
127.0.0.1:PORT. Every accepted message is written to DIR before the server
answers 250, as two files renamed into place when complete:

  <id>.eml   the raw message as received
  <id>.json  {"mail_from", "rcpt_tos", "auth_user", "subject", "message_id",
              "auto_submitted", "content_type", "charset", "body"}, with
             subject and body decoded by Python's email package

usage: smtp_sink.py --port PORT --dir DIR [--auth USER:PASSWORD]
  --auth   require SMTP AUTH (PLAIN/LOGIN, allowed without TLS) with these
           credentials; wrong ones get 535.
Recipients whose local part starts with "reject" are refused with 550.
Runs until killed (SIGTERM/SIGINT stop it cleanly).
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import sys
import uuid

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].lower().startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_content() if not msg.is_multipart() else None
        login = session.auth_data
        if isinstance(login, LoginPassword):
            login = login.login
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_user": login,
            "subject": str(msg["subject"]) if msg["subject"] is not None else None,
            "message_id": str(msg["message-id"]) if msg["message-id"] is not None else None,
            "auto_submitted": str(msg["auto-submitted"]) if msg["auto-submitted"] is not None else None,
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "body": body,
        }
        name = uuid.uuid4().hex
        self._write(name + ".eml", raw)
        self._write(name + ".json", json.dumps(record, ensure_ascii=False).encode("utf-8"))
        return "250 Message accepted for delivery"

    def _write(self, name, data):
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.directory, name))


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

    return authenticate


async def main():
    p = argparse.ArgumentParser(description="SMTP sink for qcert's tests")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--auth", help="USER:PASSWORD required for SMTP AUTH")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    handler = Sink(args.dir)
    options = {"hostname": "qcert-test-sink", "decode_data": False}
    if args.auth:
        user, _, password = args.auth.partition(":")
        options.update(
            authenticator=authenticator_for(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **options), host="127.0.0.1", port=args.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except OSError as e:
        print(f"smtp_sink: {e}", file=sys.stderr)
        sys.exit(2)
