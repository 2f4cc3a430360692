"""What the host asks an MCU running edgeforge firmware; each function takes the Device first.

Payload layouts are in firmware_templates/PROTOCOL.md; the firmware side is main.c.
"""
from __future__ import annotations

import struct
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


def parse_info(p: bytes) -> DeviceInfo:
    try:
        proto, unit, fw = struct.unpack_from("<BBH", p, 0)
        hash8 = p[4:12]
        arena, nops, maxp, hz, nin, nout = struct.unpack_from("<IHHIBB", p, 12)
        off = 26
        sizes = list(struct.unpack_from(f"<{nin + nout}I", p, off))
        off += 4 * (nin + nout)
        (dlen,) = struct.unpack_from("<H", p, off)
        off += 2
        desc, tensors = p[off:off + dlen], []
        d = 0
        while d < len(desc):
            code, rank = struct.unpack_from("<BB", desc, d)
            shape = list(struct.unpack_from(f"<{rank}I", desc, d + 2))
            scale, zp = struct.unpack_from("<fi", desc, d + 2 + 4 * rank)
            tensors.append({"dtype": DTYPES.get(code, f"code{code}"), "shape": shape,
                            "scale": scale, "zero_point": zp})
            d += 10 + 4 * rank
    except struct.error as e:
        raise DeviceError(f"INFO: malformed reply ({e}): {p.hex()}", op="INFO") from None
    return DeviceInfo(proto, UNITS.get(unit, f"unit{unit}"), f"{fw >> 8}.{fw & 0xFF}", bytes(hash8),
                      arena, nops, maxp, hz, sizes[:nin], sizes[nin:], tensors)


def info(dev: Device) -> DeviceInfo:
    """Ask what the device runs; also tells `dev` the device's maximum payload."""
    i = parse_info(dev.check(Cmd.INFO))
    dev.info = i
    dev.max_payload = min(dev.max_payload, i.max_payload)
    return i


def _info(dev: Device) -> DeviceInfo:
    return dev.info if dev.info is not None else info(dev)


def write_input(dev: Device, index: int, data: bytes) -> None:
    """Write input `index` in chunks that fit one frame."""
    size = _info(dev).input_bytes[index]
    if len(data) != size:
        raise DeviceError(f"input {index}: {len(data)} bytes given, device expects {size}",
                          op="WRITE_INPUT")
    chunk = dev.max_payload - 5
    for off in range(0, len(data), chunk):
        dev.check(Cmd.WRITE_INPUT, struct.pack("<BI", index, off) + data[off:off + chunk])


def invoke(dev: Device, runs: int = 1, warmup: int = 0) -> list[int]:
    """Run the model warmup + runs times; the counter delta of each timed run (device units)."""
    max_runs = (dev.max_payload - 7) // 8
    counts: list[int] = []
    done_warmup = False
    while len(counts) < runs:
        n = min(max_runs, runs - len(counts))
        w = 0 if done_warmup else warmup
        timeout = dev.timeout + INVOKE_TIMEOUT_S * (n + w)
        resp = dev.command(Cmd.INVOKE, struct.pack("<HH", n, w), timeout=timeout)
        if resp[0] != Status.OK:
            rc = struct.unpack_from("<i", resp, 1)[0] if len(resp) >= 5 else None
            raise DeviceError(f"INVOKE failed: {status_name(resp[0])}"
                              + (f", model returned {rc}" if rc is not None else ""),
                              op="INVOKE", status=resp[0])
        (got,) = struct.unpack_from("<H", resp, 5)
        counts += list(struct.unpack_from(f"<{got}Q", resp, 7))
        done_warmup = True
    return counts


def read_output(dev: Device, index: int, nbytes: int | None = None) -> bytes:
    """Read output `index` (all of it unless nbytes) in chunks."""
    size = _info(dev).output_bytes[index] if nbytes is None else nbytes
    chunk = dev.max_payload - 1
    out = bytearray()
    while len(out) < size:
        n = min(chunk, size - len(out))
        out += dev.check(Cmd.READ_OUTPUT, struct.pack("<BIH", index, len(out), n))
    return bytes(out)


def layer_profile(dev: Device) -> list[int]:
    """Per-op counts of the last timed run, in schedule order (device units)."""
    counts: list[int] = []
    total = None
    while total is None or len(counts) < total:
        p = dev.check(Cmd.LAYER_PROFILE, struct.pack("<H", len(counts)))
        total, first, n = struct.unpack_from("<HHH", p, 0)
        if first != len(counts) or (n == 0 and len(counts) < total):
            raise DeviceError(f"LAYER_PROFILE: bad chunk (first {first}, n {n}, total {total})",
                              op="LAYER_PROFILE")
        counts += list(struct.unpack_from(f"<{n}I", p, 6))
    return counts
