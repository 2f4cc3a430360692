"""Framing of the host <-> MCU protocol (firmware_templates/PROTOCOL.md) and `Device.command`.

    EF 5A | len u16 LE | seq u8 | cmd u8 | payload[len] | CRC-32 LE over len..payload

A response carries the request's seq and `cmd | 0x80`; its payload starts with a status byte.
`Device.command` matches responses by sequence number, skips stale or foreign frames, resends
on NAK, timeout or a corrupt answer (after flushing the device's parser), and notices a device
that rebooted (an unsolicited BOOT frame). Every wait is bounded in time and in bytes received.
`Device.check` raises DeviceError(op, status) on a bad status.

Code space (one byte, never ambiguous): requests 0x01..0x2F, their responses `op | 0x80`
(0x81..0xAF), frames the device starts 0xB0..0xFF (BOOT 0xB0, NAK 0xEE).
The byte-level parser mirrors firmware_templates/cortex-m/ef_frame.c.
"""
from __future__ import annotations

import logging
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from edgeforge.errors import DeviceError
from edgeforge.targets.transport import Transport, TransportClosed

SYNC = b"\xef\x5a"
MAX_PAYLOAD = 1024
HEADER = 6
OVERHEAD = 10
RESPONSE = 0x80
LAST_REQUEST = 0x2F      # request codes 1..0x2F: no response code (op | 0x80) is BOOT or NAK
# bytes a silent-but-chatty device may send during one wait before it counts as no answer:
# a reply is one frame; stale answers to earlier tries and NAKs are a few more
RX_BUDGET = 16 * (MAX_PAYLOAD + 10)


class Cmd(IntEnum):
    INFO = 0x01
    WRITE_INPUT = 0x02
    INVOKE = 0x03
    READ_OUTPUT = 0x04
    LAYER_PROFILE = 0x05
    STACK = 0x06
    NAK = 0xEE
    BOOT = 0xB0


class Status(IntEnum):
    OK = 0x00
    BAD_CRC = 0x01
    BAD_LEN = 0x02
    UNKNOWN_CMD = 0x03
    BAD_ARG = 0x04
    INVOKE_FAILED = 0x05
    NO_RUN = 0x06


def status_name(status: int) -> str:
    try:
        return Status(status).name
    except ValueError:
        return f"0x{status:02x}"


def op_name(op: int) -> str:
    try:
        return Cmd(op).name
    except ValueError:
        return f"0x{op:02x}"


def frame_name(cmd: int) -> str:
    """"INFO", "INFO response", "NAK", "BOOT": how --trace names a frame."""
    if cmd in (Cmd.NAK, Cmd.BOOT) or not cmd & RESPONSE:
        return op_name(cmd)
    return f"{op_name(cmd & ~RESPONSE)} response"


@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    payload: bytes


@dataclass(frozen=True)
class BadFrame:
    """A frame the parser dropped: why = "len" (too long) or "crc"."""
    seq: int
    why: str


def encode(seq: int, cmd: int, payload: bytes = b"", max_payload: int = MAX_PAYLOAD) -> bytes:
    if len(payload) > max_payload:
        raise ValueError(f"payload of {len(payload)} B exceeds the {max_payload} B maximum")
    body = struct.pack("<HBB", len(payload), seq & 0xFF, cmd & 0xFF) + payload
    return SYNC + body + struct.pack("<I", zlib.crc32(body))


class FrameParser:
    """Incremental parser: feed() any bytes, get complete frames and dropped-frame events."""

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        self.buf += data
        out: list[Frame | BadFrame] = []
        while True:
            i = self.buf.find(SYNC)
            if i < 0:
                # keep a trailing SYNC0: it may start the next frame
                keep = 1 if self.buf[-1:] == SYNC[:1] else 0
                del self.buf[:len(self.buf) - keep]
                return out
            del self.buf[:i]
            if len(self.buf) < HEADER:
                return out
            length, seq, cmd = struct.unpack_from("<HBB", self.buf, 2)
            if length > self.max_payload:
                out.append(BadFrame(seq, "len"))
                del self.buf[:HEADER]
                continue
            if len(self.buf) < HEADER + length + 4:
                return out
            body = bytes(self.buf[2:HEADER + length])
            (crc,) = struct.unpack_from("<I", self.buf, HEADER + length)
            if crc == zlib.crc32(body):
                out.append(Frame(seq, cmd, body[4:]))
                del self.buf[:HEADER + length + 4]
            else:
                # resync: rescan from the byte after this sync, not after the whole frame
                out.append(BadFrame(seq, "crc"))
                del self.buf[:2]


