"""`edgeforge serve` / `bridge` against a real Mosquitto broker on loopback."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.targets.mqtt import iter_inputs, parse_broker, read_npy_frames
from tests.conftest import require
from tests.targets._ha_schema import check_device_discovery
from tests.targets._servers import compile_fixture, make_dir, mosquitto, sample_inputs  # noqa: F401

LABELS = ["silence", "unknown", "yes", "no", "up", "down", "left", "right", "on", "off", "stop",
          "go"]


class Listener:
    """A subscriber that records every (topic, payload, retain) it sees."""

    def __init__(self, port: int, topics: list[str]):
        import paho.mqtt.client as mqtt

        self.msgs: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.on_message = lambda c, u, m: self._add(m)
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        self.c.subscribe([(t, 1) for t in topics])
        assert ready.wait(10), "subscription not acknowledged"

    def _add(self, m) -> None:
        with self.lock:
            self.msgs.append((m.topic, m.payload, bool(m.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.msgs if t == topic]

    def topics(self) -> set[str]:
        with self.lock:
            return {t for t, _, _ in self.msgs}

    def wait(self, pred, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out; saw topics {sorted({t for t, _, _ in self.msgs})}")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def open_fifo_writer(fifo: Path, proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """Open a FIFO for writing without blocking forever if the reader never comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.set_blocking(fd, True)
            return fd
        except OSError:          # ENXIO: no reader yet
            if proc.poll() is not None:
                raise AssertionError(f"reader exited: {proc.stderr.read().decode()}") from None
            time.sleep(0.05)
    raise AssertionError("reader never opened the FIFO")


