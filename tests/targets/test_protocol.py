"""The MCU protocol layers (framing, command/check, commands) over the in-memory transport.

A small Python device answers like firmware_templates/cortex-m/main.c does; the same
commands run end to end against the real firmware in test_qemu.py.
"""
from __future__ import annotations

import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeforge.errors import DeviceError
from edgeforge.targets import commands
from edgeforge.targets.protocol import (
    LAST_REQUEST,
    MAX_PAYLOAD,
    BadFrame,
    Cmd,
    Device,
    Frame,
    FrameParser,
    Status,
    encode,
)
from edgeforge.targets.transport import MemoryTransport, TransportClosed

IN_BYTES, OUT_BYTES, NUM_OPS = 2500, 700, 300   # > one frame each, > one profile chunk


class FakeDevice:
    """Protocol-level stand-in for the firmware: output[i] = input[i % IN] + 1."""

    def __init__(self):
        self.parser = FrameParser()
        self.inp = bytearray(IN_BYTES)
        self.out = bytearray(OUT_BYTES)
        self.ran = False
        self.nak_next = 0          # NAK this many frames before answering
        self.silent_next = 0       # swallow this many frames
        self.extra: bytes = b""    # sent before the next answer (stale frames, garbage)
        self.received: list[Frame] = []
        self.model_rc = 0          # nonzero: INVOKE reports INVOKE_FAILED with this code

    def __call__(self, data: bytes) -> bytes:
        reply = b""
        for ev in self.parser.feed(data):
            if isinstance(ev, BadFrame):
                reply += encode(ev.seq, Cmd.NAK, bytes([Status.BAD_CRC]))
                continue
            self.received.append(ev)
            if self.silent_next:
                self.silent_next -= 1
                continue
            if self.nak_next:
                self.nak_next -= 1
                reply += encode(ev.seq, Cmd.NAK, bytes([Status.BAD_CRC]))
                continue
            if not 1 <= ev.cmd <= LAST_REQUEST:   # as main.c: no response code exists for it
                reply += encode(ev.seq, Cmd.NAK, bytes([Status.UNKNOWN_CMD]))
                continue
            reply += self.extra + encode(ev.seq, ev.cmd | 0x80, self.answer(ev.cmd, ev.payload))
            self.extra = b""
        return reply

    def answer(self, cmd: int, p: bytes) -> bytes:
        ok = bytes([Status.OK])
        if cmd == Cmd.INFO:
            desc = struct.pack("<BB4Ifi", 1, 4, 1, 50, 50, 1, 0.5, -3)
            desc += struct.pack("<BB2Ifi", 1, 2, 1, OUT_BYTES, 0.25, 7)
            return ok + struct.pack("<BBH8sIHHIBB", 1, 0, 0x0100, b"\x11" * 8, 4096, NUM_OPS,
                                    MAX_PAYLOAD, 25_000_000, 1, 1) \
                + struct.pack("<IIH", IN_BYTES, OUT_BYTES, len(desc)) + desc
        if cmd == Cmd.WRITE_INPUT:
            idx, off = struct.unpack_from("<BI", p)
            data = p[5:]
            if idx != 0 or off + len(data) > IN_BYTES:
                return bytes([Status.BAD_ARG])
            self.inp[off:off + len(data)] = data
            return ok
        if cmd == Cmd.INVOKE:
            runs, _warm = struct.unpack("<HH", p)
            if not 1 <= runs <= (MAX_PAYLOAD - 7) // 8:
                return bytes([Status.BAD_ARG])
            if self.model_rc:
                return bytes([Status.INVOKE_FAILED]) + struct.pack("<iH", self.model_rc, 0)
            self.out[:] = bytes((self.inp[i % IN_BYTES] + 1) & 0xFF for i in range(OUT_BYTES))
            self.ran = True
            return ok + struct.pack(f"<iH{runs}Q", 0, runs, *[1000 + i for i in range(runs)])
        if cmd == Cmd.READ_OUTPUT:
            idx, off, n = struct.unpack("<BIH", p)
            return ok + bytes(self.out[off:off + n])
        if cmd == Cmd.LAYER_PROFILE:
            if not self.ran:
                return bytes([Status.NO_RUN])
            (first,) = struct.unpack("<H", p)
            n = min(NUM_OPS - first, (MAX_PAYLOAD - 7) // 4)
            return ok + struct.pack(f"<HHH{n}I", NUM_OPS, first, n,
                                    *[10 * i for i in range(first, first + n)])
        return bytes([Status.UNKNOWN_CMD])


def make(timeout: float = 0.2, **kw) -> tuple[Device, FakeDevice, MemoryTransport]:
    fake = FakeDevice()
    t = MemoryTransport(fake)
    return Device(t, timeout=timeout, **kw), fake, t


# ---------------------------------------------------------------- framing


def test_encode_layout_matches_protocol_md():
    f = encode(7, Cmd.INVOKE, b"\x01\x00\x02\x00")
    assert f[:2] == b"\xef\x5a"
    assert struct.unpack_from("<HBB", f, 2) == (4, 7, Cmd.INVOKE)
    assert struct.unpack_from("<I", f, 10)[0] == zlib.crc32(f[2:10])
    with pytest.raises(ValueError):
        encode(1, Cmd.INFO, bytes(MAX_PAYLOAD + 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=300)),
                max_size=6), st.binary(max_size=40), st.integers(1, 17))
