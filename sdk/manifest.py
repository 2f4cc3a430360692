"""The JSON manifest that describes every compiled artifact directory.

codegen writes it; targets read it to check a device runs what the host thinks it runs.
Layout of a compiled DIR:
    DIR/manifest.json   this file
    DIR/model.tflite    the int8 model (LiteRT / TFLM)
    DIR/c/              model.h model.c weights.c + the kernels it calls
    DIR/report.json     per-op table (MACs, bytes, arena use)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeforge.errors import EdgeforgeError
from edgeforge.outdir import FORMAT, MANIFEST, recover, sha256_file

__all__ = ["FORMAT", "MANIFEST", "Manifest", "TensorSpec", "sha256_file"]


@dataclass
class TensorSpec:
    name: str
    shape: list[int]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None
    offset: int | None = None      # byte offset in the arena (C package)


@dataclass
class Manifest:
    name: str                      # C symbol prefix: ef_<name>_invoke()
    model_sha256: str              # sha256 of model.tflite as written
    source_sha256: str             # sha256 of the file the user compiled
    sdk_version: str
    numerics: str                  # "tflm" | "litert"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    arena_bytes: int
    arena_lower_bound_bytes: int
    weight_bytes: int
    ops: list[str]                 # one entry per node, schedule order (the per-op profile order)
    plan: list[dict[str, Any]] = field(default_factory=list)  # tensor, offset, size, first, last
    code_bytes: int | None = None
    board: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT           # what marks a folder as a DIR edgeforge wrote (outdir.py)
    files: dict[str, str] = field(default_factory=dict)  # every file compile wrote: sha256

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        path = Path(directory) / MANIFEST
        if not path.exists():
            recover(Path(directory))      # a swap interrupted by an earlier compile
        try:
            raw = json.loads(path.read_text())
            raw["inputs"] = [TensorSpec(**t) for t in raw["inputs"]]
            raw["outputs"] = [TensorSpec(**t) for t in raw["outputs"]]
            m = cls(**raw)
            if not isinstance(m.model_sha256, str) or len(m.model_sha256) != 64:
                raise ValueError("model_sha256 is not a sha256 hex digest")
            bytes.fromhex(m.model_sha256)
            return m
        except (FileNotFoundError, NotADirectoryError):
            raise EdgeforgeError(f"{directory}: not a compiled directory (no {MANIFEST}); "
                                 "run `edgeforge compile` first") from None
        except OSError as e:
            raise EdgeforgeError(f"{path}: cannot read ({e.strerror})") from None
        except (ValueError, TypeError, KeyError) as e:
            raise EdgeforgeError(f"{path}: corrupt manifest ({e})") from None

    def check_model(self, directory: str | Path) -> None:
        """Refuse a DIR whose model.tflite is missing or changed after compile: its C package,
        firmware hash and the host reference would describe different models."""
        path = Path(directory) / "model.tflite"
        if not path.is_file():
            raise EdgeforgeError(f"{path}: missing from the compiled DIR; recompile")
        if sha256_file(path) != self.model_sha256:
            raise EdgeforgeError(f"{path}: changed after compile (its sha256 is not the "
                                 f"manifest's {self.model_sha256[:16]}); recompile")

    @property
    def hash8(self) -> bytes:
        """First 8 bytes of model_sha256: what firmware and agents report as their identity."""
        return bytes.fromhex(self.model_sha256[:16])
