"""What the host asks an MCU running edgeforge firmware; each function takes the Device first.

Payload layouts are in firmware_templates/PROTOCOL.md; the firmware side is main.c.
"""
from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass, field

from edgeforge.errors import DeviceError
from edgeforge.targets.protocol import Cmd, Device, Status, status_name

UNITS = {0: "instructions", 1: "cycles"}
DTYPES = {1: "int8", 2: "uint8", 3: "int16", 4: "int32", 5: "float32"}
INVOKE_TIMEOUT_S = 60.0           # per invocation; QEMU ResNet-8 takes ~1 s


@dataclass
class DeviceInfo:
    protocol: int
    counter_unit: str              # "instructions" | "cycles"
    firmware: str                  # "1.0"
    model_hash: bytes              # 8 bytes: manifest.hash8 of the compiled model
    arena_bytes: int
    num_ops: int
    max_payload: int
    clock_hz: int
    input_bytes: list[int]
    output_bytes: list[int]
    tensors: list[dict] = field(default_factory=list)   # inputs then outputs

    def as_dict(self) -> dict:
        return {"protocol": self.protocol, "counter_unit": self.counter_unit,
                "firmware": self.firmware, "model_hash": self.model_hash.hex(),
                "arena_bytes": self.arena_bytes, "num_ops": self.num_ops,
                "max_payload": self.max_payload, "clock_hz": self.clock_hz,
                "input_bytes": self.input_bytes, "output_bytes": self.output_bytes,
                "tensors": self.tensors}


MIN_PAYLOAD = 64           # below this no command's reply fits (PROTOCOL.md: 1024)
MAX_RANK = 8
ITEMSIZE = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4}


def _bad(op: str, why: str, p: bytes = b"") -> DeviceError:
    shown = f": {p[:48].hex()}{'...' if len(p) > 48 else ''}" if p else ""
    return DeviceError(f"{op}: malformed reply ({why}){shown}", op=op)


def parse_info(p: bytes) -> DeviceInfo:
    """INFO's reply after the status byte, every field checked before anything uses it."""
    try:
        proto, unit, fw = struct.unpack_from("<BBH", p, 0)
        hash8 = p[4:12]
        arena, nops, maxp, hz, nin, nout = struct.unpack_from("<IHHIBB", p, 12)
        off = 26
        sizes = list(struct.unpack_from(f"<{nin + nout}I", p, off))
        off += 4 * (nin + nout)
        (dlen,) = struct.unpack_from("<H", p, off)
        off += 2
    except struct.error:
        raise _bad("INFO", f"{len(p) + 1} bytes is too short", p) from None
    if proto != 1:
        raise DeviceError(f"INFO: device speaks protocol {proto}, this host speaks 1", op="INFO")
    if unit not in UNITS:
        raise _bad("INFO", f"counter unit {unit}", p)
    if maxp < MIN_PAYLOAD:
        raise _bad("INFO", f"max_payload {maxp} is below the protocol's minimum {MIN_PAYLOAD}", p)
    if nin == 0 or nout == 0:
        raise _bad("INFO", f"{nin} inputs and {nout} outputs", p)
    if any(s == 0 or s >= 1 << 31 for s in sizes):
        raise _bad("INFO", f"tensor sizes {sizes}", p)
    if off + dlen != len(p):
        raise _bad("INFO", f"{len(p) - off} descriptor bytes, header says {dlen}", p)
    desc, tensors, d = p[off:], [], 0
    try:
        while d < len(desc):
            code, rank = struct.unpack_from("<BB", desc, d)
            if code not in DTYPES or rank > MAX_RANK:
                raise _bad("INFO", f"tensor {len(tensors)}: dtype code {code}, rank {rank}", p)
            shape = list(struct.unpack_from(f"<{rank}I", desc, d + 2))
            scale, zp = struct.unpack_from("<fi", desc, d + 2 + 4 * rank)
            tensors.append({"dtype": DTYPES[code], "shape": shape, "scale": scale,
                            "zero_point": zp})
            d += 10 + 4 * rank
    except struct.error:
        raise _bad("INFO", "tensor descriptors cut short", p) from None
    if tensors:
        if len(tensors) != nin + nout:
            raise _bad("INFO", f"{len(tensors)} tensor descriptors for {nin + nout} tensors", p)
        for k, (t, size) in enumerate(zip(tensors, sizes)):
            n = ITEMSIZE[t["dtype"]]
            for dim in t["shape"]:
                n *= dim
            if n != size or not math.isfinite(t["scale"]) or t["scale"] < 0:
                raise _bad("INFO", f"tensor {k}: {t['dtype']} {t['shape']} scale {t['scale']} "
                                   f"does not describe {size} bytes", p)
    return DeviceInfo(proto, UNITS[unit], f"{fw >> 8}.{fw & 0xFF}", bytes(hash8),
                      arena, nops, maxp, hz, sizes[:nin], sizes[nin:], tensors)


def info(dev: Device) -> DeviceInfo:
    """Ask what the device runs; also tells `dev` the device's maximum payload."""
    i = parse_info(dev.check(Cmd.INFO))
    dev.info = i
    dev.max_payload = min(dev.max_payload, i.max_payload)
    return i


def _info(dev: Device) -> DeviceInfo:
    return dev.info if dev.info is not None else info(dev)


