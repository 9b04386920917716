"""Email over SMTP (stdlib smtplib, in a thread): one short plain-text message per alert event.

Port 465 is implicit TLS; otherwise STARTTLS when `starttls` is set (the default: credentials never cross the
network in clear). A refused recipient or a server error is a failure, retried by the outbox worker.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import msgspec

from clapas.alerts.routing import names
from clapas.config import EmailSettings


def compose(payload: dict[str, Any], sender: str, to: list[str], public_url: str = "") -> EmailMessage:
    a = payload["alert"]
    msg = EmailMessage()
    msg["Subject"] = f"[clapas] {payload['event']}: {a['rule']} on {a['subject']} ({a['severity']})"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="clapas")
    lines = [
        f"Alert {a['id']}: {a['rule']} on {a['subject_kind']} {a['subject']}" + (f" (zone {a['zone']})"
                                                                                   if a.get("zone") else ""),
        f"Event: {payload['event']} at {payload['at']}" + (f" by {payload['author']}" if payload.get("author")
                                                           else ""),
        f"State: {a['state']} · severity {a['severity']} · opened at {a['opened_at']}",
        "", a.get("message") or "", "",
    ]
    if payload.get("text") and payload["text"] != a.get("message"):
        lines += [payload["text"], ""]
    lines += ["Evidence:", msgspec.json.format(msgspec.json.encode(a.get("evidence") or {}), indent=2).decode()]
    if public_url:
        lines += ["", f"{public_url.rstrip('/')}/#alerts"]
    msg.set_content("\n".join(lines))
    return msg


class EmailNotifier:
    name = "email"

    def __init__(self, s: EmailSettings, public_url: str = "") -> None:
        self.s = s
        self.to = names(s.to)
        self.public_url = public_url
        self.timeout_s = s.timeout_s

    def _send(self, msg: EmailMessage) -> None:
        s = self.s
        if s.port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        with smtp:
            if s.starttls and s.port != 465:
                smtp.starttls(context=ssl.create_default_context())
            if s.user:
                smtp.login(s.user, s.password)
            refused = smtp.send_message(msg)
        if refused:
            raise RuntimeError(f"recipients refused: {refused}")

    async def send(self, row: dict[str, Any]) -> None:
        await asyncio.to_thread(self._send, compose(row["payload"], self.s.from_, self.to, self.public_url))

    async def close(self) -> None:
        return None
