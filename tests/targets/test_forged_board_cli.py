"""`edgeforge profile` against a forged board (issue 10), end to end through the CLI.

A Python board on a loopback TCP socket (reached as serial://socket://..., pyserial's URL,
exactly as a ser2net bridge would be) answers like firmware for a compiled DIR, except that
one reply is forged with a valid CRC. The CLI must exit 2 with one stderr line naming the
command, at once -- never a traceback, never a wait for the 60 s per-run INVOKE timeout.
"""
from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edgeforge.manifest import Manifest
from edgeforge.targets.protocol import Cmd, FrameParser, Status, encode
from tests.targets._servers import make_dir


class ForgedBoard(threading.Thread):
    """Firmware stand-in for one DIR; `forge(cmd, honest_reply) -> reply` may lie."""

    def __init__(self, m: Manifest, forge):
        super().__init__(daemon=True)
        self.m, self.forge = m, forge
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        size = [int(np.prod(t.shape)) for t in m.inputs], [int(np.prod(t.shape)) for t in m.outputs]
        self.sizes = size

    def info(self, maxp: int = 1024, nin: int | None = None) -> bytes:
        ins, outs = self.sizes
        ins = ins[:nin] if nin is not None else ins
        return (bytes([Status.OK]) + struct.pack("<BBH8sIHHIBB", 1, 1, 0x100, self.m.hash8, 0,
                                                 len(self.m.ops), maxp, 25_000_000, len(ins),
                                                 len(outs))
                + struct.pack(f"<{len(ins) + len(outs)}I", *ins, *outs) + b"\0\0")

    def honest(self, cmd: int, p: bytes) -> bytes:
        ok = bytes([Status.OK])
        if cmd == Cmd.INFO:
            return self.info()
        if cmd == Cmd.WRITE_INPUT:
            return ok
        if cmd == Cmd.INVOKE:
            runs = struct.unpack_from("<H", p)[0]
            return ok + struct.pack(f"<iH{runs}Q", 0, runs, *[1000] * runs)
        if cmd == Cmd.READ_OUTPUT:
            return ok + bytes(struct.unpack_from("<BIH", p)[2])
        if cmd == Cmd.LAYER_PROFILE:
            return ok + struct.pack("<HHH", 0, 0, 0)
        return bytes([Status.UNKNOWN_CMD])          # commands this stand-in does not have

    def run(self) -> None:
        conn, _ = self.srv.accept()
        parser = FrameParser()
        with conn:
            while chunk := conn.recv(4096):
                for f in parser.feed(chunk):
                    reply = self.forge(f.cmd, self.honest(f.cmd, f.payload))
                    conn.sendall(encode(f.seq, f.cmd | 0x80, reply))


@pytest.mark.parametrize(("cmd", "forge", "says"), [
    (Cmd.READ_OUTPUT, lambda r: r[:1], "READ_OUTPUT: malformed reply (0 bytes for"),
    (Cmd.INVOKE, lambda r: r[:1] + struct.pack("<iH", 0, 0), "INVOKE: malformed reply"),
    (Cmd.INVOKE, lambda r: r[:2], "INVOKE: malformed reply"),
    (Cmd.INFO, "maxp5", "max_payload 5"),
    (Cmd.INFO, "nin0", "0 inputs"),
])
def test_profile_against_a_forged_board_is_one_line_at_once(tmp_path, cmd, forge, says):
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    m = Manifest.load(d)
    if forge == "maxp5":
        forge = lambda r: board.info(maxp=5)
    elif forge == "nin0":
        forge = lambda r: board.info(nin=0) 
    board = ForgedBoard(m, lambda c, r: forge(r) if c == cmd else r)
    board.start()
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "profile", str(d), "--target",
                        f"serial://socket://127.0.0.1:{board.port}?board=mps2-an386",
                        "--runs", "3"], capture_output=True, text=True, timeout=120,
                       check=False)
    took = time.monotonic() - t0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and says in lines[0], r.stderr
    assert took < 30, "waited out a timeout on a reply already known bad"


def test_the_honest_board_profiles(tmp_path):
    """The stand-in itself is right: with nothing forged, profile gets through to compare
    outputs (all zero here, so it reports a mismatch: exit 1, not 2)."""
    d = make_dir("kws_ds_cnn_int8.tflite", tmp_path / "kws")
    board = ForgedBoard(Manifest.load(d), lambda c, r: r)
    board.start()
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "profile", str(d), "--target",
                        f"serial://socket://127.0.0.1:{board.port}?board=mps2-an386",
                        "--runs", "3", "--json"], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode in (0, 1), r.stderr
    assert "\"runs\": 3" in r.stdout