def test_parser_roundtrip_through_garbage_and_any_split(frames, garbage, split):
    garbage = garbage.replace(b"\xef", b"\x00")      # garbage that cannot fake a sync
    stream = garbage + b"".join(encode(s, c, p) for s, c, p in frames)
    parser, got = FrameParser(), []
    for i in range(0, len(stream), split):
        got += parser.feed(stream[i:i + split])
    assert got == [Frame(s, c, p) for s, c, p in frames]


def test_parser_drops_corrupt_and_oversize_frames_then_resyncs():
    good = encode(3, Cmd.INFO, b"abc")
    bad = bytearray(encode(4, Cmd.INFO, b"xyz"))
    bad[7] ^= 0x40
    huge = b"\xef\x5a" + struct.pack("<HBB", MAX_PAYLOAD + 1, 9, Cmd.WRITE_INPUT)
    events = FrameParser().feed(bytes(bad) + huge + good)
    assert BadFrame(4, "crc") in events and BadFrame(9, "len") in events
    assert events[-1] == Frame(3, Cmd.INFO, b"abc")


def test_fuzz_host_parser_never_accepts_a_frame_that_was_not_sent():
    rng = random.Random(1234)
    sent: set[bytes] = set()
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(1, 5)):
            f = encode(rng.randrange(256), rng.randrange(256), rng.randbytes(rng.randint(0, 64)))
            sent.add(f[2:-4])
            r = rng.random()
            if r < 0.3:                                      # flip one bit
                f = bytearray(f)
                f[rng.randrange(len(f))] ^= 1 << rng.randrange(8)
            elif r < 0.4:                                    # truncate
                f = f[:rng.randrange(len(f))]
            parts.append(bytes(f))
            parts.append(rng.randbytes(rng.randint(0, 8)))  # random bytes, may hold EF 5A
        for ev in FrameParser().feed(b"".join(parts)):
            if isinstance(ev, Frame):
                body = struct.pack("<HBB", len(ev.payload), ev.seq, ev.cmd) + ev.payload
                assert body in sent


# ---------------------------------------------------------------- command / check


def test_command_matches_by_sequence_and_skips_stale_frames():
    dev, fake, _ = make()
    fake.extra = encode(200, Cmd.INFO | 0x80, b"\x00stale") + b"\x13\x37garbage"
    info = commands.info(dev)
    assert info.model_hash == b"\x11" * 8 and info.input_bytes == [IN_BYTES]
    assert info.tensors[0]["shape"] == [1, 50, 50, 1] and info.tensors[1]["zero_point"] == 7


