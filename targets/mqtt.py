"""`edgeforge serve` / `edgeforge bridge`: a model's results in Home Assistant, over MQTT.

serve  DIR --mqtt mqtt://[user:pass@]broker[:1883] [--inputs DIR|FIFO|FILE|-] [--labels F]
       runs DIR/model.tflite on this Linux board through the device agent's interpreter code
       (runtime/agent/agent.py, loaded by path: the same runtime choice and kernels as
       `profile --target ssh://`) on a stream of inputs: a directory of .npy files, or a
       named pipe / file / stdin carrying .npy frames back to back.
bridge TARGET DIR --mqtt ...   the same for a microcontroller: the host sends each frame with
       targets.open_target(TARGET).infer() (qemu://, serial://, or any Linux target) and
       relays the result.

Home Assistant MQTT discovery: retained `homeassistant/sensor/<device_id>/<object>/config`
for the objects top_class, score and latency (µs), all sharing one `device` block and one
availability topic; the broker publishes our last will "offline" there if we vanish, we
publish "online" on every connect, and we announce the configs again whenever
`homeassistant/status` says "online" (HA restarted). Each result is one JSON message on the
state topic, which each sensor picks apart with its value_template.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import stat
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest

DISCOVERY_PREFIX = "homeassistant"
CONNECT_TIMEOUT = 15.0
SENSORS = {   # object id -> discovery fields besides the shared ones
    "top_class": {"name": "Top class", "value_template": "{{ value_json.top_class }}",
                  "icon": "mdi:label"},
    "score": {"name": "Score", "value_template": "{{ value_json.score }}",
              "state_class": "measurement", "icon": "mdi:percent"},
    "latency": {"name": "Latency", "value_template": "{{ value_json.latency_us }}",
                "unit_of_measurement": "µs", "state_class": "measurement",
                "icon": "mdi:timer-outline"},
}


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

def read_npy_frames(stream: BinaryIO) -> Iterator[np.ndarray]:
    """.npy frames back to back on a non-seekable stream (pipe, stdin), until EOF."""
    while True:
        head = stream.read(6)
        if not head:
            return
        if head != b"\x93NUMPY":
            raise EdgeforgeError("input stream: expected a .npy frame (\\x93NUMPY magic), got "
                                 f"{head!r}")
        major, _minor = stream.read(2)
        hlen_bytes = stream.read(2 if major == 1 else 4)
        hlen = int.from_bytes(hlen_bytes, "little")
        header = stream.read(hlen)
        try:
            d = ast.literal_eval(header.decode("latin1"))
            dtype, shape, fortran = np.dtype(d["descr"]), tuple(d["shape"]), d["fortran_order"]
        except (ValueError, KeyError, SyntaxError, TypeError, MemoryError) as e:
            raise EdgeforgeError(f"input stream: bad .npy header ({e})") from None
        n = int(np.prod(shape)) * dtype.itemsize
        data = b""
        while len(data) < n:
            chunk = stream.read(n - len(data))
            if not chunk:
                raise EdgeforgeError(f"input stream: frame truncated ({len(data)} of {n} bytes)")
            data += chunk
        a = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
        yield a


def iter_inputs(source: str, shape: list[int]) -> Iterator[tuple[str, np.ndarray]]:
    """(name, one sample) from a directory of .npy, a FIFO/file of frames, or '-' (stdin).

    A frame may hold one sample (the input shape) or several stacked on a leading axis."""
    def split(name: str, a: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
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
            try:
                a = np.load(f, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise EdgeforgeError(f"{f}: cannot read ({e})") from None
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


def result_state(outputs: list[np.ndarray], manifest: Manifest, labels: list[str] | None,
                 latency_us: float, frame: int, source: str) -> dict[str, Any]:
    """The state JSON: top class of output 0 and its (dequantized) score."""
    q = np.asarray(outputs[0]).reshape(-1)
    spec = manifest.outputs[0]
    values = q.astype(np.float64)
    if spec.scale:
        values = (values - (spec.zero_point or 0)) * spec.scale
    top = int(np.argmax(values))
    name = labels[top] if labels and top < len(labels) else str(top)
    return {"top_class": name, "class_index": top, "score": round(float(values[top]), 4),
            "latency_us": round(float(latency_us), 1), "frame": frame, "source": source}


# ---------------------------------------------------------------------------- publisher

def device_id_for(manifest: Manifest, given: str | None) -> str:
    raw = given or f"edgeforge_{manifest.name}_{manifest.model_sha256[:8]}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", raw)


class HaPublisher:
    """One MQTT connection that speaks Home Assistant discovery for one device."""

    def __init__(self, broker: BrokerUri, device_id: str, manifest: Manifest, where: str,
                 verbose: int = 0):
        import paho.mqtt.client as mqtt

        self.broker, self.device_id, self.verbose = broker, device_id, verbose
        base = f"edgeforge/{device_id}"
        self.availability, self.state = f"{base}/availability", f"{base}/state"
        from edgeforge.version import __version__
        self.device = {"identifiers": [device_id], "name": f"edgeforge {manifest.name}",
                       "model": f"{manifest.name} ({manifest.model_sha256[:12]}, {where})",
                       "sw_version": f"edgeforge {__version__}", "manufacturer": "edgeforge"}
        self._connected = threading.Event()
        self._error: str | None = None
        self.announcements = 0
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

    def config_topic(self, obj: str) -> str:
        return f"{DISCOVERY_PREFIX}/sensor/{self.device_id}/{obj}/config"

    def configs(self) -> dict[str, dict[str, Any]]:
        out = {}
        for obj, fields in SENSORS.items():
            out[self.config_topic(obj)] = {
                **fields, "unique_id": f"{self.device_id}_{obj}",
                "object_id": f"{self.device_id}_{obj}", "state_topic": self.state,
                "availability_topic": self.availability, "payload_available": "online",
                "payload_not_available": "offline", "device": self.device}
        return out

    def announce(self) -> None:
        for topic, cfg in self.configs().items():
            self.client.publish(topic, json.dumps(cfg), qos=1, retain=True)
        self.announcements += 1

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._error = f"broker refused the connection: {reason_code}"
            self._connected.set()
            return
        client.subscribe(f"{DISCOVERY_PREFIX}/status", qos=1)
        self.announce()
        client.publish(self.availability, "online", qos=1, retain=True)
        self._connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == f"{DISCOVERY_PREFIX}/status" and msg.payload.strip() == b"online":
            self.announce()     # Home Assistant restarted: it forgot non-retained state

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.verbose and reason_code.is_failure:
            print(f"edgeforge: mqtt disconnected ({reason_code}); reconnecting", file=sys.stderr)

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
        self.client.publish(self.state, json.dumps(state), qos=1)

    def close(self) -> None:
        info = self.client.publish(self.availability, "offline", qos=1, retain=True)
        try:
            info.wait_for_publish(timeout=5)
        except (RuntimeError, ValueError):
            pass
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------------------- the loops

def load_agent() -> Any:
    """runtime/agent/agent.py as a module: the board-side interpreter code, loaded by path."""
    from edgeforge.targets.local import AGENT_SRC

    spec = importlib.util.spec_from_file_location("edgeforge_device_agent",
                                                  AGENT_SRC / "agent.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _stream(pub: HaPublisher, frames: Iterator[tuple[str, np.ndarray]],
            infer, manifest: Manifest, labels: list[str] | None, verbose: int) -> int:
    n = 0
    for name, x in frames:
        t0 = time.perf_counter()
        outs, latency = infer(x)
        latency = latency if latency is not None else (time.perf_counter() - t0) * 1e6
        state = result_state(outs, manifest, labels, latency, n, name)
        pub.publish(state)
        if verbose:
            print(json.dumps(state), file=sys.stderr)
        n += 1
    return n


def serve(artifact: Path, mqtt_uri: str, inputs: str = "-", labels: str | None = None,
          device_id: str | None = None, threads: int = 1, verbose: int = 0) -> int:
    """Run DIR/model.tflite here on every input frame and publish each result; -> frames."""
    manifest = Manifest.load(artifact)
    manifest.check_model(artifact)
    agent = load_agent()
    try:
        name, version, interp, *_ = agent.open_runtime(str(artifact / "model.tflite"), threads)
    except agent.AgentError as e:
        raise EdgeforgeError(str(e)) from None

    def infer(x: np.ndarray) -> tuple[list[np.ndarray], float]:
        interp.set([x])
        t0 = time.perf_counter()
        interp.it.invoke()
        dt = (time.perf_counter() - t0) * 1e6
        return interp.get(), dt

    return _run(manifest, mqtt_uri, inputs, labels, device_id, f"{name} {version}", infer,
                verbose)


def bridge(target_uri: str, artifact: Path, mqtt_uri: str, inputs: str = "-",
           labels: str | None = None, device_id: str | None = None, verbose: int = 0,
           **target_options: Any) -> int:
    """Relay a device's results (targets.open_target(uri).infer) to MQTT; -> frames."""
    from edgeforge.targets import open_target

    manifest = Manifest.load(artifact)
    manifest.check_model(artifact)
    with open_target(target_uri, verbose=verbose, **target_options) as t:
        t.open(artifact, manifest)
        return _run(manifest, mqtt_uri, inputs, labels, device_id, target_uri,
                    lambda x: (t.infer([x]), None), verbose)


def _run(manifest: Manifest, mqtt_uri: str, inputs: str, labels: str | None,
         device_id: str | None, where: str, infer, verbose: int) -> int:
    broker = parse_broker(mqtt_uri)
    names = load_labels(labels)
    pub = HaPublisher(broker, device_id_for(manifest, device_id), manifest, where, verbose)
    pub.connect()
    print(f"edgeforge: publishing {manifest.name} results to {broker} as device "
          f"{pub.device_id} (state topic {pub.state})", file=sys.stderr)
    try:
        n = _stream(pub, iter_inputs(inputs, manifest.inputs[0].shape), infer, manifest, names,
                    verbose)
    finally:
        pub.close()
    print(f"edgeforge: {n} frame(s) published", file=sys.stderr)
    return n


def cmd_serve(args: Any) -> int:
    serve(Path(args.dir), args.mqtt, args.inputs, args.labels, args.device_id,
          verbose=getattr(args, "verbose", 0))
    return 0


def cmd_bridge(args: Any) -> int:
    bridge(args.target, Path(args.dir), args.mqtt, args.inputs, args.labels, args.device_id,
           verbose=getattr(args, "verbose", 0))
    return 0
