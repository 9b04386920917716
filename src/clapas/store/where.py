"""The WHERE clauses of the store's filters, shared by the observation, journal and alert queries of both stores."""

from __future__ import annotations

from typing import Any


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters from (fragment with one `?`, value) pairs; a condition whose value is None
    or empty is left out, and a tuple fills `IN (?)` with one placeholder per item."""
    clauses, params = ["TRUE"], []
    for fragment, value in conditions:
        if value is None or (isinstance(value, str | tuple) and not value):
            continue
        if isinstance(value, tuple):
            clauses.append(fragment.replace("?", ", ".join("?" * len(value))))
            params.extend(value)
        else:
            clauses.append(fragment)
            params.append(value)
    return " AND ".join(clauses), params
