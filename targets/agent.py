"""Linux targets driven by the device agent: the part SSH and local share.

`AgentTarget` is everything an SSH board and this machine have in common: deploy a compiled
DIR into a content-addressed directory (`<base>/models/<sha16>/`, unchanged files skipped,
every file uploaded under a temporary name then renamed, a `.complete` marker written last),
start `runtime/agent/agent.py session` there, and answer infer()/benchmark() over its JSON
lines (arrays as base64 .npy: encode / decode). The only thing that differs is the
`targets.shell.Shell` -- how processes start and files move.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import DeviceError, EdgeforgeError
from edgeforge.manifest import Manifest, sha256_file
from edgeforge.targets.base import Measurement, Target
from edgeforge.targets.shell import Pipe, Shell

log = logging.getLogger("edgeforge.agent")

AGENT_SRC = Path(str(files("edgeforge.runtime") / "agent"))
AGENT_FILES = ("native_main.c", "agent.py")   # agent.py last: its presence means both arrived
COMPLETE = ".complete"
DEFAULT_BASE = "~/.edgeforge"
RUNTIMES = ("auto", "litert", "tensorrt", "native")     # --runtime; agent.py RUNTIME_CHOICES
Progress = Callable[[str, int, int], None]     # (relative path, bytes sent, total)


def encode(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    return {"dtype": str(a.dtype), "shape": list(a.shape),
            "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode(d: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["b64"]), dtype=d["dtype"]).reshape(d["shape"]).copy()


def artifact_files(artifact: Path) -> list[str]:
    """What a Linux board needs from a compiled DIR: the model, its manifest, the C package."""
    if not (artifact / "model.tflite").exists():
        raise EdgeforgeError(f"{artifact}: no model.tflite; run `edgeforge compile` first")
    rels = [n for n in ("model.tflite", "model_qdq.onnx", "manifest.json", "report.json")
            if (artifact / n).exists()]                     # model_qdq.onnx: for TensorRT
    c = artifact / "c"
    if c.is_dir():
        rels += sorted(p.relative_to(artifact).as_posix() for p in c.rglob("*")
                       if p.is_file() and p.suffix in (".c", ".h"))
    return rels


def _join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts)


# ---------------------------------------------------------------------------- the target

PYTHON_FLOOR = (3, 8)    # runtime/agent/agent.py PYTHON_FLOOR: what JetPack 5 boards ship
PYTHON_PROBE = "import sys; print('%d.%d.%d' % tuple(sys.version_info[:3]))"   # any Python


def _last_line(err: bytes) -> str:
    """The last line a remote program wrote to stderr (the error, not its traceback)."""
    lines = [ln.strip() for ln in err.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


QUERY_KEYS = {"python", "dir", "base", "native", "threads", "timeout", "install_runtime"}


def _number(key: str, value: Any, kind: type, least: float) -> Any:
    """?threads=2 / ?timeout=30 (or the keyword option): one error naming the key if bad."""
    try:
        v = kind(value)
        ok = math.isfinite(v) and v >= least
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise EdgeforgeError(f"target option {key}={value!r}: must be a number >= {least:g}")
    return v


class AgentTarget(Target):
    """A Linux machine running agent.py; subclasses only choose the Shell."""

    kind = "agent"

    def __init__(self, shell: Shell, *, uri: str, base: str = DEFAULT_BASE,
                 python: str = "python3", native: bool = False, threads: int = 1,
                 timeout: float = 120.0, install_runtime: bool = False, verbose: int = 0,
                 runtime: str = "auto"):
        self.shell, self.uri = shell, uri
        self.base_opt, self.python_opt = base, python
        self.native, self.threads, self.timeout, self.verbose = native, threads, timeout, verbose
        self.install_runtime = install_runtime
        self.runtime = runtime      # auto | litert | tensorrt | native (the agent chooses)
        self._latency_us = 1000.0          # last infer's time: sizes the benchmark's timeout
        self.numerics = "litert"   # outputs come from LiteRT's reference kernels (single rounding)
        self._base: str | None = None
        self._agent: str | None = None
        self._pipe: Pipe | None = None
        self._device: dict[str, Any] = {}
        self._diff: float | int | None = None

    # -- options shared by every agent target ---------------------------------------------
    @staticmethod
    def common_options(options: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        """Keyword options (CLI) win over URI query ones: ?python=PATH&dir=BASE&native=1
        &threads=N&timeout=S&install_runtime=1 (pip-install a runtime if the board has none)."""
        q = {k: v[-1] for k, v in query.items()}
        unknown = set(q) - QUERY_KEYS
        if unknown:
            raise EdgeforgeError(f"unknown target option(s) {', '.join(sorted(unknown))}; "
                                 f"the URI takes ?{'&'.join(sorted(QUERY_KEYS))}")
        out: dict[str, Any] = {}
        base = options.get("base") or options.get("dir") or q.get("dir") or q.get("base")
        if base:
            out["base"] = base
        python = options.get("python") or q.get("python")
        if python:
            out["python"] = python
        native = options.get("native") or q.get("native", "") in ("1", "true", "yes")
        out["native"] = bool(native)
        threads = options.get("threads") or q.get("threads")
        if threads is not None:
            out["threads"] = _number("threads", threads, int, 1)
        timeout = options.get("timeout") or q.get("timeout")
        if timeout is not None:
            out["timeout"] = _number("timeout", timeout, float, 1e-3)
        install = options.get("install_runtime") or q.get("install_runtime", "") in ("1", "true")
        out["install_runtime"] = bool(install)
        runtime = options.get("runtime") or q.get("runtime")
        if runtime:
            if runtime not in RUNTIMES:
                raise EdgeforgeError(f"runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
            out["runtime"] = runtime
        out["verbose"] = int(options.get("verbose") or 0)
        return out

    # -- plumbing ---------------------------------------------------------------------------
    def _expand(self, path: str) -> str:
        """A leading ~ means the device user's home (arguments are quoted: no shell expands)."""
        return self.shell.home() + path[1:] if path == "~" or path.startswith("~/") else path

    @property
    def base(self) -> str:
        if self._base is None:
            self._base = self._expand(self.base_opt).rstrip("/") or "/"
        return self._base

    @property
    def python(self) -> str:
        if self.python_opt.startswith("~"):
            self.python_opt = self._expand(self.python_opt)
        return self.python_opt

    def _log(self, level: int, msg: str) -> None:
        if self.verbose >= level:
            log.info(f"[{self.shell.where}] {msg}")

    def _put_atomic(self, data: Path | bytes, remote: str, progress=None) -> None:
        """Temp name, then rename: an interrupted upload never leaves a half file in place."""
        tmp = f"{remote}.part-{os.getpid()}-{os.urandom(3).hex()}"
        try:
            self.shell.put(data, tmp, progress)
        except BaseException:
            with contextlib.suppress(Exception):   # link may be gone; the next deploy cleans up
                self.shell.remove(tmp)
            raise
        self.shell.rename(tmp, remote)

    def ensure_agent(self) -> str:
        """Upload agent.py + native_main.c into <base>/agent/<sha12>/ unless already there."""
        if self._agent:
            return self._agent
        h = hashlib.sha256()
        for n in AGENT_FILES:
            h.update((AGENT_SRC / n).read_bytes())
        rdir = _join(self.base, "agent", h.hexdigest()[:12])
        agent = _join(rdir, "agent.py")
        if not self.shell.exists(agent):
            self._log(1, f"uploading agent to {rdir}")
            self.shell.makedirs(rdir)
            for n in AGENT_FILES:
                self._put_atomic(AGENT_SRC / n, _join(rdir, n))
        self._agent = agent
        return agent

    def agent(self, *args: str, timeout: float | None = None) -> dict[str, Any]:
        """Run one agent command; its single JSON line, or DeviceError with the agent's words."""
        argv = [self.python, self.ensure_agent(), *args]
        rc, out, err = self.shell.run(argv, timeout or self.timeout)
        lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
        try:
            res = json.loads(lines[-1]) if lines else None
        except ValueError:
            res = None
        if res is None:
            # the agent did not get as far as answering: an interpreter too old to parse it,
            # or none at all. Say which, in one line; never pass the remote traceback on.
            version = self._python_version()
            if version is None:
                raise DeviceError(f"{self.shell.where}: cannot run {self.python} (exit {rc}"
                                  f"{': ' + _last_line(err) if _last_line(err) else ''}); point "
                                  "?python= at a Python >= "
                                  f"{'.'.join(map(str, PYTHON_FLOOR))} on the device")
            self._check_python(version)
            raise DeviceError(f"{self.shell.where}: agent {args[0]} failed under {self.python} "
                              f"(Python {version}, exit {rc}): {_last_line(err) or 'no output'}")
        if "error" in res:
            raise DeviceError(f"{self.shell.where}: {res['error']}")
        return res

    def device_info(self) -> dict[str, Any]:
        if not self._device:
            self._device = self.agent("info")
            if self.install_runtime:   # a no-op when a usable runtime is there
                res = self.agent("--install-runtime", timeout=max(self.timeout, 900.0))
                if res.get("installed"):
                    self._log(1, f"installed {res['installed']} on the device")
                    self._device = self.agent("info")
            self._check_requirements(self._device)
        return self._device

    def _python_version(self) -> str | None:
        """X.Y.Z of the device's interpreter (a probe any Python parses), or None."""
        try:
            rc, out, _ = self.shell.run([self.python, "-c", PYTHON_PROBE], 30.0)
        except DeviceError:
            return None
        v = out.decode(errors="replace").strip()
        return v if rc == 0 and re.fullmatch(r"\d+\.\d+\.\d+", v) else None

    def _check_python(self, version: str) -> None:
        if tuple(int(p) for p in version.split(".")[:2]) < PYTHON_FLOOR:
            floor = ".".join(map(str, PYTHON_FLOOR))
            raise DeviceError(f"{self.shell.where}: {self.python} is Python {version}; the agent "
                              f"needs Python >= {floor} (JetPack 5 / Ubuntu 20.04 ship 3.8): "
                              "install a newer python3 on the device and pass it as "
                              "?python=/path/to/python3")

    def _check_requirements(self, info: dict[str, Any]) -> None:
        """One line naming the host, the Python and what it lacks, before anything runs."""
        version = str(info.get("python") or "?")
        if re.fullmatch(r"\d+\.\d+\.\d+", version):
            self._check_python(version)
        missing, pkgs = [], []
        if not info.get("numpy"):
            missing.append("numpy")
            pkgs.append("'numpy<2'" if version.startswith("3.8.") else "numpy")
        if not self.native and not info.get("runtimes"):
            missing.append("a TFLite interpreter (ai-edge-litert, tflite-runtime or tensorflow)")
            # ai-edge-litert has wheels from Python 3.9; tflite-runtime 2.14 needs numpy < 2
            pkgs.append("tflite-runtime" if version.startswith("3.8.") else "ai-edge-litert")
        if missing:
            raise DeviceError(f"{self.shell.where}: {self.python} (Python {version}) lacks "
                              f"{' and '.join(missing)}: install with `{self.python} -m pip "
                              f"install {' '.join(pkgs)}`, or add ?install_runtime=1, or point "
                              "?python= at an interpreter that has them")

    # -- deploy -----------------------------------------------------------------------------
    def model_dir(self, manifest: Manifest) -> str:
        return _join(self.base, "models", manifest.model_sha256[:16])

    def deploy(self, artifact: Path, manifest: Manifest | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
        """Make <base>/models/<sha16>/ hold exactly this DIR's files; repair a broken deploy."""
        artifact = Path(artifact)
        manifest = manifest or Manifest.load(artifact)
        if (artifact / "model.tflite").exists():
            manifest.check_model(artifact)
        files = artifact_files(artifact)
        local = {rel: sha256_file(artifact / rel) for rel in files}
        device = self.device_info()
        rdir = self.model_dir(manifest)
        remote = self.agent("hashes", "--dir", rdir)
        changed = [r for r in files if remote["files"].get(r) != local[r]]
        stale = [r for r in remote["files"] if r not in local]   # .part leftovers, old files
        marker = _join(rdir, COMPLETE)
        if changed or stale or not remote["complete"]:
            self.shell.remove(marker)           # incomplete from here until the marker is back
            for d in sorted({os.path.dirname(r) for r in changed} | {""}):
                self.shell.makedirs(_join(rdir, d) if d else rdir)
            for rel in changed:
                self._log(1, f"upload {rel}")
                cb = (lambda s, t, rel=rel: progress(rel, s, t)) if progress else None
                self._put_atomic(artifact / rel, _join(rdir, rel), cb)
            for rel in stale:
                self.shell.remove(_join(rdir, rel))
            stamp = {"model_sha256": manifest.model_sha256, "files": local,
                     "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            self._put_atomic(json.dumps(stamp, indent=1).encode(), marker)
        return {"target": self.uri, "dir": rdir, "uploaded": changed, "removed": stale,
                "unchanged": [r for r in files if r not in changed], "device": device}

    # -- Target ------------------------------------------------------------------------------
    def open(self, artifact: Path, manifest: Manifest) -> dict[str, Any]:
        dep = self.deploy(Path(artifact), manifest)
        rdir = dep["dir"]
        runtime = "native" if self.native else self.runtime
        if runtime == "native" and not any(r.startswith("c/")
                                           for r in artifact_files(Path(artifact))):
            raise EdgeforgeError(f"{artifact}: no C package (c/) for --native")
        harness = _join(os.path.dirname(self.ensure_agent()), "native_main.c")
        # the agent picks the backend: the asked one, or (auto) the fastest the board has
        args = ["session", "--require-complete", "--dir", rdir, "--runtime", runtime,
                "--harness", harness, "--threads", str(self.threads)]
        self._stop_session()
        self._pipe = self.shell.spawn([self.python, self.ensure_agent(), *args])
        # building the C package or a TensorRT engine on the board takes minutes
        hello = self._reply(timeout=self.timeout if runtime == "litert"
                            else max(self.timeout, 600.0))
        name = (hello.get("runtime") or {}).get("name")
        # what the outputs are computed with: the compile's profile in C, TensorRT's own
        # float-rescaled int8 (1 LSB from ours), else LiteRT's reference kernels
        self.numerics = {"native-c": manifest.numerics, "tensorrt": "tensorrt"}.get(name,
                                                                                  "litert")
        if hello.get("model_sha256") != manifest.model_sha256:
            raise DeviceError(f"{self.shell.where}: device runs model {hello.get('model_sha256')}"
                              f", host expected {manifest.model_sha256}")
        self._diff = None
        return {"target": self.uri, "dir": rdir, "uploaded": dep["uploaded"],
                "runtime": hello.get("runtime"), **dep["device"]}

    def _reply(self, timeout: float | None = None) -> dict[str, Any]:
        assert self._pipe is not None
        line = self._pipe.readline(timeout or self.timeout)
        try:
            res = json.loads(line)
        except ValueError:
            raise DeviceError(f"{self.shell.where}: agent said {line[:200]!r}") from None
        if not res.get("ok"):
            raise DeviceError(f"{self.shell.where}: {res.get('error', res)}")
        return res

    def _ask(self, req: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if self._pipe is None:
            raise EdgeforgeError("target not open: call open(artifact, manifest) first")
        self._pipe.write((json.dumps(req) + "\n").encode())
        return self._reply(timeout)

    def infer(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        res = self._ask({"op": "infer", "inputs": [encode(np.asarray(x)) for x in inputs]})
        self._latency_us = float(res.get("latency_us") or self._latency_us)
        self.last_latency_us = res.get("latency_us")
        d = res.get("max_lsb_diff")
        if d is not None:
            self._diff = d if self._diff is None else max(self._diff, d)
        return [decode(o) for o in res["outputs"]]

    def benchmark(self, runs: int, warmup: int) -> Measurement:
        budget = self.timeout + 5 * (runs + warmup) * max(self._latency_us, 1000.0) / 1e6
        res = self._ask({"op": "bench", "runs": runs, "warmup": warmup}, timeout=budget)
        dev = self._device
        extra = {"runtime": res["runtime"]["name"], "runtime_version": res["runtime"]["version"],
                 "peak_rss_kb": res.get("peak_rss_kb"), "max_lsb_diff": self._diff,
                 "reference_kernels": res.get("reference_kernels"), "threads": res.get("threads"),
                 "target_numerics": self.numerics, "board": dev.get("board"),
                 "arch": dev.get("arch"),
                 "python": dev.get("python")}
        # TensorRT: trtexec's own statistics (throughput, latency percentiles, GPU compute,
        # H2D / D2H) beside ours, and which cached engine ran
        for k in ("skipped_runtimes", "diff_against", "reference_error", "trtexec", "engine",
                  "engine_built"):
            if k in res:
                extra[k] = res[k]
        return Measurement(latency_us=[float(t) for t in res["samples_us"]], extra=extra)

    def close(self) -> None:
        self._stop_session()
        self.shell.close()

    def _stop_session(self) -> None:
        if self._pipe is not None:
            try:
                self._pipe.write(b'{"op": "quit"}\n')
            except EdgeforgeError:
                pass
            self._pipe.close()
            self._pipe = None


