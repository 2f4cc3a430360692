"""Typed errors. The CLI prints any EdgeforgeError as one line and exits 2 -- never a traceback."""
from __future__ import annotations


class EdgeforgeError(Exception):
    """Base of every error a user can cause (bad file, bad option, silent device)."""


class ModelError(EdgeforgeError):
    """A model file that cannot be read: names the file and why."""

    def __init__(self, path: str, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


class UnsupportedOpError(EdgeforgeError):
    """One message listing EVERY unsupported op: [(index, node name, op type, why)]."""

    def __init__(self, path: str, problems: list[tuple[int, str, str, str]], available: list[str]):
        lines = [f"  node {i} '{name}' ({op}): {why}" for i, name, op, why in problems]
        super().__init__(f"{path}: {len(problems)} unsupported op(s):\n" + "\n".join(lines)
                         + f"\n  supported: {', '.join(sorted(available))}")
        self.path, self.problems = path, problems


class QuantizeError(EdgeforgeError):
    """Calibration data or a graph that cannot be quantized."""


class BuildError(EdgeforgeError):
    """A compiler, linker or size-budget failure."""


class DeviceError(EdgeforgeError):
    """A device that answered wrongly, not at all, or with an error status."""

    def __init__(self, message: str, op: str | None = None, status: int | None = None):
        super().__init__(message if status is None else f"{message} (status {status})")
        self.op, self.status = op, status
