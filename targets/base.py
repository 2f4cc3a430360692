"""The Target interface every device path implements, and the statistics they all report.

A Target is opened on a compiled artifact DIR, then answers infer() for single samples and
benchmark() for timing. `targets/profile.py` drives any Target the same way, so QEMU, a
serial board, an SSH board and the local machine answer the same questions the same way.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from edgeforge.manifest import Manifest


@dataclass
class Measurement:
    latency_us: list[float] = field(default_factory=list)   # wall/virtual time per run
    counts: list[int] = field(default_factory=list)         # instructions or cycles per run
    count_unit: str | None = None                           # "instructions" | "cycles" | None
    per_op: list[dict[str, Any]] = field(default_factory=list)  # {index, op, name, <unit>}
    extra: dict[str, Any] = field(default_factory=dict)     # runtime name, peak RSS, ...


class Target(ABC):
    kind: str = "abstract"
    last_latency_us: float | None = None   # the device's own time for the last infer(), if known

    @classmethod
    @abstractmethod
    def from_uri(cls, uri: str, **options: Any) -> Target: ...

    @abstractmethod
    def open(self, artifact: Path, manifest: Manifest) -> dict[str, Any]:
        """Deploy/start, then check the device runs `manifest` (hash); return device info."""

    @abstractmethod
    def infer(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run one sample (each input with its batch dim) and return every output."""

    @abstractmethod
    def benchmark(self, runs: int, warmup: int) -> Measurement:
        """Time `runs` invocations after `warmup` on the last input written."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


STAT_NAMES = ("count", "first", "min", "max", "mean", "std", "p50", "p90", "p99")


def stats(samples: list[float] | np.ndarray) -> dict[str, float]:
    """Latency statistics with the names benchmark_model and trtexec users know."""
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        return {"count": 0}
    return {
        "count": int(a.size), "first": float(a[0]), "min": float(a.min()),
        "max": float(a.max()), "mean": float(a.mean()), "std": float(a.std()),
        "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
    }
