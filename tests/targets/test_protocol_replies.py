"""Forged device replies with VALID CRCs (issue 10): each is validated before use.

The host side of the MCU protocol over the in-memory transport, answered by test_protocol's
FakeDevice with one reply swapped for a forged one. A reply whose content is wrong must end
in one DeviceError at once (no retry loop, no wait for the timeout), never a struct.error,
IndexError, ZeroDivisionError, reshape error or a loop. The seeded fuzz at the end throws a
few hundred random well-framed replies at every command.
"""
from __future__ import annotations

import random
import struct
import time

import pytest

from edgeforge.errors import DeviceError, EdgeforgeError
from edgeforge.targets import commands
from edgeforge.targets.protocol import MAX_PAYLOAD, Cmd, Device, Status, encode
from edgeforge.targets.transport import MemoryTransport
from tests.targets.test_protocol import IN_BYTES, NUM_OPS, OUT_BYTES, FakeDevice

WAIT = 20.0      # the per-command timeout: a forged reply must fail long before it


class Forger(FakeDevice):
    """FakeDevice whose answer to `cmd` goes through forge[cmd](payload) -> payload."""

    def __init__(self, forge=None):
        super().__init__()
        self.forge = forge or {}

    def answer(self, cmd: int, p: bytes) -> bytes:
        real = super().answer(cmd, p)
        f = self.forge.get(cmd)
        return (f(real, p) if f else real)[:MAX_PAYLOAD]     # must still fit one frame


def make(forge=None, timeout: float = WAIT, retries: int = 2):
    fake = Forger(forge)
    dev = Device(MemoryTransport(fake), timeout=timeout, retries=retries)
    dev.resync_s = 0.01
    return dev, fake


def info_reply(**over) -> bytes:
    """An INFO reply like FakeDevice's with fields replaced (nin, nout, maxp, sizes, desc)."""
    v = {"proto": 1, "unit": 0, "nops": NUM_OPS, "maxp": MAX_PAYLOAD, "nin": 1, "nout": 1,
         "sizes": [IN_BYTES, OUT_BYTES], "desc": b""}
    v.update(over)
    return (bytes([Status.OK]) + struct.pack("<BBH8sIHHIBB", v["proto"], v["unit"], 0x100,
                                             b"\x11" * 8, 4096, v["nops"], v["maxp"], 25_000_000,
                                             v["nin"], v["nout"])
            + struct.pack(f"<{len(v['sizes'])}I", *v["sizes"])
            + struct.pack("<H", len(v["desc"])) + v["desc"])


def run_all(dev: Device) -> None:
    """Everything profile asks of an MCU, in order."""
    commands.info(dev)
    commands.write_input(dev, 0, bytes(IN_BYTES))
    commands.invoke(dev, 3, 1)
    commands.read_output(dev, 0)
    commands.layer_profile(dev)


def fails_at_once(forge, match: str) -> Forger:
    dev, fake = make(forge)
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=match):
        run_all(dev)
    assert time.monotonic() - t0 < WAIT / 4, "waited for the timeout on a known-bad reply"
    return fake


