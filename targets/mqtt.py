"""`edgeforge serve` / `edgeforge bridge`: a model's results in Home Assistant, over MQTT.

serve  DIR --mqtt mqtt://[user:pass@]broker[:1883] [--inputs DIR|FIFO|FILE|-] [--labels F]
       runs DIR/model.tflite on this Linux board through the device agent's interpreter code
       (runtime/agent/agent.py, loaded by path: the same runtime choice and kernels as
       `profile --target ssh://`) on a stream of inputs: a directory of .npy files, or a
       named pipe / file / stdin carrying .npy frames back to back.
bridge TARGET DIR --mqtt ...   the same for a microcontroller: the host sends each frame with
       targets.open_target(TARGET).infer() (qemu://, serial://, or any Linux target) and
       relays the result.

Home Assistant MQTT discovery, device-based (HA 2024.11+): one retained
`homeassistant/device/<device_id>/config` holding `device`, `origin` and `cmps`, one component
per entity, each with `p` (platform), `unique_id` and `default_entity_id` (`object_id` was
deprecated in HA 2025.10 and is ignored since 2026.4). The device id is board + model, so two
boards running one model, or `serve` and `bridge`, are separate devices. The entities fit the
task (docs/home-assistant.md lists them): a classifier gets its class and confidence (%), an
anomaly model (autoencoder) its reconstruction error and a problem binary_sensor against
--threshold, a regressor its values; latency is a duration in µs, and `bridge` adds the
host's round trip as its own sensor. All share one state topic and one availability topic:
the broker publishes our last will "offline" there if we vanish, we publish "online" on every
connect. When `homeassistant/status` says "online" (HA restarted) we announce again, at most
once per REDISCOVERY_S however many births arrive, then repeat the last state.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from edgeforge.arrays import read_npy
from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.runner import check_inputs

log = logging.getLogger(__name__)     # progress; the CLI shows edgeforge.* records on stderr

DISCOVERY_PREFIX = "homeassistant"
CONNECT_TIMEOUT = 15.0
REDISCOVERY_S = 10.0   # at most one re-announcement per window; a flood gets one trailing one
TASKS = ("classifier", "anomaly", "regressor")
MAX_VALUES = 16        # a regressor publishes at most this many values as sensors
ORIGIN_URL = "https://github.com/edgeforge/edgeforge"


# ---------------------------------------------------------------------------- broker URI

@dataclass
class BrokerUri:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    def __str__(self) -> str:    # never shows the password
        user = f"{self.username}:***@" if self.password else (
            f"{self.username}@" if self.username else "")
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker(uri: str) -> BrokerUri:
    p = urlparse(uri)
    if p.scheme not in ("mqtt", "mqtts") or not p.hostname:
        raise EdgeforgeError("bad --mqtt URI: use mqtt://[user:pass@]broker[:1883] "
                             "(or mqtts:// for TLS)")
    try:
        port = p.port or (8883 if p.scheme == "mqtts" else 1883)
    except ValueError:
        raise EdgeforgeError("bad port in --mqtt URI") from None
    return BrokerUri(p.hostname, port, unquote(p.username) if p.username else None,
                     unquote(p.password) if p.password else None, p.scheme == "mqtts")


# ---------------------------------------------------------------------------- inputs

MAX_FRAME_BYTES = 256 << 20    # one frame on the input stream; a header claiming more is bad


def read_npy_frames(stream: BinaryIO) -> Iterator[np.ndarray]:
    """.npy frames back to back on a non-seekable stream (pipe, stdin), until EOF.

    numpy's own header reader (no pickle, literals only); then the frame must hold plain
    numbers (no object, string or structured dtype) and a shape of non-negative ints whose
    bytes fit MAX_FRAME_BYTES, before a byte of data is read."""
    from numpy.lib import format as npformat

    k = 0
    while True:
        where = f"input stream frame {k}"
        head = stream.read(6)
        if not head:
            return
        if head != b"\x93NUMPY":
            raise EdgeforgeError(f"{where}: expected a .npy frame (\\x93NUMPY magic), got "
                                 f"{head!r}")
        version = tuple(stream.read(2))
        readers = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}
        if version not in readers:
            raise EdgeforgeError(f"{where}: .npy format version {version} not supported")
        try:
            shape, fortran, dtype = readers[version](stream)
        except (ValueError, TypeError, SyntaxError, EOFError, OverflowError, MemoryError) as e:
            raise EdgeforgeError(f"{where}: bad .npy header ({e})") from None
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
            raise EdgeforgeError(f"{where}: dtype {dtype} is not numeric (int or float)")
        if not all(type(d) is int and d >= 0 for d in shape):
            raise EdgeforgeError(f"{where}: shape {shape} is not a tuple of sizes")
        n = dtype.itemsize
        for d in shape:
            n *= d
        if n > MAX_FRAME_BYTES:
            raise EdgeforgeError(f"{where}: shape {list(shape)} is {n:,} bytes, more than "
                                 f"{MAX_FRAME_BYTES >> 20} MiB")
        data = bytearray()
        while len(data) < n:
            chunk = stream.read(n - len(data))
            if not chunk:
                raise EdgeforgeError(f"{where}: truncated ({len(data)} of {n} bytes)")
            data += chunk
        yield np.frombuffer(bytes(data), dtype).reshape(shape, order="F" if fortran else "C")
        k += 1


def iter_inputs(source: str, shape: list[int], perm: list[int] | None = None
                ) -> Iterator[tuple[str, np.ndarray]]:
    """(name, one sample) from a directory of .npy, a FIFO/file of frames, or '-' (stdin).

    A frame may hold one sample (the input shape) or several stacked on a leading axis;
    `perm` (manifest extra.onnx_layout) also takes frames in the ONNX model's own layout."""
    def split(name: str, a: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        if perm and list(a.shape) != list(shape) and a.ndim in (len(perm), len(perm) + 1):
            lead = a.ndim - len(perm)
            t = a.transpose(*range(lead), *(lead + p for p in perm))
            if list(t.shape[lead:]) == list(shape):
                a = np.ascontiguousarray(t)
        if list(a.shape) == list(shape):
            yield name, a
        elif list(a.shape[1:]) == list(shape):
            for i, s in enumerate(a):
                yield f"{name}[{i}]", s
        else:
            raise EdgeforgeError(f"{name}: shape {list(a.shape)}, expected {shape} or "
                                 f"[N, *{shape}]")

    if source == "-":
        for k, a in enumerate(read_npy_frames(sys.stdin.buffer)):
            yield from split(f"stdin#{k}", a)
        return
    p = Path(source)
    if p.is_dir():
        files = sorted(p.glob("*.npy"))
        if not files:
            raise EdgeforgeError(f"{p}: no .npy files")
        for f in files:
            a = read_npy(f)          # the one .npy reader of run -i, --calib, profile --inputs
            if isinstance(a, dict):
                raise EdgeforgeError(f"{f}: a .npz archive named .npy; save one array per file")
            yield from split(f.name, a)
        return
    if not p.exists():
        raise EdgeforgeError(f"{p}: no such input directory, pipe or file")
    kind = "fifo" if stat.S_ISFIFO(p.stat().st_mode) else "file"
    with open(p, "rb") as f:
        for k, a in enumerate(read_npy_frames(f)):
            yield from split(f"{p.name}#{k}" if kind == "fifo" else f"{p.name}[{k}]", a)


def load_labels(path: str | None) -> list[str] | None:
    if not path:
        return None
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise EdgeforgeError(f"{path}: cannot read labels ({e})") from None
    return [ln.strip() for ln in lines if ln.strip()]


def _dequantize(a: np.ndarray, spec) -> np.ndarray:
    values = np.asarray(a).reshape(-1).astype(np.float64)
    if spec.scale:
        values = (values - (spec.zero_point or 0)) * spec.scale
    return values


def task_of(manifest: Manifest, given: str | None = None, labels: list[str] | None = None) -> str:
    """classifier | anomaly | regressor: as given, else from the model's outputs.

    An output shaped like the input is an autoencoder (anomaly); a softmax (last op, or the
    int8 softmax encoding scale 1/256, zero point -128, or the int16 one 1/32768, 0) or a
    label file is a classifier."""
    if given:
        if given not in TASKS:
            raise EdgeforgeError(f"--task {given!r}: use one of {', '.join(TASKS)}")
        return given
    out, inp = manifest.outputs[0], manifest.inputs[0]
    if list(out.shape) == list(inp.shape) and int(np.prod(out.shape)) > 1:
        return "anomaly"
    softmax = (manifest.ops[-1:] and "SOFTMAX" in manifest.ops[-1].upper()) or (
        out.dtype == "int8" and out.zero_point == -128 and abs((out.scale or 0) - 1 / 256) < 1e-9
    ) or (out.dtype == "int16" and out.zero_point == 0 and abs((out.scale or 0) - 1 / 32768) < 1e-12)
    if labels or (softmax and int(np.prod(out.shape)) > 1):
        return "classifier"
    return "regressor"


def result_state(outputs: list[np.ndarray], manifest: Manifest, labels: list[str] | None,
                 latency_us: float | None, frame: int, source: str, *, task: str = "classifier",
                 inputs: list[np.ndarray] | None = None, threshold: float | None = None,
                 round_trip_us: float | None = None) -> dict[str, Any]:
    """The state JSON for one frame; its keys are what the discovery templates read."""
    values = _dequantize(outputs[0], manifest.outputs[0])
    state: dict[str, Any] = {}
    if task == "classifier":
        top = int(np.argmax(values))
        state["top_class"] = labels[top] if labels and top < len(labels) else str(top)
        state["class_index"] = top
        state["score"] = round(float(values[top]), 4)
        state["confidence"] = round(100.0 * min(max(float(values[top]), 0.0), 1.0), 1)
    elif task == "anomaly":
        x = _dequantize(inputs[0], manifest.inputs[0]) if inputs else np.zeros_like(values)
        err = float(np.mean((values - x) ** 2)) if x.size == values.size else float("nan")
        state["anomaly_score"] = round(err, 6)
        if threshold is not None:
            state["anomaly"] = "ON" if err > threshold else "OFF"
    else:
        state["values"] = [round(float(v), 6) for v in values[:MAX_VALUES]]
    if latency_us is not None:
        state["latency_us"] = round(float(latency_us), 1)
    if round_trip_us is not None:
        state["round_trip_us"] = round(float(round_trip_us), 1)
    state.update(frame=frame, source=source)
    return state


def board_of(where: str) -> str:
    """The board part of the default device id: this host for serve, the target for bridge."""
    import socket

    p = urlparse(where)
    if p.scheme == "serial":
        return parse_qs(p.query).get("board", [Path(p.path).name])[-1]
    if p.scheme in ("qemu", "labgrid"):
        return p.netloc or p.path.strip("/")
    if p.scheme == "ssh" and p.hostname:
        return p.hostname if not p.port or p.port == 22 else f"{p.hostname}_{p.port}"
    return socket.gethostname()


def device_id_for(manifest: Manifest, given: str | None, board: str = "") -> str:
    """Board + model (name and hash): one device per board and model in Home Assistant."""
    raw = given or f"edgeforge_{board or board_of('local')}_{manifest.name}_" \
                   f"{manifest.model_sha256[:8]}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", raw)