def test_nak_and_silence_are_retried_with_the_same_sequence():
    dev, fake, _ = make(retries=2)
    fake.nak_next, fake.silent_next = 1, 0
    commands.info(dev)
    fake.silent_next = 1
    commands.info(dev)
    seqs = [f.seq for f in fake.received]
    assert seqs == [1, 1, 2, 2]


def test_no_answer_gives_device_error_naming_the_command():
    dev, fake, _ = make(timeout=0.05, retries=1)
    fake.silent_next = 10
    with pytest.raises(DeviceError, match="INFO: no answer") as e:
        dev.command(Cmd.INFO)
    assert e.value.op == "INFO"
    assert len(fake.received) == 2


def test_boot_banner_while_waiting_means_the_device_reset():
    dev, fake, _ = make()
    fake.extra = encode(0, Cmd.BOOT, b"\x00\x01\x01edgeforge")
    with pytest.raises(DeviceError, match="device reset"):
        dev.command(Cmd.INFO)


def test_check_raises_device_error_with_status():
    dev, _, _ = make()
    with pytest.raises(DeviceError) as e:
        dev.check(Cmd.LAYER_PROFILE, struct.pack("<H", 0))
    assert e.value.status == Status.NO_RUN and e.value.op == "LAYER_PROFILE"
    with pytest.raises(DeviceError) as e:
        dev.check(0x2A)                 # a request code no command has (yet)
    assert e.value.status == Status.UNKNOWN_CMD
    with pytest.raises(DeviceError, match="outside 0x01..0x2f"):
        dev.check(0x42)                 # 0x42 | 0x80 would be a device-initiated code


def test_closed_transport_raises_at_once():
    dev, _, t = make(timeout=30)
    t.hang_up()
    with pytest.raises(TransportClosed):
        dev.command(Cmd.INFO)


# ---------------------------------------------------------------- commands


def test_commands_chunk_inputs_outputs_and_profiles():
    dev, fake, _ = make()
    commands.info(dev)
    x = bytes(random.Random(0).randbytes(IN_BYTES))
    commands.write_input(dev, 0, x)
    assert bytes(fake.inp) == x
    writes = [f for f in fake.received if f.cmd == Cmd.WRITE_INPUT]
    assert len(writes) == -(-IN_BYTES // (MAX_PAYLOAD - 5))
    assert all(len(f.payload) <= MAX_PAYLOAD for f in fake.received)
    counts = commands.invoke(dev, runs=300, warmup=2)       # split over 3 INVOKE frames
    assert len(counts) == 300
    invokes = [struct.unpack("<HH", f.payload) for f in fake.received if f.cmd == Cmd.INVOKE]
    assert [w for _, w in invokes] == [2, 0, 0] and sum(r for r, _ in invokes) == 300
    out = commands.read_output(dev, 0)
    assert out == bytes((x[i % IN_BYTES] + 1) & 0xFF for i in range(OUT_BYTES))
    prof = commands.layer_profile(dev)
    assert prof == [10 * i for i in range(NUM_OPS)]


def test_write_input_rejects_wrong_size_before_sending():
    dev, fake, _ = make()
    commands.info(dev)
    n = len(fake.received)
    with pytest.raises(DeviceError, match="expects 2500"):
        commands.write_input(dev, 0, b"\x00" * 10)
    assert len(fake.received) == n


def test_trace_logs_every_frame_in_hex_with_time_delta():
    lines: list[str] = []
    dev, _, _ = make(trace=True, log=lines.append)
    dev.command(Cmd.INFO)
    tx = [s for s in lines if " TX " in s]
    assert tx and encode(1, Cmd.INFO).hex(" ") in tx[0]
    assert any(" RX INFO response seq=1 " in s for s in lines)
    assert all(s.startswith("[") and "+" in s for s in lines)


def test_failed_invoke_names_the_model_code():
    dev, fake, _ = make()
    commands.info(dev)
    fake.model_rc = -2
    with pytest.raises(DeviceError, match="INVOKE failed: INVOKE_FAILED, model returned -2") as e:
        commands.invoke(dev, 1, 0)
    assert e.value.status == Status.INVOKE_FAILED
