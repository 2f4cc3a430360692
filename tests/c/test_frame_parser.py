"""The firmware's frame parser (firmware_templates/cortex-m/ef_frame.c) compiled for the host.

A small harness built with -fsanitize=address,undefined feeds it byte streams made of valid,
bit-flipped, truncated and oversize frames plus random bytes, and prints every event. The
parser must never crash or overrun (the sanitizers abort), always terminate (bounded
iterations, subprocess timeout), never accept a frame that was not sent, and still receive
every intact frame that follows clean line noise.
"""
from __future__ import annotations

import random
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from edgeforge.targets.protocol import MAX_PAYLOAD, encode
from tests.conftest import ROOT, require

SRC = ROOT / "firmware_templates" / "cortex-m"
HARNESS = r"""
#include <stdio.h>
#include "ef_frame.h"
static ef_frame_parser p;
int main(void) {
    int c;
    ef_frame_reset(&p);
    while ((c = getchar()) != EOF) {
        ef_frame_event ev = ef_frame_feed(&p, (uint8_t)c);
        if (ev == EF_FRAME_OK) {
            printf("OK %u %u %u %08x\n", p.seq, p.cmd, p.len, (unsigned)ef_crc32(0, p.payload, p.len));
        } else if (ev == EF_FRAME_ERR_LEN) {
            printf("LEN %u\n", p.seq);
        } else if (ev == EF_FRAME_ERR_CRC) {
            printf("CRC %u\n", p.seq);
        }
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    require("gcc")
    d = tmp_path_factory.mktemp("frame")
    (d / "harness.c").write_text(HARNESS)
    exe = d / "harness"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g"]
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    cmd = ["gcc", *flags, f"-I{SRC}", str(d / "harness.c"), str(SRC / "ef_frame.c"), "-o", str(exe)]
    r = subprocess.run(cmd + san, capture_output=True, text=True, timeout=120, check=False)
    if r.returncode != 0:          # no sanitizer runtime on this machine: plain build
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    return exe


def run(exe: Path, stream: bytes) -> list[tuple]:
    r = subprocess.run([str(exe)], input=stream, capture_output=True, timeout=30, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    events = []
    for line in r.stdout.decode().splitlines():
        kind, *rest = line.split()
        events.append((kind, *(int(v, 16) if len(v) == 8 and kind == "OK" and i == 3 else int(v)
                               for i, v in enumerate(rest))))
    return events


def test_crc_matches_zlib(harness):
    payload = bytes(range(256)) * 3
    ev = run(harness, encode(5, 0x02, payload))
    assert ev == [("OK", 5, 2, len(payload), zlib.crc32(payload))]


def test_oversize_length_is_rejected_before_any_payload_and_parser_recovers(harness):
    huge = b"\xef\x5a" + struct.pack("<HBB", MAX_PAYLOAD + 1, 9, 2) + b"\x00" * 2000
    ev = run(harness, huge + encode(10, 1, b"hi"))
    assert ev[0] == ("LEN", 9)
    assert ev[-1] == ("OK", 10, 1, 2, zlib.crc32(b"hi"))
    # the largest legal frame still passes
    assert run(harness, encode(1, 2, bytes(MAX_PAYLOAD)))[0][0] == "OK"


def test_fuzz_random_and_corrupted_frames(harness):
    rng = random.Random(20261129)
    stream = bytearray()
    intact: list[tuple] = []
    for _ in range(1500):                       # bounded: ~1500 frames, well under a second
        seq, cmd = rng.randrange(256), rng.randrange(256)
        payload = rng.randbytes(rng.choice((0, 1, 5, rng.randint(0, 200), MAX_PAYLOAD)))
        f = bytearray(encode(seq, cmd, payload))
        kind = rng.random()
        if kind < 0.2:
            f[rng.randrange(2, len(f))] ^= 1 << rng.randrange(8)   # corrupt after the sync
        elif kind < 0.3:
            f = f[:rng.randrange(2, len(f))]                      # truncated
        elif kind < 0.35:
            f[2:4] = struct.pack("<H", rng.randint(MAX_PAYLOAD + 1, 0xFFFF))  # oversize
        else:
            intact.append(("OK", seq, cmd, len(payload), zlib.crc32(payload)))
        stream += f
        stream += bytes(b if b != 0xEF else 0 for b in rng.randbytes(rng.randint(0, 12)))
        if kind < 0.35:
            # what the host's resync sends after a NAK or a timeout: finishes any partial frame
            stream += bytes(MAX_PAYLOAD + 10)
    stream += rng.randbytes(5000)               # and pure random bytes at the end
    events = run(harness, bytes(stream))
    ok = [e for e in events if e[0] == "OK"]
    # every intact frame arrives, in order, and nothing else is ever accepted
    assert ok == intact
    assert any(e[0] == "CRC" for e in events) and any(e[0] == "LEN" for e in events)
