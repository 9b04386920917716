"""Sinks and running: MQTT to a real broker, the JSON-lines file, the registry export, the CLI, the demo thread."""

from __future__ import annotations

import io
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest

from clapas.cli import main
from clapas.connectors.chirpstack import message, parse
from clapas.model import Device
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import build_city
from clapas.simulator.incidents import read_truth
from clapas.simulator.run import FileSink, MqttSink, paced, read_lines, run_in_background
from clapas.simulator.simulation import Simulation
from clapas.store.base import open_store

START = datetime(2026, 5, 4, tzinfo=UTC)


@pytest.mark.mqtt
@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_publish_to_broker(mqtt_url, small_city, fmt):
    import paho.mqtt.client as mqtt

    events = list(Simulation(small_city, START, START + timedelta(hours=12), 3, fmt=fmt).messages())
    received: list[tuple[str, bytes]] = []
    done = threading.Event()
    # one application's events, any device; under a root of this run's own (a broker shared with other runs)
    root = f"clapas-test-{uuid.uuid4().hex[:8]}/"
    prefix = f"{root}application/{small_city.devices[0].app.id}"

    def on_message(client, userdata, msg):
        received.append((msg.topic, msg.payload))

    u = urlparse(mqtt_url)
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: done.set()
    sub.connect(u.hostname, u.port or 1883)
    sub.subscribe(f"{prefix}/device/+/event/+", qos=0)
    sub.loop_start()
    assert done.wait(5)
    sink = MqttSink(mqtt_url)
    for _, topic, raw in events:
        sink.publish(root + topic, raw)
    sink.close()
    expected = [(root + t, r) for _, t, r in events if (root + t).startswith(prefix + "/")]
    deadline = time.monotonic() + 10
    while len(received) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.loop_stop()
    sub.disconnect()
    assert sorted(received) == sorted(expected)
    for topic, raw in received[:50]:
        parse(message(raw, START, topic=topic.removeprefix(root), source="simulator"))


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_file_round_trip(tmp_path, small_city, fmt):
    events = list(Simulation(small_city, START, START + timedelta(hours=6), 3, fmt=fmt).messages())
    sink = FileSink(tmp_path / "out.jsonl")
    for ev in events:
        sink.write(*ev)
    sink.close()
    back = list(read_lines(tmp_path / "out.jsonl"))
    assert [(t, r) for _, t, r in back] == [(t, r) for _, t, r in events]
    assert all(abs(a[0] - b[0]) < 1e-5 for a, b in zip(back, events, strict=True))


def test_registry_export(tmp_path):
    city = build_city(5, 120)
    zones_path, devices_path = city.export_registry(tmp_path)
    registry = pytest.importorskip("clapas.registry.devices_csv")
    zones_mod = pytest.importorskip("clapas.registry.zones")
    with devices_path.open(encoding="utf-8", newline="") as f:
        devices = registry.read_devices(f)
    assert devices == city.registry_devices()
    zones = zones_mod.read_zones(zones_path.read_bytes())
    assert {z.id for z in zones} == {z.id for z in city.zones}
    assert {d.zone for d in devices} <= {z.id for z in zones}
    kinds = {z.kind for z in zones}
    assert {"dma", "park", "museum_room", "catchment", "rural"} <= kinds


def test_city_is_deterministic_and_scales():
    a, b = build_city(11, 300), build_city(11, 300)
    assert [d.device for d in a.devices] == [d.device for d in b.devices]
    assert [d.eui for d in build_city(12, 300).devices] != [d.eui for d in a.devices]
    big = build_city(11, 3000)
    assert len(big.devices) == 3000
    assert len({d.eui for d in big.devices}) == 3000
    for d in big.devices:
        assert isinstance(d.device, Device) and len(d.eui) == 16 and d.eui == d.eui.lower()
        assert 43.4 < d.device.lat < 43.8 and 3.6 < d.device.lon < 4.1
        assert d.device.expected_interval_s and d.device.decoder and d.device.profile
    meters = big.by_kind("water_meter")
    homes = [d for d in meters if d.device.premises_use == "habitation"]
    assert 0.7 < len(homes) / len(meters) < 0.95
    assert all(d.device.subscriber for d in meters)
    gauges = big.by_kind("water_level")
    assert all({"threshold_yellow", "threshold_orange", "threshold_red", "level_datum"} <= set(d.device.tags)
               for d in gauges)