class Device:
    """One device on one transport. Owns the sequence counter and the receive parser."""

    def __init__(self, transport: Transport, *, timeout: float = 5.0, retries: int = 2,
                 trace: bool = False, log: Callable[[str], None] | None = None,
                 max_payload: int = MAX_PAYLOAD):
        self.t = transport
        self.timeout = timeout
        self.retries = retries
        self.trace = trace
        self.log = log or logging.getLogger(__name__).info   # --trace: the CLI shows it
        self.max_payload = max_payload
        self.parser = FrameParser(max_payload)
        self.pending: list[Frame | BadFrame] = []
        self.seq = 0
        self.boots = 0
        self.rx_bytes = 0           # every byte received: waits are bounded by it and by time
        self._t0 = self._last = time.monotonic()
        self.info = None            # commands.info() fills in a DeviceInfo
        self.resync_s = 0.2         # how long a resync drains the line
        self.run_s: float | None = None   # seconds per invoke last measured (sizes timeouts)

    # -- tracing ----------------------------------------------------------------------
    def _trace(self, direction: str, what: str, data: bytes) -> None:
        if not self.trace:
            return
        now = time.monotonic()
        self.log(f"[{now - self._t0:9.4f} +{now - self._last:8.4f}] {direction} {what} "
                 f"{len(data)} B: {data.hex(' ')}")
        self._last = now

    # -- frames -----------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self._trace("TX", "raw", data)
        self.t.send(data)

    def send_frame(self, seq: int, cmd: int, payload: bytes = b"") -> None:
        if len(payload) > self.max_payload:        # the device's INFO said how much it takes
            raise DeviceError(f"{op_name(cmd)}: {len(payload)} B request, the device takes at "
                              f"most {self.max_payload} B", op=op_name(cmd))
        data = encode(seq, cmd, payload, self.max_payload)
        self._trace("TX", f"{op_name(cmd)} seq={seq}", data)
        self.t.send(data)

    def next_event(self, deadline: float) -> Frame | BadFrame | None:
        """The next frame (or dropped-frame event) before `deadline`, else None."""
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.t.recv(4096, min(left, 0.5))
            if data:
                self.rx_bytes += len(data)
                for ev in self.parser.feed(data):
                    if isinstance(ev, Frame):
                        self._trace("RX", f"{frame_name(ev.cmd)} seq={ev.seq}",
                                    encode(ev.seq, ev.cmd, ev.payload, 0xFFFF))
                    else:
                        self._trace("RX", f"dropped frame ({ev.why}) seq={ev.seq}", b"")
                    self.pending.append(ev)
        return self.pending.pop(0)

    def wait_boot(self, timeout: float = 10.0) -> bytes:
        """Wait for the BOOT frame a freshly started device sends; return its payload."""
        deadline = time.monotonic() + timeout
        start = self.rx_bytes
        while (ev := self.next_event(deadline)) is not None:
            if isinstance(ev, Frame) and ev.cmd == Cmd.BOOT:
                self.boots += 1
                return ev.payload
            if self.rx_bytes - start > RX_BUDGET:
                raise DeviceError(f"{self.rx_bytes - start} bytes received but no boot banner "
                                  "(wrong baud rate, or not edgeforge firmware?)")
        raise DeviceError(f"no boot banner within {timeout:.0f} s "
                          "(wrong port or baud rate, or the firmware did not start)")

    def resync(self) -> None:
        """Complete any partial frame in the device's parser (it NAKs it), drop what is queued.

        Zero bytes are never a sync byte, so they only finish a half-received frame."""
        self.send_raw(bytes(self.max_payload + OVERHEAD))
        deadline = time.monotonic() + self.resync_s
        start = self.rx_bytes
        while (ev := self.next_event(deadline)) is not None:
            if isinstance(ev, Frame) and ev.cmd == Cmd.BOOT:
                self.boots += 1
                raise DeviceError("device reset (boot banner received while resyncing)")
            if self.rx_bytes - start > RX_BUDGET:
                raise DeviceError(f"{self.rx_bytes - start} bytes received while resyncing "
                                  "(is something else writing to the port?)")
        self.pending.clear()

    def command(self, op: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one request and return its response payload (status byte first).

        A corrupt frame carrying our SEQ, a NAK, or silence is retried at once (all requests
        are idempotent); a well-formed answer that cannot be ours, a device that reset, or
        more than RX_BUDGET bytes without an answer fails at once with one DeviceError."""
        name = op_name(op)
        if not 1 <= op <= LAST_REQUEST:
            raise DeviceError(f"request code 0x{op:02x} is outside 0x01..0x{LAST_REQUEST:02x}",
                              op=name)
        self.seq = self.seq % 255 + 1        # 1..255; 0 is the BOOT frame's
        seq = self.seq
        wait = self.timeout if timeout is None else timeout
        why = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                self.resync()
            self.send_frame(seq, op, payload)
            deadline = time.monotonic() + wait
            start = self.rx_bytes
            while True:
                if self.rx_bytes - start > RX_BUDGET:
                    raise DeviceError(f"{name}: {self.rx_bytes - start} bytes received without "
                                      "an answer (is something else writing to the port?)",
                                      op=name)
                ev = self.next_event(deadline)
                if ev is None:
                    why = f"no answer within {wait:.1f} s"
                    break
                if isinstance(ev, BadFrame):
                    if ev.seq == seq:             # our answer, damaged on the line: ask again now
                        why = f"corrupt answer ({ev.why})"
                        break
                    continue                      # noise, or a damaged stale frame
                if ev.cmd == Cmd.BOOT:
                    self.boots += 1
                    raise DeviceError(f"device reset while waiting for {name} "
                                      "(boot banner received)", op=name)
                if ev.cmd == Cmd.NAK and ev.seq in (seq, 0):
                    st = ev.payload[0] if len(ev.payload) == 1 else None
                    if st == Status.UNKNOWN_CMD:  # the frame arrived intact: resending won't help
                        raise DeviceError(f"{name}: the firmware does not know this command",
                                          op=name, status=st)
                    why = f"NAK {status_name(st) if st is not None else ev.payload.hex()}".strip()
                    break
                if ev.seq == seq and ev.cmd & RESPONSE and ev.cmd not in (Cmd.NAK, Cmd.BOOT):
                    if ev.cmd != op | RESPONSE:
                        raise DeviceError(f"{name}: the device answered with "
                                          f"{frame_name(ev.cmd)} (0x{ev.cmd:02x})", op=name)
                    if not ev.payload:
                        raise DeviceError(f"{name}: empty response", op=name)
                    if ev.payload[0] not in Status.__members__.values():
                        raise DeviceError(f"{name}: unknown status 0x{ev.payload[0]:02x}",
                                          op=name)
                    return ev.payload
                # a stale answer to an earlier try, or a NAK for some other frame: skip it
        raise DeviceError(f"{name}: {why} after {self.retries + 1} tries", op=name)

    def check(self, op: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """command() that raises DeviceError(op, status) unless the status is OK."""
        resp = self.command(op, payload, timeout)
        if resp[0] != Status.OK:
            raise DeviceError(f"{op_name(op)} failed: {status_name(resp[0])}",
                              op=op_name(op), status=resp[0])
        return resp[1:]

    def close(self) -> None:
        try:
            self.t.close()
        except TransportClosed:
            pass
