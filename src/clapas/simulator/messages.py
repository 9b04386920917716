"""ChirpStack v4 integration events (`up`, `status`, `join`) exactly as ChirpStack publishes them.

JSON follows the protobuf canonical JSON mapping (camelCase, like the samples); protobuf uses the `chirpstack-api`
classes. Both are built from a per-device part made once (deviceInfo, devAddr…) and a per-message part, so that
building a message costs a few microseconds: for protobuf the two serialised halves are concatenated, which the
protobuf wire format defines as merging them into one message.
"""

from __future__ import annotations

import base64
import math
import random
from datetime import UTC, datetime

import msgspec
from chirpstack_api import common, gw, integration
from google.protobuf import struct_pb2, timestamp_pb2

from clapas.simulator.city import City, SimDevice
from clapas.simulator.noise import NORMALS as _NORMALS
from clapas.simulator.noise import key

REGION = "eu868"
REGION_COMMON_NAME = "EU868"
BANDWIDTH_HZ = 125_000
CHANNELS_HZ = (868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000, 867_700_000,
               867_900_000)
# Radio: log-distance path loss, good enough for plausible figures.
RSSI_AT_1KM_DBM = -92.0
PATH_LOSS_EXPONENT = 3.0
NOISE_FLOOR_DBM = -117.0  # thermal noise in 125 kHz plus a 6 dB receiver noise figure
MAX_SNR_DB = 13.5
RSSI_NOISE_DB, SNR_NOISE_DB = 2.5, 1.2
# Demodulation floor per spreading factor (TTN margin_table.go) and ChirpStack's ADR installation margin.
SNR_FLOOR_DB = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
ADR_MARGIN_DB = 10.0
MAX_GATEWAYS = 3
MIN_DISTANCE_KM = 0.05

