"""A local GBFS feed for the tests: files from the shared samples (repaired where the upstream examples break
their own schemas) served over real HTTP on 127.0.0.1, changeable between polls."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clapas.simulator.mobility import json_server

# What the upstream example files get wrong against their own schemas (MobilityData/gbfs-json-schema 2e974fd):
# v2.3 examples say version "2.2" and two of them carry 2015-06-11 times (the schema's minimum is 2015-12-15);
# v3.0 examples carry POSIX integers where v3.0 says RFC 3339, and gbfs.json lists no status feed.
V23_TIME = 1700000000


def load(samples: Path, version: str, name: str) -> Any:
    return json.loads((samples / "gbfs" / version / f"{name}.json").read_text())


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def repaired(samples: Path, version: str, name: str) -> Any:
    doc = copy.deepcopy(load(samples, version, name))
    if version == "v2.3":
        doc["version"] = "2.3"
        if doc["last_updated"] < 1450155600:
            doc["last_updated"] = V23_TIME
        for s in doc.get("data", {}).get("stations", []):
            if "last_reported" in s:
                s["last_reported"] = V23_TIME
        return doc
    doc["last_updated"] = rfc3339(doc["last_updated"])
    for item in doc["data"].get("stations", []) + doc["data"].get("vehicles", []):
        if isinstance(item.get("last_reported"), int):
            item["last_reported"] = rfc3339(item["last_reported"])
    if name == "gbfs":
        doc["data"]["feeds"].append({"name": "station_status", "url": "https://www.example.com/gbfs/1/ss"})
    return doc


def v3_status_from_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """The same stations as a v3.0 station_status: v3.0 names and RFC 3339 times."""
    out = copy.deepcopy(doc)
    out["version"] = "3.0"
    out["last_updated"] = rfc3339(doc["last_updated"])
    for s in out["data"]["stations"]:
        s["num_vehicles_available"] = s.pop("num_bikes_available")
        if "num_bikes_disabled" in s:
            s["num_vehicles_disabled"] = s.pop("num_bikes_disabled")
        s["last_reported"] = rfc3339(s["last_reported"])
    return out


class Feed:
    """Serves `files` (name → JSON document or raw bytes) at http://127.0.0.1:port/<name>.json."""

    def __init__(self) -> None:
        self.files: dict[str, Any] = {}
        self.requests: list[str] = []
        self.fail = False
        self.server = json_server(self._answer)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, name: str) -> tuple[int, bytes]:
        self.requests.append(name)
        if self.fail or name not in self.files:
            return (503 if self.fail else 404), b""
        body = self.files[name]
        return 200, body if isinstance(body, bytes) else json.dumps(body).encode()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}.json"

    def discovery(self, names: list[str], version: str = "2.3", ttl: int = 60) -> None:
        feeds = [{"name": n, "url": self.url(n)} for n in names]
        data: dict[str, Any] = {"feeds": feeds} if version.startswith("3") else {"en": {"feeds": feeds}}
        lu: Any = rfc3339(V23_TIME) if version.startswith("3") else V23_TIME
        self.files["gbfs"] = {"last_updated": lu, "ttl": ttl, "version": version, "data": data}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