@pytest.mark.parametrize(("cmd", "forged", "match"), [
    # READ_OUTPUT OK with no data looped forever; with extra bytes it failed in reshape
    (Cmd.READ_OUTPUT, lambda r, p: b"\x00", "READ_OUTPUT: malformed reply"),
    (Cmd.READ_OUTPUT, lambda r, p: r + b"\x01\x02", "READ_OUTPUT: malformed reply"),
    # INVOKE with n=0 counts looped forever; more counts than asked were accepted
    (Cmd.INVOKE, lambda r, p: b"\x00" + struct.pack("<iH", 0, 0), "INVOKE: malformed"),
    (Cmd.INVOKE, lambda r, p: b"\x00" + struct.pack("<iH4Q", 0, 4, 1, 2, 3, 4),
     "INVOKE: malformed"),
    (Cmd.INVOKE, lambda r, p: r + b"\x00" * 8, "INVOKE: malformed"),
    (Cmd.INVOKE, lambda r, p: b"\x00\x01", "INVOKE: malformed"),              # struct.error
    (Cmd.INVOKE, lambda r, p: b"\x00" + r[1:5] + b"\x00", "INVOKE: malformed"),
    # INFO: max_payload 5 / 6 (range() step 0, struct.error), zero inputs (IndexError)
    (Cmd.INFO, lambda r, p: info_reply(maxp=5), "max_payload 5"),
    (Cmd.INFO, lambda r, p: info_reply(maxp=6), "max_payload 6"),
    (Cmd.INFO, lambda r, p: info_reply(nin=0, sizes=[OUT_BYTES]), "0 inputs"),
    (Cmd.INFO, lambda r, p: info_reply(proto=7), "protocol 7"),
    (Cmd.INFO, lambda r, p: r + b"\x00", "INFO: malformed"),
    (Cmd.INFO, lambda r, p: r[:20], "INFO: malformed"),
    (Cmd.INFO, lambda r, p: info_reply(desc=b"\x01\x09" + bytes(60)), "INFO: malformed"),
    (Cmd.INFO, lambda r, p: info_reply(desc=struct.pack("<BBIfi", 1, 1, 5, 1.0, 0) * 2),
     "does not describe"),
    # LAYER_PROFILE with total 60000 (struct.error), fewer ops than INFO said, no progress
    (Cmd.LAYER_PROFILE, lambda r, p: r[:1] + struct.pack("<H", 60000) + r[3:],
     "LAYER_PROFILE: malformed"),
    (Cmd.LAYER_PROFILE, lambda r, p: b"\x00" + struct.pack("<HHH", 3, 0, 3) + bytes(12),
     "LAYER_PROFILE: malformed"),
    (Cmd.LAYER_PROFILE, lambda r, p: b"\x00" + struct.pack("<HHH", NUM_OPS, 0, 0),
     "LAYER_PROFILE: malformed"),
    (Cmd.LAYER_PROFILE, lambda r, p: r[:-4], "LAYER_PROFILE: malformed"),
    # statuses and bytes the request does not allow
    (Cmd.WRITE_INPUT, lambda r, p: b"\x00junk", "WRITE_INPUT: malformed"),
    (Cmd.INVOKE, lambda r, p: b"\x77", "unknown status 0x77"),
])
def test_forged_reply_with_valid_crc_is_one_error_at_once(cmd, forged, match):
    fake = fails_at_once({cmd: forged}, match)
    asked = [f.cmd for f in fake.received]
    assert asked.count(cmd) <= 1 + (cmd == Cmd.LAYER_PROFILE), "a known-bad reply was retried"


def test_answer_with_our_seq_but_another_command_fails_at_once():
    dev, fake = make()
    fake.extra = b""
    real = fake.__call__

    def wrong_cmd(data: bytes) -> bytes:
        out = real(data)
        return encode(1, Cmd.READ_OUTPUT | 0x80, b"\x00") if out else out
    dev.t.device = wrong_cmd
    with pytest.raises(DeviceError, match="INFO: the device answered with READ_OUTPUT response"):
        commands.info(dev)


def test_corrupt_answer_to_our_seq_is_retried_at_once_not_after_the_timeout():
    dev, fake = make()
    real = fake.__call__
    sent = []

    def corrupt_first(data: bytes) -> bytes:
        out = real(data)
        sent.append(data)
        if out and len(sent) == 1:
            bad = bytearray(out)
            bad[8] ^= 0xFF                    # a payload byte: CRC fails, header (seq) intact
            return bytes(bad)
        return out
    dev.t.device = corrupt_first
    t0 = time.monotonic()
    assert commands.info(dev).input_bytes == [IN_BYTES]
    assert time.monotonic() - t0 < WAIT / 4
    assert [f.seq for f in fake.received] == [1, 1]


def test_unknown_cmd_nak_is_not_retried():
    dev, fake = make()
    fake.answer = lambda cmd, p: b""          # unused: the NAK comes first
    dev.t.device = lambda data: encode(1, Cmd.NAK, bytes([Status.UNKNOWN_CMD]))
    with pytest.raises(DeviceError, match="does not know this command") as e:
        dev.command(Cmd.INFO)
    assert e.value.status == Status.UNKNOWN_CMD
    assert dev.t.sent.count(b"\xef\x5a") == 1


def test_a_chatty_device_is_bounded_in_bytes_not_only_time():
    dev, _ = make()
    stale = encode(77, Cmd.INFO | 0x80, b"\x00" + bytes(600))
    dev.t.device = lambda data: stale * 40   # ~25 kB of answers to some other request
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="bytes received without an answer"):
        dev.command(Cmd.INFO)
    assert time.monotonic() - t0 < WAIT / 4