RSSI_RANGE_DBM = (-160, 0)
_SNR_BITS = 6
_SNR_MASK = (1 << _SNR_BITS) - 1
# 256 RSSI deviations (dB, integers) and, per RSSI, 64 SNR values with their JSON text: quantile tables.
_RSSI_NOISE = tuple(round(RSSI_NOISE_DB * _NORMALS[(2 * j + 1) * len(_NORMALS) // 512]) for j in range(256))
_SNR_NOISE = tuple(SNR_NOISE_DB * _NORMALS[(2 * j + 1) * len(_NORMALS) // (2 << _SNR_BITS)]
                   for j in range(1 << _SNR_BITS))
_RADIO_SNR: dict[int, tuple[float, ...]] = {
    r: tuple(round(min(MAX_SNR_DB, r - NOISE_FLOOR_DBM) + n, 1) for n in _SNR_NOISE) for r in range(*RSSI_RANGE_DBM)}
_RADIO_JSON: dict[int, tuple[str, ...]] = {
    r: tuple(f'"rssi":{r},"snr":{s}' for s in snrs) for r, snrs in _RADIO_SNR.items()}

EVENT_TOPIC = "application/{app}/device/{eui}/event/{event}"


def topic(app_id: str, eui: str, event: str) -> str:
    return EVENT_TOPIC.format(app=app_id, eui=eui, event=event)


def rssi_at(distance_km: float, extra_loss_db: float = 0.0) -> float:
    return (RSSI_AT_1KM_DBM - 10 * PATH_LOSS_EXPONENT * math.log10(max(distance_km, MIN_DISTANCE_KM))
            - extra_loss_db)


def snr_for(rssi: float) -> float:
    return min(MAX_SNR_DB, rssi - NOISE_FLOOR_DBM)


def adr_spreading_factor(snr: float) -> int:
    """The spreading factor ADR settles on: the fastest one keeping the installation margin."""
    for sf in range(7, 13):
        if snr - SNR_FLOOR_DB[sf] >= ADR_MARGIN_DB:
            return sf
    return 12


_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_V4 = (0x4 << 76) | (0x2 << 62)
_minute_prefix: dict[int, str] = {}


def _iso(t: float) -> str:
    """RFC 3339 with microseconds, like datetime.isoformat() but with the date part cached per minute."""
    us = round(t * 1_000_000)
    m, rem = divmod(us, 60_000_000)
    prefix = _minute_prefix.get(m)
    if prefix is None:
        if len(_minute_prefix) > 100_000:
            _minute_prefix.clear()
        prefix = _minute_prefix[m] = datetime.fromtimestamp(m * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
    s, frac = divmod(rem, 1_000_000)
    return f"{prefix}{s:02d}.{frac:06d}+00:00"


class _Radio:
    """A device's fixed radio situation: gateways in range, their mean RSSI, and the ADR data rate."""

    __slots__ = ("dr", "gateways", "sf")

    def __init__(self, d: SimDevice) -> None:
        loss = d.params.get("indoor_loss_db", 0.0)
        lo, hi = RSSI_RANGE_DBM[0] + 10, RSSI_RANGE_DBM[1] - 10  # room for the noise within the tables
        heard = [(gid, max(lo, min(hi, round(rssi_at(km, loss))))) for gid, km in d.gateways[:MAX_GATEWAYS]]
        self.sf = adr_spreading_factor(snr_for(heard[0][1])) if heard else 12
        floor = SNR_FLOOR_DB[self.sf]
        self.gateways = [(gid, r) for i, (gid, r) in enumerate(heard) if i == 0 or snr_for(r) > floor + 2]
        self.dr = 12 - self.sf  # EU868: DR0 = SF12 … DR5 = SF7

    def link_margin(self) -> float:
        return snr_for(self.gateways[0][1]) - SNR_FLOOR_DB[self.sf]


class MessageFactory:
    """Builds the events of one city's devices, in JSON or protobuf."""

    def __init__(self, city: City, seed: int, fmt: str = "json") -> None:
        if fmt not in ("json", "protobuf"):
            raise ValueError(f"format must be json or protobuf, not {fmt!r}")
        self.city, self.fmt = city, fmt
        # Per-message details that no analysis depends on (radio noise, uplink and deduplication ids) come from one
        # sequential generator: cheaper than counter hashes, and deterministic because generation order is.
        self.rng = random.Random(key(seed, "messages"))
        n = len(city.devices)
        self.radio = [_Radio(d) for d in city.devices]
        self.down: set[str] = set()  # gateways in an outage now (set by the simulation)
        self.topics = [{e: topic(d.app.id, d.eui, e) for e in ("up", "status", "join")} for d in city.devices]
        self._json_info: list[bytes] = [b""] * n
        self._pb_static: list[dict[str, bytes]] = [{}] * n
        gw_pos = {g.id: (g.lat, g.lon) for g in city.gateways}
        self._gw_pos = gw_pos
        # the constant end of each gateway's rxInfo entry, per device
        self._rx_tail = [[f'"location":{{"latitude":{gw_pos[g][0]:.6f},"longitude":{gw_pos[g][1]:.6f}}},'
                          f'"metadata":{{"region_config_id":"{REGION}","region_common_name":"{REGION_COMMON_NAME}"}},'
                          f'"crcStatus":"CRC_OK"}}' for g, _ in r.gateways] for r in self.radio]
        for d in city.devices:
            info = self._device_info(d)
            if fmt == "json":
                self._json_info[d.index] = msgspec.json.encode(info)
            else:
                self._pb_static[d.index] = self._pb_statics(d, info)

    def _device_info(self, d: SimDevice) -> dict:
        dev = d.device
        return {"tenantId": self.city.tenant_id, "tenantName": "Montpellier Méditerranée Métropole",
                "applicationId": d.app.id, "applicationName": d.app.name, "deviceProfileId": d.profile_id,
                "deviceProfileName": dev.profile, "deviceName": dev.name, "devEui": dev.eui,
                "deviceClassEnabled": "CLASS_A", "tags": dict(dev.tags)}

    # radio --------------------------------------------------------------------------------------------------------
    def _rx(self, d: SimDevice, extra_loss_db: float = 0.0) -> list[tuple[str, int, int, int, int]]:
        """(gateway, uplinkId, rssi, snr variant, channel) per gateway that heard this uplink: none of the gateways
        in `down` (an outage), each `extra_loss_db` weaker (a degrading antenna).

        Radio noise is drawn from small quantile tables (one 48-bit draw per gateway): the JSON text of each
        (rssi, snr) pair is then a table lookup, which keeps building a message to a few microseconds.
        """
        bits = self.rng.getrandbits
        channel = bits(3)
        out = []
        down, extra = self.down, round(extra_loss_db)
        lo = RSSI_RANGE_DBM[0]
        for gid, rssi in self.radio[d.index].gateways:
            x = bits(48)
            if down and gid in down:
                continue
            r = rssi + _RSSI_NOISE[(x >> 32) & 0xFF] - extra
            out.append((gid, x & 0xFFFFFFFF, r if r > lo else lo, (x >> 40) & _SNR_MASK, channel))
        return out

    def heard(self, d: SimDevice) -> bool:
        """Whether any gateway in range of the device is up."""
        return not self.down or any(g not in self.down for g, _ in self.radio[d.index].gateways)

    def _dedup_id(self) -> str:
        """A version-4 UUID, as ChirpStack's deduplicationId."""
        h = f"{(self.rng.getrandbits(128) & _UUID_CLEAR) | _UUID_V4:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    # JSON ---------------------------------------------------------------------------------------------------------
    def up(self, d: SimDevice, t: float, f_cnt: int, f_port: int, payload: bytes, obj: dict | None,
           extra_loss_db: float = 0.0) -> bytes:
        if self.fmt == "protobuf":
            return self._up_pb(d, t, f_cnt, f_port, payload, obj, extra_loss_db)
        radio = self.radio[d.index]
        rx = self._rx(d, extra_loss_db)
        tails = self._rx_tail[d.index]
        rx_json = ",".join(f'{{"gatewayId":"{g}","uplinkId":{u},{_RADIO_JSON[r][j]},"channel":{c},{tail}'
                           for (g, u, r, j, c), tail in zip(rx, tails, strict=False))
        obj_json = f',"object":{msgspec.json.encode(obj).decode()}' if obj is not None else ""
        freq = CHANNELS_HZ[rx[0][4]] if rx else CHANNELS_HZ[0]
        return (f'{{"deduplicationId":"{self._dedup_id()}","time":"{_iso(t)}","deviceInfo":'
                .encode() + self._json_info[d.index] +
                f',"devAddr":"{d.dev_addr}","adr":true,"dr":{radio.dr},"fCnt":{f_cnt},"fPort":{f_port},'
                f'"confirmed":false,"data":"{base64.b64encode(payload).decode()}"{obj_json},"rxInfo":[{rx_json}],'
                f'"txInfo":{{"frequency":{freq},"modulation":{{"lora":{{"bandwidth":{BANDWIDTH_HZ},'
                f'"spreadingFactor":{radio.sf},"codeRate":"CR_4_5"}}}}}},"regionConfigId":"{REGION}"}}'.encode())

    def status(self, d: SimDevice, t: float, n: int, battery: float | None) -> bytes:
        """A DevStatusAns as ChirpStack reports it: link margin, and battery unless mains-powered."""
        margin = round(self.radio[d.index].link_margin())
        dedup = self._dedup_id()
        if self.fmt == "protobuf":
            m = integration.StatusEvent(deduplication_id=dedup, margin=margin,
                                        external_power_source=battery is None,
                                        battery_level=round(battery, 1) if battery is not None else 0.0)
            m.time.CopyFrom(_ts(t))
            return self._pb_static[d.index]["status"] + m.SerializeToString()
        batt = ('"externalPowerSource":true,"batteryLevelUnavailable":false,"batteryLevel":0'
                if battery is None else
                f'"externalPowerSource":false,"batteryLevelUnavailable":false,"batteryLevel":{battery:.1f}')
        return (f'{{"deduplicationId":"{dedup}","time":"{_iso(t)}","deviceInfo":'.encode()
                + self._json_info[d.index] + f',"margin":{margin},{batt}}}'.encode())

    def join(self, d: SimDevice, t: float) -> bytes:
        dedup = self._dedup_id()
        if self.fmt == "protobuf":
            m = integration.JoinEvent(deduplication_id=dedup)
            m.time.CopyFrom(_ts(t))
            return self._pb_static[d.index]["join"] + m.SerializeToString()
        return (f'{{"deduplicationId":"{dedup}","time":"{_iso(t)}","deviceInfo":'.encode()
                + self._json_info[d.index] + f',"devAddr":"{d.dev_addr}","regionConfigId":"{REGION}"}}'.encode())

    # protobuf -----------------------------------------------------------------------------------------------------
    def _pb_statics(self, d: SimDevice, info: dict) -> dict[str, bytes]:
        di = integration.DeviceInfo(
            tenant_id=info["tenantId"], tenant_name=info["tenantName"], application_id=info["applicationId"],
            application_name=info["applicationName"], device_profile_id=info["deviceProfileId"],
            device_profile_name=info["deviceProfileName"], device_name=info["deviceName"], dev_eui=info["devEui"],
            device_class_enabled=common.DeviceClass.CLASS_A, tags=info["tags"])
        radio = self.radio[d.index]
        return {
            "up": integration.UplinkEvent(device_info=di, dev_addr=d.dev_addr, adr=True, dr=radio.dr,
                                          region_config_id=REGION).SerializeToString(),
            "status": integration.StatusEvent(device_info=di).SerializeToString(),
            "join": integration.JoinEvent(device_info=di, dev_addr=d.dev_addr,
                                          region_config_id=REGION).SerializeToString(),
        }

    def _up_pb(self, d: SimDevice, t: float, f_cnt: int, f_port: int, payload: bytes, obj: dict | None,
               extra_loss_db: float = 0.0) -> bytes:
        radio = self.radio[d.index]
        rx = self._rx(d, extra_loss_db)
        m = integration.UplinkEvent(deduplication_id=self._dedup_id(), f_cnt=f_cnt, f_port=f_port,
                                    data=payload)
        m.time.CopyFrom(_ts(t))
        for g, u, r, j, c in rx:
            ri = m.rx_info.add(gateway_id=g, uplink_id=u, rssi=r, snr=_RADIO_SNR[r][j], channel=c,
                               crc_status=gw.CRCStatus.CRC_OK)
            ri.location.latitude, ri.location.longitude = self._gw_pos[g]
            ri.metadata["region_config_id"] = REGION
            ri.metadata["region_common_name"] = REGION_COMMON_NAME
        tx = m.tx_info
        tx.frequency = CHANNELS_HZ[rx[0][4]] if rx else CHANNELS_HZ[0]
        lora = tx.modulation.lora
        lora.bandwidth, lora.spreading_factor, lora.code_rate = BANDWIDTH_HZ, radio.sf, gw.CodeRate.CR_4_5
        if obj is not None:
            s = struct_pb2.Struct()
            s.update(obj)
            m.object.CopyFrom(s)
        return self._pb_static[d.index]["up"] + m.SerializeToString()


GATEWAY_TOPIC = REGION + "/gateway/{gid}/{what}"


def gateway_conn(gid: str, online: bool, fmt: str = "json") -> tuple[str, bytes]:
    """The Gateway Bridge's retained connection state (ONLINE on connect, OFFLINE as its MQTT will)."""
    topic = GATEWAY_TOPIC.format(gid=gid, what="state/conn")
    if fmt == "protobuf":
        state = gw.ConnState.ONLINE if online else gw.ConnState.OFFLINE
        return topic, gw.ConnState(gateway_id=gid, state=state).SerializeToString()
    return topic, f'{{"gatewayId":"{gid}","state":"{"ONLINE" if online else "OFFLINE"}"}}'.encode()


def gateway_stats(gid: str, t: float, received: int, fmt: str = "json") -> tuple[str, bytes]:
    """The Gateway Bridge's periodic stats (every `stats_interval`)."""
    topic = GATEWAY_TOPIC.format(gid=gid, what="event/stats")
    if fmt == "protobuf":
        m = gw.GatewayStats(gateway_id=gid, rx_packets_received=received, rx_packets_received_ok=received)
        m.time.CopyFrom(_ts(t))
        return topic, m.SerializeToString()
    return topic, (f'{{"gatewayId":"{gid}","time":"{_iso(t)}","rxPacketsReceived":{received},'
                   f'"rxPacketsReceivedOk":{received},"txPacketsReceived":0,"txPacketsEmitted":0}}').encode()


def _ts(t: float) -> timestamp_pb2.Timestamp:
    sec = math.floor(t)
    return timestamp_pb2.Timestamp(seconds=sec, nanos=round((t - sec) * 1e9) % 1_000_000_000)
