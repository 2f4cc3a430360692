"""`--target labgrid://PLACE` against a real labgrid lab on loopback: a labgrid coordinator,
a labgrid exporter serving the emulated board's UART (QEMU mps2-an386, serial on a pty) as a
NetworkSerialPort through ser2net, and a place matching it. The place is acquired for the
profile and released afterwards, also when the profile fails.

A second emulated board also exports its GDB server (QEMU -gdb) as a NetworkService; its
place names it `gdbserver`, so profiling through it flashes DIR's firmware with labgrid's
Target/RemotePlace and edgeforge's GdbFlashDriver (gdb-multiarch `load`) first."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require
from tests.targets._servers import compile_fixture, free_port, stop, wait_port

ENV = {"LG_HOSTNAME": "edgeforge-test", "LG_USERNAME": "tester"}


class Lab:
    def __init__(self, root: Path, port: int, procs: list[subprocess.Popen], pty: str,
                 fw_dir: Path):
        self.root, self.port, self.procs, self.pty, self.fw_dir = root, port, procs, pty, fw_dir

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, *args: str, user: str = "tester") -> subprocess.CompletedProcess:
        env = dict(os.environ, **{**ENV, "LG_USERNAME": user})
        return subprocess.run(["labgrid-client", "-x", self.address, *args], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    def acquired_by(self, place: str) -> str:
        out = self.client("-p", place, "show").stdout
        return re.search(r"acquired: (\S+)", out).group(1)


def qemu_on_pty(elf: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor",
                             "none", "-icount", "shift=0", "-kernel", str(elf), "-serial",
                             "pty", *extra], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    seen, deadline = b"", time.monotonic() + 20
    while b"/dev/pts/" not in seen and time.monotonic() < deadline:
        seen += os.read(proc.stdout.fileno(), 4096)
    m = re.search(rb"(/dev/pts/\d+)", seen)
    assert m, f"QEMU gave no pty: {seen[-300:]!r}"
    return proc, m.group(1).decode()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require("qemu-system-arm", "arm-none-eabi-gcc", "ser2net", "labgrid-coordinator",
            "labgrid-exporter", "labgrid-client", "gdb-multiarch")
    from edgeforge.targets.build import ensure_built
    root = tmp_path_factory.mktemp("labgrid")
    kws = compile_fixture("kws_ds_cnn_int8.tflite", root / "kws")
    qemu, pty = qemu_on_pty(ensure_built(kws, "mps2-an386"))
    procs = [qemu]
    try:
        gdb_port, dead_port = free_port(), free_port()     # nothing listens on dead_port
        qemu2, pty2 = qemu_on_pty(ensure_built(kws, "mps2-an386"), "-gdb",
                                  f"tcp:127.0.0.1:{gdb_port}")
        procs.append(qemu2)
        port = free_port()
        env = dict(os.environ, **ENV)
        coord = subprocess.Popen(["labgrid-coordinator", "-l", f"127.0.0.1:{port}"], cwd=root,
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(coord)
        wait_port(port, coord, "labgrid-coordinator")
        (root / "exporter.yaml").write_text(
            f"board-uart:\n  RawSerialPort:\n    port: {pty}\n    speed: 115200\n"
            f"board2:\n  RawSerialPort:\n    port: {pty2}\n    speed: 115200\n"
            f"  NetworkService:\n    address: 127.0.0.1\n    port: {gdb_port}\n"
            "    username: ''\n"
            f"deadgdb:\n  NetworkService:\n    address: 127.0.0.1\n    port: {dead_port}\n"
            "    username: ''\n")
        procs.append(subprocess.Popen(
            ["labgrid-exporter", "-c", f"127.0.0.1:{port}", "-n", "lab1", "--hostname",
             "127.0.0.1", str(root / "exporter.yaml")], cwd=root, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        lab = Lab(root, port, procs, pty, kws)
        deadline = time.monotonic() + 30             # the exporter registers its port
        want = ("board-uart/NetworkSerialPort", "board2/NetworkSerialPort",
                "board2/NetworkService", "deadgdb/NetworkService")
        while not all(w in lab.client("resources").stdout for w in want):
            assert time.monotonic() < deadline, "exporter never registered its resources"
            time.sleep(0.2)
        for place in ("mcu1", "busy"):
            assert lab.client("-p", place, "create").returncode == 0
            assert lab.client("-p", place, "add-match", "lab1/board-uart/*").returncode == 0
        # the second board with its GDB server, and one whose GDB server is down
        for place, gdb in (("flash1", "board2"), ("deadflash", "deadgdb")):
            assert lab.client("-p", place, "create").returncode == 0
            assert lab.client("-p", place, "add-match",
                              "lab1/board2/NetworkSerialPort").returncode == 0
            assert lab.client("-p", place, "add-named-match", f"lab1/{gdb}/NetworkService",
                              "gdbserver").returncode == 0
        yield lab
    finally:
        for p in reversed(procs):
            stop(p)


def profile(lab: Lab, d: Path, place: str = "mcu1") -> subprocess.CompletedProcess:
    uri = f"labgrid://{place}?board=mps2-an386&coordinator={lab.address}"
    return subprocess.run([sys.executable, "-m", "edgeforge.cli", "profile", str(d), "--target",
                           uri, "--runs", "3", "--json"], env=dict(os.environ, **ENV),
                          capture_output=True, text=True, timeout=300, check=False)


def test_profile_through_labgrid_place(lab):
    r = profile(lab, lab.fw_dir)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["outputs_match_reference"] is True
    assert res["count_unit"] == "instructions" and res["instructions"]["count"] == 3
    dev = res["device"]
    assert dev["labgrid_place"] == "mcu1" and dev["serial"].startswith("rfc2217://127.0.0.1:")
    assert dev["flashed"] is None            # QEMU's place has no flasher: the ELF is loaded
    assert lab.acquired_by("mcu1") == "None", "released after the run"


@pytest.fixture(scope="module")
def other_dir(lab) -> Path:
    """A DIR whose model is not the one the boards start with."""
    return compile_fixture("ic_resnet8_int8.tflite", lab.root / "ic")


def test_place_released_when_the_profile_fails(lab, other_dir):
    # a DIR whose model is not the one the board runs: INFO's hash check fails mid-open
    r = profile(lab, other_dir)
    assert r.returncode == 2 and "flash it first" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert lab.acquired_by("mcu1") == "None", "released on error too"


def test_busy_and_unknown_places_are_clear_errors(lab):
    assert lab.client("-p", "busy", "acquire", user="someone-else").returncode == 0
    try:
        r = profile(lab, lab.fw_dir, "busy")
        assert r.returncode == 2 and "already acquired by edgeforge-test/someone-else" \
            in r.stderr, r.stderr
    finally:
        lab.client("-p", "busy", "release", user="someone-else")
    r = profile(lab, lab.fw_dir, "nowhere")
    assert r.returncode == 2 and "has no place 'nowhere' (places: busy, deadflash, flash1, " \
        "mcu1)" in r.stderr, r.stderr


def test_place_with_a_gdb_server_is_flashed_then_profiled(lab, other_dir):
    """The board runs KWS; profiling ResNet-8 through its place flashes ResNet-8 first."""
    r = profile(lab, other_dir, "flash1")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["outputs_match_reference"] is True and res["instructions"]["count"] == 3
    dev = res["device"]
    assert dev["labgrid_place"] == "flash1"
    assert dev["flashed"].startswith("labgrid GdbFlashDriver via 127.0.0.1:")
    assert lab.acquired_by("flash1") == "None", "released after the run"


def test_place_released_when_flashing_fails(lab):
    r = profile(lab, lab.fw_dir, "deadflash")
    assert r.returncode == 2, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if not ln.startswith("INFO:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "labgrid place deadflash: flashing through GdbFlashDriver failed: gdb load " \
        "through 127.0.0.1:" in errors[0], errors
    assert lab.acquired_by("deadflash") == "None", "released when flashing fails"
