"""MCU path end to end on the emulated Cortex-M4 (QEMU mps2-an386).

The MLPerf Tiny int8 fixtures are compiled (`edgeforge compile`), built into firmware
(`edgeforge build`) and run through `edgeforge profile`; device outputs must be byte-equal
to TFLM (--numerics tflm) and to LiteRT's BUILTIN_REF kernels (--numerics litert) on 21
inputs each. Plus the firmware's protocol hardening (oversize/corrupt frames -> NAK, then it
still answers), a QEMU killed mid-run, a model-hash mismatch and build size checks.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgeforge.cli import main as cli
from edgeforge.errors import BuildError, DeviceError
from edgeforge.manifest import Manifest
from edgeforge.targets import build as build_mod
from edgeforge.targets import commands
from edgeforge.targets.profile import profile
from edgeforge.targets.protocol import MAX_PAYLOAD, BadFrame, Cmd, Frame, Status, encode
from edgeforge.targets.qemu import QemuTarget
from tests.conftest import fixture, require

N_INPUTS = 21          # 20 random + the benchmark's real sample (KWS) / 21 random (ResNet-8)
MODELS = {"kws": "kws_ds_cnn_int8.tflite", "rn8": "ic_resnet8_int8.tflite"}


def compile_fixture(src: Path, out: Path, numerics: str) -> Path:
    """`edgeforge compile` in a subprocess (the real CLI, as a user runs it)."""
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile", str(src), "-o", str(out),
                        "--numerics", numerics], capture_output=True, text=True, timeout=600,
                       check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(model, numerics) -> compiled DIR, each compiled once per module."""
    require("arm-none-eabi-gcc", "qemu-system-arm")
    root = tmp_path_factory.mktemp("mcu")
    cache: dict[tuple[str, str], Path] = {}

    def get(model: str, numerics: str = "tflm") -> Path:
        key = (model, numerics)
        if key not in cache:
            cache[key] = compile_fixture(fixture(MODELS[model]), root / f"{model}-{numerics}",
                                         numerics)
        return cache[key]
    return get


def samples(model: str, shape: list[int]) -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(N_INPUTS, *shape)).astype(np.int8)
    if model == "kws":
        x[0] = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).reshape(shape)
    return x


def peer(numerics: str, model: Path, x: np.ndarray) -> list[np.ndarray]:
    from edgeforge.runtime import peers

    if numerics == "tflm":
        return peers.run_tflm(model, [x])
    return peers.run_litert(model, [x], reference_kernels=True)


@pytest.mark.parametrize(("model", "numerics"),
                         [("kws", "tflm"), ("rn8", "tflm"), ("kws", "litert"), ("rn8", "litert")])
def test_profile_outputs_byte_equal_to_peer(compiled, model, numerics):
    require("tflite_micro" if numerics == "tflm" else "ai_edge_litert")
    d = compiled(model, numerics)
    m = Manifest.load(d)
    x = samples(model, m.inputs[0].shape)
    report = profile(d, "qemu://mps2-an386", runs=2, warmup=1, inputs=x, keep_outputs=True)
    assert report["outputs_match_reference"] is True, report["mismatches"]
    assert report["samples"] == N_INPUTS and report["count_unit"] == "instructions"
    assert report["instructions"]["count"] == 2 and report["instructions"]["min"] > 1e6
    assert report["device"]["model_hash"] == m.model_sha256[:16]
    assert len(report["per_op"]) == len(m.ops)
    assert [p["op"] for p in report["per_op"]] == m.ops
    # per-op counts account for (nearly) the whole inference, never more
    per_op = sum(p["instructions"] for p in report["per_op"])
    assert 0.97 * report["instructions"]["max"] <= per_op <= report["instructions"]["max"]
    # and the device's own outputs, byte for byte, against the peer runtime itself
    for k, got in enumerate(report["outputs"]):
        want = peer(numerics, d / "model.tflite", x[k])
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.tobytes() == np.asarray(w).tobytes(), f"sample {k}"