def host_top(model: Path, x: np.ndarray, ref: bool = False) -> int:
    """Host argmax with the same kernels: default (serve) or reference (C, litert numerics)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.BUILTIN_REF if ref else OpResolverType.AUTO
    it = Interpreter(model_path=str(model), experimental_op_resolver_type=kind)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return int(np.argmax(it.get_tensor(it.get_output_details()[0]["index"])))


@pytest.fixture(scope="module")
def kws(tmp_path_factory) -> Path:
    return make_dir("kws_ds_cnn_int8.tflite", tmp_path_factory.mktemp("mqtt") / "kws")


def test_serve_publishes_discovery_state_and_last_will(mosquitto, kws, tmp_path):  # noqa: F811
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    dev = "kws_test"
    lis = Listener(mosquitto.port, ["homeassistant/#", f"edgeforge/{dev}/#"])
    uri = f"mqtt://tester:s3cret-pw@127.0.0.1:{mosquitto.port}"
    err = open(tmp_path / "serve.err", "wb")  # noqa: SIM115 -- closed in finally
    proc = subprocess.Popen([sys.executable, "-m", "edgeforge.cli", "serve", str(kws), "--mqtt", uri,
                             "--inputs", "-", "--labels", str(labels), "--device-id", dev],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    try:
        avail, state = f"edgeforge/{dev}/availability", f"edgeforge/{dev}/state"
        lis.wait(lambda: lis.on(avail)[-1:] == [b"online"])
        topic = f"homeassistant/device/{dev}/config"
        lis.wait(lambda: lis.on(topic))
        cfg = json.loads(lis.on(topic)[-1])
        check_device_discovery(cfg)
        assert cfg["state_topic"] == state and cfg["availability_topic"] == avail
        assert cfg["device"]["identifiers"] == [dev]
        assert {"name", "model", "sw_version", "manufacturer"} <= set(cfg["device"])
        assert set(cfg["cmps"]) == {"class", "confidence", "latency"}
        assert cfg["cmps"]["confidence"]["unit_of_measurement"] == "%"
        lat = cfg["cmps"]["latency"]
        assert lat["device_class"] == "duration" and lat["unit_of_measurement"] == "µs"
        assert lat["value_template"] == "{{ value_json.latency_us }}"
        assert not [t for t in lis.topics() if t.startswith("homeassistant/sensor/") and
                    lis.on(t)[-1]], "no per-entity configs any more"
        late = Listener(mosquitto.port, [f"homeassistant/device/{dev}/#"])   # joins afterwards
        try:
            late.wait(lambda: len(late.msgs) >= 1)
            assert [t for t, _, r in late.msgs if r] == [topic], "retained"
        finally:
            late.close()

        x = sample_inputs(Manifest.load(kws), 2)
        proc.stdin.write(npy_bytes(x[0]) + npy_bytes(x[1:2]))   # one sample, then a batch of 1
        proc.stdin.flush()
        lis.wait(lambda: len(lis.on(state)) >= 2)
        states = [json.loads(p) for p in lis.on(state)]
        for k, s in enumerate(states):
            top = host_top(kws / "model.tflite", x[k])
            assert s["class_index"] == top and s["top_class"] == LABELS[top]
            assert 0.0 <= s["score"] <= 1.0 and s["latency_us"] > 0 and s["frame"] == k
            assert s["confidence"] == round(100 * s["score"], 1)
            assert "round_trip_us" not in s      # serve: the board's own time is all there is

        # Home Assistant restarts: the config is announced again, then the last state
        before, states_before = len(lis.on(topic)), len(lis.on(state))
        lis.c.publish("homeassistant/status", "online", qos=1)
        lis.wait(lambda: len(lis.on(topic)) > before and len(lis.on(state)) > states_before)

        proc.kill()                                  # vanish without a goodbye
        proc.wait(timeout=10)
        lis.wait(lambda: lis.on(avail)[-1:] == [b"offline"])   # the broker's last will
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        lis.close()
        err.close()
    log = (tmp_path / "serve.err").read_bytes()
    assert b"s3cret-pw" not in log and b"tester:***@" in log


def test_serve_directory_then_clean_offline(mosquitto, kws, tmp_path):  # noqa: F811
    frames = tmp_path / "frames"
    frames.mkdir()
    x = sample_inputs(Manifest.load(kws), 3, seed=3)
    np.save(frames / "a.npy", x[0])
    np.save(frames / "b.npy", x[1:])                  # [2, *shape]: two samples
    dev = "kws_dir"
    lis = Listener(mosquitto.port, [f"edgeforge/{dev}/#"])
    try:
        r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "serve", str(kws), "--mqtt",
                            mosquitto.uri, "--inputs", str(frames), "--device-id", dev],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        assert "3 frame(s) published" in r.stderr
        lis.wait(lambda: len(lis.on(f"edgeforge/{dev}/state")) == 3)
        lis.wait(lambda: lis.on(f"edgeforge/{dev}/availability")[-1:] == [b"offline"])
        sources = [json.loads(p)["source"] for p in lis.on(f"edgeforge/{dev}/state")]
        assert sources == ["a.npy", "b.npy[0]", "b.npy[1]"]
    finally:
        lis.close()


def test_bridge_relays_a_target(mosquitto, kws, tmp_path):  # noqa: F811
    """bridge drives any Target through open_target(uri).infer(); `local` stands in here."""
    fifo = tmp_path / "frames.fifo"
    os.mkfifo(fifo)
    dev = "kws_bridge"
    lis = Listener(mosquitto.port, [f"edgeforge/{dev}/#", f"homeassistant/device/{dev}/#"])
    x = sample_inputs(Manifest.load(kws), 2, seed=5)
    proc = subprocess.Popen([sys.executable, "-m", "edgeforge.cli", "bridge",
                             f"local://?dir={tmp_path / 'base'}", str(kws), "--mqtt", mosquitto.uri,
                             "--inputs", str(fifo), "--device-id", dev],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        fd = open_fifo_writer(fifo, proc)             # a named pipe of .npy frames
        with os.fdopen(fd, "wb") as f:
            f.write(npy_bytes(x))
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lis.wait(lambda: len(lis.on(f"edgeforge/{dev}/state")) == 2)
        states = [json.loads(p) for p in lis.on(f"edgeforge/{dev}/state")]
        got = [st["class_index"] for st in states]
        assert got == [host_top(kws / "model.tflite", s, ref=True) for s in x]  # target: REF
        for st in states:     # the agent's own time, and the host's wait around it
            assert 0 < st["latency_us"] < st["round_trip_us"]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        lis.close()


def test_bridge_qemu_microcontroller(mosquitto, tmp_path):  # noqa: F811
    """A Cortex-M4 under QEMU runs the generated C; the host relays each result."""
    require("qemu-system-arm", "arm-none-eabi-gcc")
    d = compile_fixture("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    frames = tmp_path / "frames"
    frames.mkdir()
    x = sample_inputs(Manifest.load(d), 2, seed=11)
    np.save(frames / "x.npy", x)
    dev = "kws_qemu"
    lis = Listener(mosquitto.port, [f"edgeforge/{dev}/#", f"homeassistant/device/{dev}/#"])
    try:
        r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "bridge", "qemu://mps2-an386",
                            str(d), "--mqtt", mosquitto.uri, "--inputs", str(frames),
                            "--device-id", dev], capture_output=True, text=True, timeout=300,
                           check=False)
        assert r.returncode == 0, r.stderr
        lis.wait(lambda: len(lis.on(f"edgeforge/{dev}/state")) == 2)
        states = [json.loads(p) for p in lis.on(f"edgeforge/{dev}/state")]
        assert [st["class_index"] for st in states] == [host_top(d / "model.tflite", s, ref=True)
                                                        for s in x]
        cfg = json.loads(lis.on(f"homeassistant/device/{dev}/config")[-1])
        check_device_discovery(cfg)
        assert cfg["device"]["hw_version"] == "qemu://mps2-an386"
        assert cfg["cmps"]["round_trip"]["device_class"] == "duration"
        for st in states:     # cycle counter of the board vs. the host's wait (QEMU on the host)
            assert st["latency_us"] > 0 and st["round_trip_us"] > 0
    finally:
        lis.close()


def test_stream_and_uri_errors(tmp_path):
    assert str(parse_broker("mqtt://u:pw@b")) == "mqtt://u:***@b:1883"
    with pytest.raises(EdgeforgeError, match="bad --mqtt URI"):
        parse_broker("http://b")
    frames = list(read_npy_frames(io.BytesIO(npy_bytes(np.arange(6).reshape(2, 3))
                                             + npy_bytes(np.ones(3, np.int8)))))
    assert [f.shape for f in frames] == [(2, 3), (3,)]
    with pytest.raises(EdgeforgeError, match="truncated"):
        list(read_npy_frames(io.BytesIO(npy_bytes(np.arange(6))[:-3])))
    with pytest.raises(EdgeforgeError, match="magic"):
        list(read_npy_frames(io.BytesIO(b"garbage!")))
    np.save(tmp_path / "bad.npy", np.zeros((2, 2), np.int8))
    with pytest.raises(EdgeforgeError, match="expected"):
        list(iter_inputs(str(tmp_path), [1, 3]))
