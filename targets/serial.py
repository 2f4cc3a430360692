"""MCU targets: the protocol-driven Target shared by serial boards and QEMU, and SerialTarget.

`McuTarget` does everything after the byte stream exists (boot banner, INFO and the model
hash check, inputs, invoke, outputs, per-op counts); subclasses only say how to get the
stream: `SerialTarget` opens a port (the board was flashed by `edgeforge flash`),
`targets.qemu.QemuTarget` starts an emulator.

    serial:///dev/ttyACM0?baud=921600&board=nucleo-l4r5zi[&boot=0]
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from edgeforge.errors import DeviceError, EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.runner import check_inputs
from edgeforge.targets import commands
from edgeforge.targets.base import Measurement, Target
from edgeforge.targets.build import Board, fw_dir, load_board
from edgeforge.targets.protocol import Device
from edgeforge.targets.transport import Transport, TransportClosed

NP_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
             "float32": np.float32}


def read_build_sizes(directory: Path) -> dict[str, int] | None:
    """The "sizes" of DIR/fw/<board>/build.json (targets/build.py), if that image exists."""
    try:
        return dict(json.loads((Path(directory) / "build.json").read_text())["sizes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ram_report(sizes: dict[str, int], stack_peak: int) -> dict[str, int]:
    """Mutable RAM the deployment really uses: the planned arena, the firmware's other
    .data/.bss, and the stack's measured high-water mark (STACK, PROTOCOL.md)."""
    data_bss = int(sizes.get("data", 0)) + int(sizes.get("bss", 0))
    arena = int(sizes.get("arena", 0))
    return {"arena": arena, "data_bss": data_bss, "stack_peak": int(stack_peak),
            "stack_reserved": int(sizes.get("stack", 0)),
            "total": arena + data_bss + int(stack_peak)}