def test_build_size_table_and_budget(compiled, capsys):
    d = compiled("kws")
    m = Manifest.load(d)
    assert cli(["build", str(d), "--board", "mps2-an386", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    s = r["sizes"]
    assert Path(r["elf"]).is_file() and Path(r["bin"]).is_file()
    assert s["code"] < 16 * 1024, "KWS firmware code without weights must stay under 16 KB"
    assert m.weight_bytes <= s["weights"] <= 2 * m.weight_bytes    # + biases, multipliers
    assert s["arena"] == m.arena_bytes
    assert s["flash"] == s["code"] + s["weights"] + s["data"]
    assert not [w for w in r["warnings"] if "firmware_templates" in w]
    assert build_mod.is_fresh(d, build_mod.load_board("mps2-an386"))


def test_build_that_does_not_fit_names_the_numbers(compiled, monkeypatch):
    d = compiled("kws")
    real = build_mod.load_board("mps2-an386")
    tiny = dataclasses.replace(real, flash={"origin": 0, "size": 16 * 1024})
    monkeypatch.setattr(build_mod, "load_board", lambda name: tiny)
    with pytest.raises(BuildError, match=r"does not fit mps2-an386: flash \d+ B .* of 16384 B"):
        build_mod.build(d, "mps2-an386")
    assert not list((d / "fw").glob(".mps2-an386-*")), "temporary build dir left behind"


@pytest.fixture
def kws_target(compiled):
    d = compiled("kws")
    t = QemuTarget.from_uri("qemu://mps2-an386", timeout=1.0)
    t.open(d, Manifest.load(d))
    yield t, d
    t.close()
    assert t.proc is None or t.proc.poll() is not None, "QEMU left running"


def _events_until(dev, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    seen = []
    while (ev := dev.next_event(deadline)) is not None:
        seen.append(ev)
        if want(ev):
            return seen
    raise AssertionError(f"not seen within {timeout} s: {seen}")


def test_firmware_naks_oversize_and_corrupt_frames_then_still_answers(kws_target):
    t, _ = kws_target
    dev = t.dev
    # oversize length: NAK BAD_LEN at once (the firmware never buffers the payload)
    dev.send_raw(b"\xef\x5a" + (MAX_PAYLOAD + 1).to_bytes(2, "little") + bytes([9, Cmd.INFO]))
    ev = _events_until(dev, lambda e: isinstance(e, Frame) and e.cmd == Cmd.NAK)[-1]
    assert ev.seq == 9 and ev.payload[0] == Status.BAD_LEN
    # corrupt CRC: NAK BAD_CRC
    bad = bytearray(encode(10, Cmd.INFO))
    bad[-1] ^= 0xFF
    dev.send_raw(bytes(bad))
    ev = _events_until(dev, lambda e: isinstance(e, Frame) and e.cmd == Cmd.NAK)[-1]
    assert ev.seq == 10 and ev.payload[0] == Status.BAD_CRC
    # garbage and a half frame, then a normal command: the host resyncs, the device answers
    dev.send_raw(b"\x01\x02\xef\x5a\x20\x00\x05")
    info = commands.info(dev)
    assert info.model_hash == Manifest.load(kws_target[1]).hash8
    # argument errors come back as statuses, and the device keeps going
    with pytest.raises(DeviceError) as e:
        dev.check(Cmd.WRITE_INPUT, bytes([0]) + (10**6).to_bytes(4, "little") + b"x")
    assert e.value.status == Status.BAD_ARG
    with pytest.raises(DeviceError) as e:
        dev.check(0x2A)                       # unassigned request code: a normal response
    assert e.value.status == Status.UNKNOWN_CMD
    # codes outside the request range get NAK UNKNOWN_CMD, never a response code that reads
    # as BOOT (0x30 | 0x80 = 0xB0) or NAK (0x6E | 0x80 = 0xEE) -- issue 10
    for seq, code in ((21, 0x30), (22, 0x6E), (23, 0xB0), (24, 0x00)):
        dev.send_raw(encode(seq, code, b""))
        ev = _events_until(dev, lambda e, s=seq: isinstance(e, Frame)
                           and (e.cmd in (Cmd.NAK, Cmd.BOOT) or e.seq == s))[-1]
        assert (ev.cmd, ev.seq, ev.payload) == (Cmd.NAK, seq, bytes([Status.UNKNOWN_CMD]))
    assert dev.boots == 1
    with pytest.raises(DeviceError) as e:
        dev.check(Cmd.INVOKE, (0).to_bytes(2, "little") * 2)      # runs = 0
    assert e.value.status == Status.BAD_ARG
    assert commands.invoke(dev, 1, 0)[0] > 0
    assert not any(isinstance(ev, BadFrame) for ev in dev.pending)


def test_qemu_killed_mid_run_is_a_clear_error_not_a_hang(kws_target):
    t, _ = kws_target
    killer = threading.Timer(0.5, t.proc.kill)
    killer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(DeviceError, match="QEMU exited"):
            t.benchmark(runs=127, warmup=1000)      # over a minute of work unless killed
    finally:
        killer.cancel()
    assert time.monotonic() - t0 < 15


def test_hash_mismatch_refuses_the_device(compiled, tmp_path):
    import shutil

    d = tmp_path / "kws"
    shutil.copytree(compiled("kws"), d)
    m = Manifest.load(d)
    m.model_sha256 = "ff" * 32
    m.save(d)
    with pytest.raises(DeviceError, match="flash it first"), \
            QemuTarget.from_uri("qemu://mps2-an386") as t:
        t.open(d, m)
    assert t.proc is not None and t.proc.poll() is not None


def test_trace_logs_frames(compiled, capsys):
    d = compiled("kws")
    assert cli(["profile", str(d), "--runs", "1", "--warmup", "0", "--trace-frames", "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["outputs_match_reference"] is True and report["samples"] == 1
    assert "TX INFO seq=1" in err and "RX INFO response seq=1" in err and "ef 5a" in err
    assert "RX BOOT seq=0" in err


def test_missing_dir_is_one_clear_error(tmp_path, capsys):
    assert cli(["profile", str(tmp_path / "nope"), "--target", "qemu://mps2-an386"]) == 2
    err = capsys.readouterr().err
    assert "not a compiled directory" in err and "Traceback" not in err


def test_serial_target_same_protocol_over_pyserial(compiled, capsys):
    """SerialTarget (pyserial, here its socket:// URL onto QEMU's UART) runs the same code
    path as QemuTarget except transport and start-up: a flashed board, then profile."""
    import socket

    d = compiled("kws")
    assert cli(["build", str(d), "--board", "mps2-an386"]) == 0
    capsys.readouterr()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    elf = d / "fw" / "mps2-an386" / "firmware.elf"
    qemu = QemuTarget("mps2-an386").command_line(elf, port)
    proc = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        uri = f"serial://socket://127.0.0.1:{port}?board=mps2-an386&boot=1"
        assert cli(["profile", str(d), "--target", uri, "--runs", "2", "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        assert r["outputs_match_reference"] is True and r["device"]["board"] == "mps2-an386"
        assert r["count_unit"] == "instructions" and r["instructions"]["count"] == 2
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("board", ["nucleo-l4r5zi", "stm32f746g-disco", "nrf52840-dk"])
def test_build_for_real_boards_fits_and_boots_from_flash(compiled, board):
    """Cross-build for the physical boards (no hardware here: the image is checked, not run)."""
    d = compiled("kws")
    b = build_mod.load_board(board)
    r = build_mod.build(d, board)
    s = r["sizes"]
    assert s["flash"] <= b.flash["size"] and s["ram"] <= b.ram["size"]
    assert not [w for w in r["warnings"] if "firmware_templates" in w]
    image = Path(r["bin"]).read_bytes()
    sp, reset = int.from_bytes(image[:4], "little"), int.from_bytes(image[4:8], "little")
    assert b.ram["origin"] < sp <= b.ram["origin"] + b.ram["size"]      # initial stack pointer
    assert reset & 1 and b.flash["origin"] <= reset < b.flash["origin"] + s["flash"]  # Thumb


def test_boards_without_a_port_fail_with_one_clear_error(compiled):
    d = compiled("kws")
    names = build_mod.board_names()
    assert {"mps2-an386", "nucleo-l4r5zi", "stm32f746g-disco", "nrf52840-dk", "rpi-pico",
            "esp32-s3"} <= set(names)
    with pytest.raises(BuildError, match="xtensa-esp32s3-elf-gcc"):
        build_mod.build(d, "esp32-s3")
    with pytest.raises(BuildError, match="no UART driver .*pl011"):
        build_mod.build(d, "rpi-pico")
    with pytest.raises(Exception, match="unknown board 'nope'; available: esp32-s3"):
        build_mod.build(d, "nope")


def test_qemu_is_torn_down_at_interpreter_exit(compiled, tmp_path):
    """A script that opens QEMU and exits without close() leaves no emulator behind."""
    import os

    d = compiled("kws")
    assert cli(["build", str(d), "--board", "mps2-an386"]) == 0
    script = tmp_path / "leak.py"
    script.write_text(
        "import sys\n"
        "from edgeforge.manifest import Manifest\n"
        "from edgeforge.targets.qemu import QemuTarget\n"
        f"t = QemuTarget.from_uri('qemu://mps2-an386')\n"
        f"t.open({str(d)!r}, Manifest.load({str(d)!r}))\n"
        "print(t.proc.pid, flush=True)\n"
        "sys.exit(0)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60, check=False, cwd=str(Path(__file__).resolve().parents[2]))
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # reaped by the dead parent? a zombie of init shows as alive for a moment
        time.sleep(0.05)
    else:
        pytest.fail(f"QEMU {pid} still running after its parent exited")


def test_live_firmware_survives_random_and_corrupted_frames(kws_target):
    """Bounded fuzz of the running firmware: batches of random bytes, bit-flipped and
    truncated frames, oversize headers and unknown commands; after each batch the host
    resyncs and INFO must answer correctly, and the device must never have rebooted."""
    import random

    t, d = kws_target
    dev, rng = t.dev, random.Random(99)
    want = Manifest.load(d).hash8
    for _ in range(15):
        blob = bytearray()
        for _ in range(8):
            kind = rng.randrange(5)
            if kind == 0:
                blob += rng.randbytes(rng.randint(1, 64))
            elif kind == 1:
                f = bytearray(encode(rng.randrange(256), rng.choice(list(Cmd)),
                                     rng.randbytes(rng.randint(0, 40))))
                f[rng.randrange(2, len(f))] ^= 1 << rng.randrange(8)
                blob += f
            elif kind == 2:
                blob += encode(rng.randrange(256), Cmd.WRITE_INPUT, rng.randbytes(300))[:50]
            elif kind == 3:
                blob += b"\xef\x5a" + rng.randint(MAX_PAYLOAD + 1, 0xFFFF).to_bytes(2, "little")
            else:
                blob += encode(rng.randrange(256), rng.randrange(0x06, 0x80), b"?")
        dev.send_raw(bytes(blob))
        dev.resync()
        assert commands.info(dev).model_hash == want
    assert dev.boots == 1                      # only the banner of the initial start
    assert commands.invoke(dev, 1, 0)[0] > 0


def test_flash_runs_the_boards_flasher_or_says_what_is_missing(compiled, tmp_path,
                                                               monkeypatch, capsys):
    import os
    import shutil

    d = compiled("kws")
    # no flasher on PATH: one clear error naming the tool and how to install it
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert cli(["flash", str(d), "--board", "nrf52840-dk"]) == 2
    assert "pyocd, which is not installed (pip install pyocd)" in capsys.readouterr().err
    # a stand-in pyocd records its command line: the built image, as the profile says
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "argv.txt"
    fake = bindir / "pyocd"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {log}\n")
    fake.chmod(0o755)
    gcc_dir = os.path.dirname(shutil.which("arm-none-eabi-gcc", path=os.defpath + ":/usr/bin"))
    monkeypatch.setenv("PATH", f"{bindir}:{gcc_dir}:/bin")
    assert cli(["flash", str(d), "--board", "nrf52840-dk"]) == 0
    argv = log.read_text().split()
    assert argv[:3] == ["flash", "--target", "nrf52840"]
    assert argv[3].endswith("fw/nrf52840-dk/firmware.hex") and Path(argv[3]).is_file()
    assert cli(["flash", str(d), "--board", "mps2-an386"]) == 0      # QEMU: nothing to do
    assert "nothing to flash" in capsys.readouterr().out


def test_every_board_profile_is_complete():
    """Each targets/boards/*.toml loads and carries what build, flash and profile read."""
    for name in build_mod.board_names():
        b = build_mod.load_board(name)
        assert b.name == name and b.counter_unit in ("instructions", "cycles")
        assert b.counter in ("systick", "dwt", "ccount") and b.kernels in ("ref", "dsp")
        assert b.flash["size"] > 0 and b.ram["size"] > 0 and b.stack_bytes < b.ram["size"]
        assert b.uart["baud"] > 0 and b.uart["driver"] and b.clock_hz > 0
        assert b.flasher["tool"] in ("qemu", "pyocd", "openocd", "picotool", "esptool")
        assert b.flasher["bootloader"] and b.flasher["command"]
        assert not b.dsp or b.arch == "armv7e-m"           # SMLAD & co. need Armv7E-M
        if b.flasher["tool"] != "qemu":
            assert "{" in b.flasher["command"]              # the image goes in somewhere


@pytest.mark.hardware
def test_physical_board_end_to_end(request, tmp_path, capsys):
    """With a board attached: --port /dev/ttyACM0 and EDGEFORGE_BOARD=<profile name>."""
    import os

    port = request.config.getoption("--port")
    board = os.environ.get("EDGEFORGE_BOARD", "nucleo-l4r5zi")
    d = compile_fixture(fixture(MODELS["kws"]), tmp_path / "kws", "tflm")
    assert cli(["flash", str(d), "--board", board, "--port", port]) == 0
    capsys.readouterr()
    uri = f"serial://{port}?board={board}"
    assert cli(["profile", str(d), "--target", uri, "--runs", "5", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["outputs_match_reference"] is True and r["count_unit"] == "cycles"