def _index(what: str, index: int, sizes: list[int], op: str) -> int:
    if not 0 <= index < len(sizes):
        raise DeviceError(f"{what} {index}: the device has {len(sizes)}", op=op)
    return sizes[index]


def write_input(dev: Device, index: int, data: bytes) -> None:
    """Write input `index` in chunks that fit one frame."""
    size = _index("input", index, _info(dev).input_bytes, "WRITE_INPUT")
    if len(data) != size:
        raise DeviceError(f"input {index}: {len(data)} bytes given, device expects {size}",
                          op="WRITE_INPUT")
    chunk = dev.max_payload - 5
    for off in range(0, len(data), chunk):
        if dev.check(Cmd.WRITE_INPUT, struct.pack("<BI", index, off) + data[off:off + chunk]):
            raise _bad("WRITE_INPUT", "bytes after the status")


def invoke_timeout(dev: Device, n: int) -> float:
    """Seconds to wait for `n` invocations: 10x the last measured time per run (plus the
    link's own timeout) once one was measured, INVOKE_TIMEOUT_S per run before that."""
    per_run = INVOKE_TIMEOUT_S if dev.run_s is None else min(INVOKE_TIMEOUT_S,
                                                             10 * dev.run_s + 0.1)
    return dev.timeout + per_run * n


def invoke(dev: Device, runs: int = 1, warmup: int = 0) -> list[int]:
    """Run the model warmup + runs times; the counter delta of each timed run (device units)."""
    max_runs = (dev.max_payload - 7) // 8
    counts: list[int] = []
    done_warmup = False
    while len(counts) < runs:
        n = min(max_runs, runs - len(counts))
        w = 0 if done_warmup else warmup
        t0 = time.monotonic()
        resp = dev.command(Cmd.INVOKE, struct.pack("<HH", n, w), timeout=invoke_timeout(dev, n + w))
        if resp[0] != Status.OK:
            if resp[0] != Status.INVOKE_FAILED or len(resp) < 5:
                raise DeviceError(f"INVOKE failed: {status_name(resp[0])}", op="INVOKE",
                                  status=resp[0])
            rc = struct.unpack_from("<i", resp, 1)[0]
            raise DeviceError(f"INVOKE failed: {status_name(resp[0])}, model returned {rc}",
                              op="INVOKE", status=resp[0])
        if len(resp) < 7:
            raise _bad("INVOKE", f"{len(resp)} bytes, at least 7 expected", resp)
        rc, got = struct.unpack_from("<iH", resp, 1)
        if rc != 0 or got != n or len(resp) != 7 + 8 * got:
            raise _bad("INVOKE", f"{n} run(s) asked, reply holds code {rc}, n {got} and "
                                 f"{(len(resp) - 7) / 8:g} counts", resp)
        dev.run_s = (time.monotonic() - t0) / (n + w)
        counts += list(struct.unpack_from(f"<{got}Q", resp, 7))
        done_warmup = True
    return counts


def read_output(dev: Device, index: int, nbytes: int | None = None) -> bytes:
    """Read output `index` (all of it unless nbytes) in chunks."""
    size = _index("output", index, _info(dev).output_bytes, "READ_OUTPUT")
    size = size if nbytes is None else nbytes
    chunk = dev.max_payload - 1
    out = bytearray()
    while len(out) < size:
        n = min(chunk, size - len(out))
        data = dev.check(Cmd.READ_OUTPUT, struct.pack("<BIH", index, len(out), n))
        if len(data) != n:
            raise _bad("READ_OUTPUT", f"{len(data)} bytes for {n} asked", data)
        out += data
    return bytes(out)


def layer_profile(dev: Device) -> list[int]:
    """Per-op counts of the last timed run, in schedule order (device units)."""
    total = _info(dev).num_ops
    room = (dev.max_payload - 7) // 4
    counts: list[int] = []
    while len(counts) < total:              # each reply adds >= 1 count or fails: bounded
        p = dev.check(Cmd.LAYER_PROFILE, struct.pack("<H", len(counts)))
        if len(p) < 6:
            raise _bad("LAYER_PROFILE", f"{len(p) + 1} bytes", p)
        t, first, n = struct.unpack_from("<HHH", p, 0)
        if (t != total or first != len(counts) or not 1 <= n <= min(room, total - first)
                or len(p) != 6 + 4 * n):
            raise _bad("LAYER_PROFILE", f"asked from op {len(counts)} of {total}, reply says "
                                        f"total {t}, first {first}, n {n} in {len(p) + 1} bytes",
                       p)
        counts += list(struct.unpack_from(f"<{n}I", p, 6))
    return counts


def stack_usage(dev: Device) -> tuple[int, int] | None:
    """(stack region bytes, peak bytes of the last INVOKE), or None from a firmware that
    predates the STACK command (PROTOCOL.md)."""
    try:
        p = dev.check(Cmd.STACK)
    except DeviceError as e:
        if getattr(e, "status", None) == Status.UNKNOWN_CMD:
            return None
        raise
    if len(p) != 8:
        raise _bad("STACK", f"{len(p) + 1} bytes", p)
    size, peak = struct.unpack("<II", p)
    if peak > size:
        raise _bad("STACK", f"peak {peak} B above the {size} B stack", p)
    return size, peak