class McuTarget(Target):
    """A device speaking the edgeforge MCU protocol (firmware_templates/PROTOCOL.md)."""

    kind = "mcu"

    def __init__(self, board: Board, *, trace: bool = False, timeout: float = 5.0,
                 verbose: int = 0, **_: Any):
        self.board = board
        self.trace = trace
        self.timeout = timeout
        self.verbose = verbose
        self.dev: Device | None = None
        self.manifest: Manifest | None = None
        self.info: commands.DeviceInfo | None = None
        self.build_sizes: dict[str, int] | None = None   # the image's build.json "sizes"

    # subclasses: produce a connected byte stream to freshly started firmware
    def _start(self, artifact: Path) -> tuple[Transport, bool]:
        """(transport, expect_boot): expect_boot says a BOOT frame is about to arrive."""
        raise NotImplementedError

    def _why_closed(self) -> str:
        return ""

    def _call(self, fn, *args):
        """Run a protocol call; a vanished device becomes one clear DeviceError."""
        if self.dev is None:
            raise DeviceError("target not opened")
        try:
            return fn(self.dev, *args)
        except TransportClosed as e:
            raise DeviceError(f"{self.board.name}: device went away: {e}{self._why_closed()}",
                              op=e.op) from None

    def open(self, artifact: Path, manifest: Manifest) -> dict[str, Any]:
        self.manifest = manifest
        transport, expect_boot = self._start(Path(artifact))
        if self.build_sizes is None:        # a flashed board: the image built in DIR
            self.build_sizes = read_build_sizes(fw_dir(artifact, self.board))
        self.dev = Device(transport, timeout=self.timeout, trace=self.trace)
        if expect_boot:
            try:
                self.dev.wait_boot()
            except TransportClosed as e:
                raise DeviceError(f"{self.board.name}: device went away before booting: "
                                  f"{e}{self._why_closed()}") from None
        self.info = self._call(commands.info)
        if self.info.model_hash != manifest.hash8:
            raise DeviceError(
                f"{self.board.name} runs model {self.info.model_hash.hex()}, but {artifact} is "
                f"{manifest.hash8.hex()}: flash it first (edgeforge flash {artifact} "
                f"--board {self.board.name})", op="INFO")
        self._check_info(manifest)
        return {"board": self.board.name, "cpu": self.board.cpu, **self.info.as_dict()}

    def _check_info(self, m: Manifest) -> None:
        """The device's INFO must describe the manifest's model before anything trusts it."""
        i = self.info
        assert i is not None

        def nbytes(specs):
            return [int(np.prod(s.shape)) * np.dtype(NP_DTYPES[s.dtype]).itemsize for s in specs]
        want = (nbytes(m.inputs), nbytes(m.outputs), len(m.ops))
        got = (i.input_bytes, i.output_bytes, i.num_ops)
        if got != want:
            raise DeviceError(f"{self.board.name}: INFO says input bytes {got[0]}, output bytes "
                              f"{got[1]}, {got[2]} ops; the manifest has {want[0]}, {want[1]}, "
                              f"{want[2]} ops (reflash: edgeforge flash ... --board "
                              f"{self.board.name})", op="INFO")

    def infer(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        m = self.manifest
        assert m is not None and self.info is not None, "open() first"
        for i, a in enumerate(check_inputs(m.inputs, list(inputs), self.board.name)):
            self._call(commands.write_input, i, np.ascontiguousarray(a).tobytes())
        counts = self._call(commands.invoke, 1, 0)
        hz = self.info.clock_hz or self.board.clock_hz
        self.last_latency_us = counts[0] / hz * 1e6 if counts and hz else None
        outs = []
        for i, spec in enumerate(m.outputs):
            raw = self._call(commands.read_output, i)
            outs.append(np.frombuffer(raw, NP_DTYPES[spec.dtype]).reshape(spec.shape).copy())
        return outs

    def benchmark(self, runs: int, warmup: int) -> Measurement:
        assert self.manifest is not None and self.info is not None, "open() first"
        counts = self._call(commands.invoke, runs, warmup)
        per_op_counts = self._call(commands.layer_profile)
        stack = self._call(commands.stack_usage)
        if len(counts) != runs or len(per_op_counts) != len(self.manifest.ops):
            raise DeviceError(f"{self.board.name}: {len(counts)} run counts for {runs} runs, "
                              f"{len(per_op_counts)} per-op counts for "
                              f"{len(self.manifest.ops)} ops", op="INVOKE")
        unit = self.info.counter_unit
        ops = self.manifest.ops
        per_op = [{"index": i, "op": ops[i] if i < len(ops) else "?", unit: c}
                  for i, c in enumerate(per_op_counts)]
        # a count becomes time at the board's clock; an instruction count assumes 1 IPC
        hz = self.info.clock_hz or self.board.clock_hz
        return Measurement(
            latency_us=[c / hz * 1e6 for c in counts], counts=counts, count_unit=unit,
            per_op=per_op,
            extra={"clock_hz": hz, "latency_basis": f"{unit} at {hz / 1e6:g} MHz"
                   + (", 1 instruction per cycle" if unit == "instructions" else ""),
                   **({"ram": ram_report(self.build_sizes, stack[1])}
                      if stack and self.build_sizes else {})})

    def close(self) -> None:
        if self.dev is not None:
            self.dev.close()
            self.dev = None


class SerialTarget(McuTarget):
    """A physical board on a serial port, already flashed (`edgeforge flash`)."""

    kind = "serial"

    def __init__(self, port: str, board: Board, baud: int, expect_boot: bool = False, **kw: Any):
        super().__init__(board, **kw)
        self.port, self.baud, self.expect_boot = port, baud, expect_boot

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> SerialTarget:
        u = urlparse(uri)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        port = (u.netloc + u.path) or q.get("port", "")
        if not port or "board" not in q:
            raise EdgeforgeError(f"{uri}: use serial:///dev/ttyACM0?board=NAME[&baud=921600]")
        board = load_board(q["board"])
        baud = q.get("baud", str(board.uart["baud"]))
        if not baud.isdigit() or int(baud) == 0:
            raise EdgeforgeError(f"{uri}: baud {baud!r} is not a positive integer")
        return cls(port, board, int(baud), expect_boot=q.get("boot") == "1", **options)

    def _start(self, artifact: Path) -> tuple[Transport, bool]:
        from edgeforge.targets.transport import SerialTransport

        return SerialTransport(self.port, self.baud), self.expect_boot

    def open(self, artifact: Path, manifest: Manifest) -> dict[str, Any]:
        try:
            return super().open(artifact, manifest)
        except DeviceError as e:
            if self.info is not None or self.port in str(e):    # it answered, or says where
                raise
            raise DeviceError(f"{self.port}: {e} (is the board flashed, at {self.baud} baud?)",
                              op=e.op) from None