def components(device_id: str, task: str, manifest: Manifest, *, labels: bool,
               threshold: float | None, round_trip: bool) -> dict[str, dict[str, Any]]:
    """The `cmps` of the device discovery payload: component key -> platform config."""
    def ent(key: str, platform: str, name: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        uid = f"{device_id}_{key}"
        return key, {"p": platform, "name": name, "unique_id": uid,
                     "default_entity_id": f"{platform}.{uid}".lower(), **fields}

    measurement = {"state_class": "measurement"}
    out: list[tuple[str, dict[str, Any]]] = []
    if task == "classifier":
        out.append(ent("class", "sensor", "Class", icon="mdi:label",
                       value_template="{{ value_json.top_class }}"))
        out.append(ent("confidence", "sensor", "Confidence", unit_of_measurement="%",
                       suggested_display_precision=1, icon="mdi:percent",
                       value_template="{{ value_json.confidence }}", **measurement))
    elif task == "anomaly":
        out.append(ent("anomaly_score", "sensor", "Anomaly score", icon="mdi:chart-bell-curve",
                       value_template="{{ value_json.anomaly_score }}",
                       suggested_display_precision=4, **measurement))
        if threshold is not None:
            out.append(ent("anomaly", "binary_sensor", "Anomaly", device_class="problem",
                           value_template="{{ value_json.anomaly }}", payload_on="ON",
                           payload_off="OFF"))
    else:
        n = min(int(np.prod(manifest.outputs[0].shape)), MAX_VALUES)
        for i in range(n):
            out.append(ent(f"value_{i}", "sensor", f"Value {i}" if n > 1 else "Value",
                           value_template=f"{{{{ value_json['values'][{i}] }}}}",
                           suggested_display_precision=3, **measurement))
    duration = {"device_class": "duration", "unit_of_measurement": "µs",
                "suggested_display_precision": 0, "entity_category": "diagnostic", **measurement}
    out.append(ent("latency", "sensor", "Inference latency",
                   value_template="{{ value_json.latency_us }}", **duration))
    if round_trip:
        out.append(ent("round_trip", "sensor", "Host round trip",
                       value_template="{{ value_json.round_trip_us }}", **duration))
    return dict(out)


class HaPublisher:
    """One MQTT connection that speaks Home Assistant device-based discovery for one device."""

    def __init__(self, broker: BrokerUri, device_id: str, manifest: Manifest, where: str,
                 verbose: int = 0, *, task: str = "classifier", board: str = "",
                 labels: bool = False, threshold: float | None = None, round_trip: bool = False,
                 rediscovery_s: float = REDISCOVERY_S):
        import paho.mqtt.client as mqtt

        self.broker, self.device_id, self.verbose = broker, device_id, verbose
        base = f"edgeforge/{device_id}"
        self.availability, self.state = f"{base}/availability", f"{base}/state"
        from edgeforge.version import __version__
        self.device = {"identifiers": [device_id],
                       "name": f"{manifest.name} on {board}" if board else manifest.name,
                       "model": manifest.name, "model_id": manifest.model_sha256[:12],
                       "hw_version": where, "sw_version": f"edgeforge {__version__}",
                       "manufacturer": "edgeforge"}
        self.origin = {"name": "edgeforge", "sw_version": __version__, "support_url": ORIGIN_URL}
        self.cmps = components(device_id, task, manifest, labels=labels, threshold=threshold,
                               round_trip=round_trip)
        self.legacy_id = f"edgeforge_{manifest.name}_{manifest.model_sha256[:8]}"
        self._connected = threading.Event()
        self._error: str | None = None
        self.announcements = 0
        self.rediscovery_s = rediscovery_s
        self._lock = threading.Lock()
        self._last_announce = float("-inf")
        self._pending: threading.Timer | None = None
        self._last_state: str | None = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"edgeforge-{device_id}-{id(self) & 0xffff:x}")
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self.client.tls_set()
        self.client.will_set(self.availability, "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    @property
    def config_topic(self) -> str:
        return f"{DISCOVERY_PREFIX}/device/{self.device_id}/config"

    def config(self) -> dict[str, Any]:
        """The device discovery payload (full key names; HA also accepts the abbreviations)."""
        return {"device": self.device, "origin": self.origin, "cmps": self.cmps,
                "state_topic": self.state, "availability_topic": self.availability,
                "payload_available": "online", "payload_not_available": "offline", "qos": 1}

    def announce(self) -> None:
        with self._lock:
            self._last_announce = time.monotonic()
            self._pending = None
        self.client.publish(self.config_topic, json.dumps(self.config()), qos=1, retain=True)
        self.announcements += 1
        if self._last_state is not None:     # HA wants a state after each (re)discovery
            self.client.publish(self.state, self._last_state, qos=1)

    def _rediscover(self) -> None:
        """Announce now, or once at the end of the window if we announced within it."""
        with self._lock:
            wait = self._last_announce + self.rediscovery_s - time.monotonic()
            if wait > 0:
                if self._pending is None:
                    self._pending = threading.Timer(wait, self.announce)
                    self._pending.daemon = True
                    self._pending.start()
                return
        self.announce()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._error = f"broker refused the connection: {reason_code}"
            self._connected.set()
            return
        client.subscribe(f"{DISCOVERY_PREFIX}/status", qos=1)
        if not self._connected.is_set():
            # the per-entity configs edgeforge published before 0.2 under the old default id
            for obj in ("top_class", "score", "latency"):
                client.publish(f"{DISCOVERY_PREFIX}/sensor/{self.legacy_id}/{obj}/config", b"",
                               qos=1, retain=True)
        self.announce()
        client.publish(self.availability, "online", qos=1, retain=True)
        self._connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == f"{DISCOVERY_PREFIX}/status" and msg.payload.strip() == b"online":
            self._rediscover()     # Home Assistant restarted: it forgot non-retained state

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.verbose and reason_code.is_failure:
            log.warning(f"edgeforge: mqtt disconnected ({reason_code}); reconnecting")

    def connect(self) -> None:
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except OSError as e:
            raise EdgeforgeError(f"cannot reach MQTT broker {self.broker}: {e}") from None
        self.client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT):
            self.client.loop_stop()
            raise EdgeforgeError(f"MQTT broker {self.broker} did not answer within "
                                 f"{CONNECT_TIMEOUT:.0f} s")
        if self._error:
            self.client.loop_stop()
            raise EdgeforgeError(f"{self.broker}: {self._error}")

    def publish(self, state: dict[str, Any]) -> None:
        self._last_state = json.dumps(state)
        self.client.publish(self.state, self._last_state, qos=1)

    def close(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
        info = self.client.publish(self.availability, "offline", qos=1, retain=True)
        try:
            info.wait_for_publish(timeout=5)
        except (RuntimeError, ValueError):
            pass
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------------------- the loops

@contextlib.contextmanager
def _without_runtime_banner() -> Iterator[None]:
    """LiteRT's C++ writes 'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.' straight
    to fd 2 when the interpreter is made: catch fd 2 around that, drop the banner, pass on
    anything else it said."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            rest = [ln for ln in tmp.read().decode(errors="replace").splitlines()
                    if ln.strip() and "XNNPACK delegate" not in ln]
            if rest:
                sys.stderr.write("\n".join(rest) + "\n")


def load_agent() -> Any:
    """runtime/agent/agent.py as a module: the board-side interpreter code, loaded by path."""
    from edgeforge.targets.agent import AGENT_SRC

    spec = importlib.util.spec_from_file_location("edgeforge_device_agent",
                                                  AGENT_SRC / "agent.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


@dataclass
class Feed:
    """How serve/bridge describe what they publish."""
    labels: list[str] | None
    task: str
    threshold: float | None


def _stream(pub: HaPublisher, frames: Iterator[tuple[str, np.ndarray]], infer,
            manifest: Manifest, feed: Feed, verbose: int) -> int:
    n = 0
    for name, x in frames:
        # the one input check of run/profile: a float frame for an int8 input is refused
        # with the quantization formula, never cast with astype
        [x] = check_inputs(manifest.inputs, [x], name,       # ONNX NCHW frames too
                           manifest.extra.get("onnx_layout"))
        outs, latency, round_trip = infer(x)
        state = result_state(outs, manifest, feed.labels, latency, n, name, task=feed.task,
                             inputs=[x], threshold=feed.threshold, round_trip_us=round_trip)
        pub.publish(state)
        if verbose:
            log.info(json.dumps(state))
        n += 1
    return n


def serve(artifact: Path, mqtt_uri: str, inputs: str = "-", labels: str | None = None,
          device_id: str | None = None, threads: int = 1, verbose: int = 0, *,
          task: str | None = None, threshold: float | None = None) -> int:
    """Run DIR/model.tflite here on every input frame and publish each result; -> frames."""
    manifest = Manifest.load(artifact)
    manifest.check_model(artifact)
    agent = load_agent()
    try:
        with _without_runtime_banner():
            name, version, interp, *_ = agent.open_runtime(str(artifact / "model.tflite"),
                                                           threads)
    except agent.AgentError as e:
        raise EdgeforgeError(str(e)) from None

    def infer(x: np.ndarray) -> tuple[list[np.ndarray], float, None]:
        interp.set([x])
        t0 = time.perf_counter()
        interp.it.invoke()
        dt = (time.perf_counter() - t0) * 1e6
        return interp.get(), dt, None      # on this board: its own time is the whole story

    return _run(manifest, mqtt_uri, inputs, labels, device_id, f"{name} {version}",
                board_of("local"), infer, verbose, task, threshold, round_trip=False)


def bridge(target_uri: str, artifact: Path, mqtt_uri: str, inputs: str = "-",
           labels: str | None = None, device_id: str | None = None, verbose: int = 0, *,
           task: str | None = None, threshold: float | None = None,
           **target_options: Any) -> int:
    """Relay a device's results (targets.open_target(uri).infer) to MQTT; -> frames.

    latency_us is the device's own time for the inference (cycle counter, or the agent's
    timer); round_trip_us is what the host waited, transfers included."""
    from edgeforge.targets import open_target

    manifest = Manifest.load(artifact)
    manifest.check_model(artifact)
    with open_target(target_uri, verbose=verbose, **target_options) as t:
        t.open(artifact, manifest)

        def infer(x: np.ndarray) -> tuple[list[np.ndarray], float | None, float]:
            t0 = time.perf_counter()
            outs = t.infer([x])
            rtt = (time.perf_counter() - t0) * 1e6
            return outs, getattr(t, "last_latency_us", None), rtt

        return _run(manifest, mqtt_uri, inputs, labels, device_id, target_uri,
                    board_of(target_uri), infer, verbose, task, threshold, round_trip=True)


def _run(manifest: Manifest, mqtt_uri: str, inputs: str, labels: str | None,
         device_id: str | None, where: str, board: str, infer, verbose: int,
         task: str | None, threshold: float | None, *, round_trip: bool) -> int:
    broker = parse_broker(mqtt_uri)
    names = load_labels(labels)
    feed = Feed(names, task_of(manifest, task, names), threshold)
    if feed.task == "anomaly" and threshold is None:
        log.warning("edgeforge: anomaly model without --threshold: publishing the score only "
                    "(no binary_sensor)")
    pub = HaPublisher(broker, device_id_for(manifest, device_id, board), manifest, where,
                      verbose, task=feed.task, board=board, labels=bool(names),
                      threshold=threshold, round_trip=round_trip)
    pub.connect()
    log.info(f"edgeforge: publishing {manifest.name} results ({feed.task}) to {broker} as "
             f"device {pub.device_id} (state topic {pub.state})")
    try:
        perm = (manifest.extra.get("onnx_layout") or {}).get(manifest.inputs[0].name)
        n = _stream(pub, iter_inputs(inputs, manifest.inputs[0].shape, perm), infer, manifest,
                    feed, verbose)
    finally:
        pub.close()
    log.info(f"edgeforge: {n} frame(s) published")
    return n
