"""A throwaway RabbitMQ node of this machine's `rabbitmq-server`, on free ports, in a temporary folder.

For tests and benchmarks (and for trying the partitioned mode on one machine): its CPU is the run's alone, and
it can be restarted (`restart`) without disturbing anyone else's broker. Starting takes a few seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pika


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateNode:
    """A throwaway RabbitMQ node of this machine's rabbitmq-server, on free ports, in a temporary folder."""

    def __init__(self) -> None:
        self.port, dist = _free_port(), _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="clapas-rmq-"))
        self.node = f"clapasbench{uuid.uuid4().hex[:6]}@localhost"
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        self.env = {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(dist), "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
                    "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"), "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"), "HOME": str(self.dir)}
        if os.geteuid() == 0:
            shutil.chown(self.dir, "rabbitmq", "rabbitmq")
            for f in self.dir.iterdir():
                shutil.chown(f, "rabbitmq", "rabbitmq")
            os.chmod(self.dir, 0o755)
        self.proc = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self._wait()

    def _wait(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                pika.BlockingConnection(pika.URLParameters(self.url)).close()
                return
            except Exception:
                time.sleep(0.5)
        raise RuntimeError(f"private RabbitMQ node did not start; see {self.dir}/log")

    def ctl(self, *args: str) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.node, *args], env=self.env, capture_output=True, check=True,
                       timeout=120)

    def restart(self) -> float:
        """Stop and start the broker application (every queue and stream closed and recovered from disk)."""
        t = time.monotonic()
        self.ctl("stop_app")
        self.ctl("start_app")
        self._wait()
        return time.monotonic() - t

    def pid(self) -> int | None:
        """The node's Erlang VM (beam.smp): the descendant of the rabbitmq-server process this run started."""
        parent: dict[int, int] = {}
        beams = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = d.joinpath("stat").read_text()
                except OSError:
                    continue
                parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                if "(beam.smp)" in stat:
                    beams.append(int(d.name))
        for b in beams:
            p = b
            while p > 1:
                p = parent.get(p, 0)
                if p == self.proc.pid:
                    return b
        return None

    def close(self) -> None:
        try:
            self.ctl("stop")
        except Exception:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)