def test_paced_follows_speed():
    events = [(1000.0 + i * 60, "t", b"") for i in range(4)]  # 3 simulated minutes
    t0 = time.monotonic()
    assert list(paced(events, speed=900.0)) == events  # 180 s at 900× → 0.2 s
    assert 0.15 < time.monotonic() - t0 < 1.0


def test_paced_never_ahead_of_now():
    now = time.time()
    events = [(now - 10, "a", b""), (now + 0.3, "b", b"")]
    t0 = time.monotonic()
    assert [e[1] for e in paced(events, speed=float("inf"), not_after_now=True)] == ["a", "b"]
    assert time.monotonic() - t0 > 0.2


def test_cli_writes_messages_and_truth(tmp_path, capsys):
    out, truth, reg = tmp_path / "m.jsonl", tmp_path / "truth.jsonl", tmp_path / "reg"
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--devices", "60", "--seed", "4", "--start", "2026-05-04T00:00:00Z", "--days", "1",
              "--out", str(out), "--truth", str(truth), "--export-registry", str(reg), "-q"])
    assert e.value.code == 0
    lines = list(read_lines(out))
    assert len(lines) > 1000
    assert lines[0][0] >= START.timestamp() and lines[-1][0] < (START + timedelta(days=1)).timestamp()
    assert {i.kind for i in read_truth(truth)} >= {"leak", "heatwave", "flood"}
    assert (reg / "devices.csv").exists() and (reg / "zones.geojson").exists()
    assert "messages from 60 devices" in capsys.readouterr().err


def test_cli_rejects_bad_incidents(capsys):
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--incidents", "leak,meteor", "--days", "1"])
    assert e.value.code == 2
    assert "meteor" in capsys.readouterr().err


def test_cli_says_which_kinds_did_not_fit(tmp_path, capsys):
    truth = tmp_path / "truth.jsonl"
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--devices", "60", "--start", "2026-05-04T00:00:00Z", "--days", "1", "--incidents",
              "leak,damp_room", "--truth", str(truth), "--out", str(tmp_path / "m.jsonl"), "-q"])
    assert e.value.code == 0
    assert [i.kind for i in read_truth(truth)] == ["leak"]
    assert "no damp_room in this period" in capsys.readouterr().err


def test_background_run_feeds_a_pipeline(tmp_path):
    city = build_city(9, 40)
    store = open_store(f"duckdb:///{tmp_path / 'bg.duckdb'}")
    pipeline = Pipeline(store)
    stop = threading.Event()
    thread = run_in_background(pipeline, city, speed=86400 * 50, stop_event=stop,
                               truth_path=tmp_path / "truth.jsonl", days=0.5)
    deadline = time.monotonic() + 20
    sim = thread.simulation  # type: ignore[attr-defined]
    while sim.sim_time < time.time() - 1800 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.sim_time > time.time() - 1800  # caught up within the last half hour: now in real time
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    pipeline.close()
    counts = store.counts()
    assert counts["stored"] > 500 and counts.get("quarantined", 0) == 0
    last = store.sql("SELECT max(time) AS t FROM journal")[0]["t"]
    assert last <= datetime.now(UTC)
    assert read_truth(tmp_path / "truth.jsonl")
    store.close()


def test_progress_line():
    from clapas.simulator.run import Progress

    buf = io.StringIO()
    p = Progress(0.0, 100.0, stream=buf)
    p(50.0, 1234, force=True)
    assert "50.0%" in buf.getvalue() and "1,234 messages" in buf.getvalue()
