"""Which notifiers want which alert events: named settings (`[alerts] events`, each notifier's `rules`).

The route is decided when a transition is written (an outbox row per notifier that wants it), so changing the
settings later changes what is notified from then on, never what is already waiting in the outbox.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from clapas.config import AlertSettings


def names(value: str | list[str]) -> list[str]:
    """A setting given as "a, b" (an environment variable) or as a TOML list."""
    items = value.split(",") if isinstance(value, str) else value
    return [v.strip() for v in items if v and v.strip()]


class Router:
    """(rule, event) → the names of the notifiers to notify; the `Route` the store's alert methods take."""

    def __init__(self, events: list[str], rules: dict[str, list[str]]) -> None:
        self.events = frozenset(events)
        self.rules = rules  # notifier name → rule patterns (fnmatch, case-sensitive)

    @classmethod
    def from_settings(cls, a: AlertSettings) -> Router:
        configured = {"webhook": (a.webhook.url, a.webhook.rules), "mqtt": (a.mqtt.url, a.mqtt.rules),
                      "email": (a.email.host, a.email.rules)}
        return cls(names(a.events), {n: names(r) for n, (on, r) in configured.items() if on})

    def __call__(self, rule: str, event: str) -> list[str]:
        if event not in self.events:
            return []
        return [n for n, patterns in self.rules.items() if any(fnmatchcase(rule, p) for p in patterns)]