def test_invoke_timeout_follows_the_measured_run_time():
    dev, _ = make(timeout=1.0)
    commands.info(dev)
    first = commands.invoke_timeout(dev, 127)
    assert first == 1.0 + commands.INVOKE_TIMEOUT_S * 127       # nothing measured yet
    commands.invoke(dev, 1, 0)
    assert dev.run_s is not None and commands.invoke_timeout(dev, 127) < first / 10


# ---------------------------------------------------------------- fuzz


def _mutate(rng: random.Random, real: bytes) -> bytes:
    k = rng.randrange(8)
    if k == 0:
        return real[:rng.randrange(len(real) + 1)]                       # truncate
    if k == 1:
        return real + rng.randbytes(rng.randint(1, 40))                  # extend
    if k == 2:
        return rng.randbytes(rng.randint(0, 60))                         # anything
    if k == 3 and real:
        b = bytearray(real)                                              # flip a field
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if k == 4 and len(real) >= 3:                                        # 16-bit field
        b = bytearray(real)
        i = rng.randrange(1, len(b) - 1)
        b[i:i + 2] = rng.choice([0, 1, 5, 6, 254, 255, 256, 60000, 65535]).to_bytes(2, "little")
        return bytes(b)
    if k == 5:
        return bytes([rng.choice(list(Status))]) + real[1:]             # another status
    if k == 6:
        return real[:1]                                                  # status only
    return real


def test_fuzz_forged_replies_with_valid_crc_end_in_success_or_device_error():
    """300 seeded cases: one or two replies of a full session forged (valid frame, valid CRC,
    sometimes a foreign seq or code); the host must succeed or raise an EdgeforgeError."""
    rng = random.Random(2026)
    outcomes = {"ok": 0, "error": 0}
    t0 = time.monotonic()
    for case in range(300):
        targets = rng.sample([Cmd.INFO, Cmd.WRITE_INPUT, Cmd.INVOKE, Cmd.READ_OUTPUT,
                              Cmd.LAYER_PROFILE], rng.randint(1, 2))
        crng = random.Random(case)
        forge = {c: (lambda r, p, crng=crng: _mutate(crng, r)) for c in targets}
        dev, fake = make(forge, timeout=0.02, retries=1)
        if rng.random() < 0.15:               # a well-framed frame with another code/seq
            fake.extra = encode(rng.choice([0, 1, 2, rng.randrange(256)]),
                                rng.choice([0x30, 0x6E, 0xB0, 0xEE, 0x81, 0x84, 0xC5,
                                            rng.randrange(256)]), rng.randbytes(rng.randint(0, 9)))
        start = time.monotonic()
        try:
            run_all(dev)
            outcomes["ok"] += 1
        except EdgeforgeError:
            outcomes["error"] += 1
        assert time.monotonic() - start < 5, f"case {case} took too long"
    assert outcomes["error"] > 100 and outcomes["ok"] > 10, outcomes
    assert time.monotonic() - t0 < 120


def test_resync_is_bounded_in_bytes_too():
    dev, _ = make(retries=1)
    dev.resync_s = 5.0
    noise = encode(9, Cmd.INFO | 0x80, b"\x00" + bytes(900))
    dev.t.device = lambda data: noise * 30 if data[:1] == b"\x00" else b""   # floods resyncs
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="bytes received while resyncing"):
        dev.command(Cmd.INFO, timeout=0.01)
    assert time.monotonic() - t0 < 2.5


def test_agent_reply_line_is_bounded_in_bytes(monkeypatch):
    """The Linux-board path's wait (an agent session line) has the same two bounds."""
    from edgeforge.targets import shell

    class Chatty(shell.Pipe):
        def _recv(self, timeout):
            return b"x" * 4096          # never a newline

        def write(self, data):
            pass

        def stderr_tail(self):
            return ""

        def close(self):
            pass

    monkeypatch.setattr(shell, "MAX_LINE", 64 * 1024)
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="without ending its reply line"):
        Chatty("board").readline(timeout=30)
    assert time.monotonic() - t0 < 7.5


def test_a_request_larger_than_the_device_takes_is_a_device_error():
    dev, fake = make()
    commands.info(dev)
    dev.max_payload = 64                       # as a small device's INFO would say
    with pytest.raises(DeviceError, match="the device takes at most 64 B"):
        dev.check(Cmd.WRITE_INPUT, bytes(100))
    n = len(fake.received)
    commands.write_input(dev, 0, bytes(IN_BYTES))        # chunks fit the smaller frames
    assert max(len(f.payload) for f in fake.received[n:]) == 64
