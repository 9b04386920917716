"""Email over SMTP (stdlib smtplib, in a thread): one short plain-text message per alert event, in the city's
language (`[web] language`).

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
from clapas.config import EmailSettings, WebSettings
from clapas.i18n import T, render


def compose(payload: dict[str, Any], sender: str, to: list[str], public_url: str = "",
            lang: str = WebSettings().language) -> EmailMessage:
    """The e-mail of one alert event, in the city's language (`[web] language`): the alert's own texts were written
    in it when the event was; the labels around them come from the catalog (`clapas.i18n`)."""
    a = payload["alert"]

    def tr(key: str, **params: Any) -> str:
        return render(T(f"email.{key}", **params), lang)

    msg = EmailMessage()
    msg["Subject"] = tr("subject", event=payload["event"], rule=a["rule"], subject=a["subject"],
                        severity=a["severity"])
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="clapas")
    lines = [
        tr("alert", id=a["id"], rule=a["rule"], subject_kind=a["subject_kind"], subject=a["subject"])
        + (tr("zone", zone=a["zone"]) if a.get("zone") else ""),
        tr("event", event=payload["event"], at=_iso(payload["at"]))
        + (tr("by", author=payload["author"]) if payload.get("author") else ""),
        tr("state", state=a["state"], severity=a["severity"], opened_at=_iso(a["opened_at"])),
        "", a.get("message") or "", "",
    ]
    if payload.get("text") and payload["text"] != a.get("message"):
        lines += [payload["text"], ""]
    lines += [tr("evidence"), msgspec.json.format(msgspec.json.encode(a.get("evidence") or {}), indent=2).decode()]
    if public_url:
        lines += ["", tr("link"), f"{public_url.rstrip('/')}/#/alert/{a['id']}"]
    msg.set_content("\n".join(lines))
    msg["Content-Language"] = lang  # after set_content, which replaces the Content-* headers
    return msg


def _iso(v: Any) -> str:
    """A payload time (a datetime, or its JSON text once stored) as ISO 8601."""
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


class EmailNotifier:
    name = "email"

    def __init__(self, s: EmailSettings, public_url: str = "", lang: str = WebSettings().language) -> None:
        self.s = s
        self.lang = lang
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
        await asyncio.to_thread(self._send, compose(row["payload"], self.s.from_, self.to, self.public_url,
                                                      self.lang))

    async def close(self) -> None:
        return None
