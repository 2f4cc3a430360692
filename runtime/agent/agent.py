#!/usr/bin/env python3
"""edgeforge device agent: runs a compiled model on this Linux board and reports on it.

Stand-alone on purpose: the host copies this ONE file to a board over SSH (or runs it as a
local subprocess), so it imports nothing from the edgeforge tree -- only the standard
library, numpy, and whichever TFLite interpreter the board has.

Python floor: 3.8 (PYTHON_FLOOR), what JetPack 5 / Ubuntu 20.04 boards ship. No construct
newer than that (tests/unit/test_agent_floor.py runs vermin on this file), and the file
still parses on 3.6 so an older Python gets one line saying so, not a SyntaxError.

    agent.py info                                         board, arch, python, runtimes
    agent.py run --model M --inputs X.npy [--warmup W --runs N --threads T] --json
    agent.py native --dir D --inputs X.npy [--warmup W --runs N] --json
    agent.py session (--model M | --native D) [--threads T]   JSON lines on stdin/stdout
    agent.py hashes --dir D                               sha256 of every file (deploy)
    agent.py --install-runtime                            pip-install a runtime if none works

`run` times the default (optimized, XNNPACK) kernels a user ships and verifies them with the
runtime's reference kernels (OpResolverType.BUILTIN_REF, bit-exact to edgeforge's
`--numerics litert`): the outputs it prints are the reference-kernel outputs, and
`max_lsb_diff` says how far the optimized kernels were from them.
"""
import argparse
import base64
import glob
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:  # `info` and `--install-runtime` still work; everything else says why not
    np = None

AGENT_VERSION = "1"
PYTHON_FLOOR = (3, 8)           # JetPack 5 (Ubuntu 20.04): the oldest Python boards ship
COMPLETE = ".complete"          # marker the host writes LAST when a deploy finished
# (import name, module holding Interpreter, pip distributions) in order of preference
RUNTIMES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", ("ai-edge-litert",)),
    ("tflite_runtime", "tflite_runtime.interpreter", ("tflite-runtime",)),
    ("tensorflow", "tensorflow", ("tensorflow", "tensorflow-cpu", "tensorflow-aarch64")),
)
NATIVE_FLAGS = ["-O3", "-std=c99"]
TIMEOUT_S = 600


NO_NUMPY = ("%s on this device has no numpy: run `agent.py --install-runtime` with it, or "
            "choose another interpreter (target URI ?python=/path/to/python3)")


class AgentError(Exception):
    """One clear line for the host: what failed on the device and what to do."""


# ---------------------------------------------------------------------------- board info

def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return None


def board_info():
    """Jetson (/etc/nv_tegra_release), Raspberry Pi (/proc/device-tree/model) or generic."""
    tegra = _read("/etc/nv_tegra_release")
    model = _read("/proc/device-tree/model")
    if tegra is not None:
        board = {"family": "jetson", "model": model or "NVIDIA Jetson",
                 "l4t": tegra.splitlines()[0] if tegra else ""}
    elif model and "raspberry pi" in model.lower():
        board = {"family": "raspberrypi", "model": model}
    else:
        board = {"family": "generic", "model": model or platform.node()}
    # which boards are one machine (a fleet flags them when profiled at once); hashed, so
    # the machine's own id never leaves it
    mid = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id") or platform.node()
    board["machine"] = hashlib.sha256(mid.strip().encode()).hexdigest()[:12]
    return board


def _dist_version(dists, module=None):
    try:
        from importlib import metadata
        for d in dists:
            try:
                return metadata.version(d)
            except metadata.PackageNotFoundError:
                continue
    except ImportError:
        pass
    return getattr(module, "__version__", "unknown")


def runtimes_available():
    """Which TFLite runtimes are installed (found, not yet proven to work: see open_runtime)."""
    out = []
    for name, _, dists in RUNTIMES:
        if importlib.util.find_spec(name) is not None:
            out.append({"name": name, "version": _dist_version(dists)})
    return out


def info():
    return {
        "agent_version": AGENT_VERSION,
        "board": board_info(),
        "arch": platform.machine(),
        "system": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_floor": ".".join(map(str, PYTHON_FLOOR)),
        "python_executable": sys.executable,
        "numpy": getattr(np, "__version__", None),
        "runtimes": runtimes_available(),
        "tensorrt": tensorrt_info(),
        "cc": shutil.which(os.environ.get("CC", "cc")),
        "cpus": os.cpu_count(),
    }


# ---------------------------------------------------------------------------- arrays

def encode(a):
    a = np.ascontiguousarray(a)
    return {"dtype": str(a.dtype), "shape": list(a.shape),
            "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode(d):
    return np.frombuffer(base64.b64decode(d["b64"]), dtype=d["dtype"]).reshape(d["shape"])


def load_samples(path):
    """X.npy -> [sample][input]; X.npz holds one [N, ...] array per input, in saved order."""
    if np is None:
        raise AgentError(NO_NUMPY % sys.executable)
    try:
        data = np.load(path, allow_pickle=False)      # never unpickle what the host sent
        arrays = [data[k] for k in data.files] if hasattr(data, "files") else [data]
    except (OSError, ValueError, EOFError, KeyError) as e:
        raise AgentError(f"{path}: not a readable .npy/.npz of numbers ({e})") from None
    if not arrays or any(a.ndim == 0 or a.dtype.hasobject for a in arrays):
        raise AgentError(f"{path}: expected [N, ...] arrays of numbers, one per input")
    n = len(arrays[0])
    return [[a[i] for a in arrays] for i in range(n)]


def stats(samples):
    """Latency statistics (µs) with the names benchmark_model and trtexec users know."""
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        return {"count": 0}
    return {"count": int(a.size), "first": float(a[0]), "min": float(a.min()),
            "max": float(a.max()), "mean": float(a.mean()), "std": float(a.std()),
            "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99))}


def peak_rss_kb(who=resource.RUSAGE_SELF):
    return int(resource.getrusage(who).ru_maxrss)   # kilobytes on Linux


def max_diff(a, b):
    """Largest |a - b| over all outputs: LSBs for integer tensors."""
    worst = 0
    for x, y in zip(a, b):
        d = np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))
        worst = max(worst, float(d.max()) if d.size else 0.0)
    return int(worst) if float(worst).is_integer() else worst


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------- interpreters

def _import_runtime(name, modname):
    """-> (Interpreter class, OpResolverType or None)."""
    mod = importlib.import_module(modname)
    if name == "tensorflow":
        lite = mod.lite
        experimental = getattr(lite, "experimental", None)
        return lite.Interpreter, getattr(experimental, "OpResolverType", None)
    return mod.Interpreter, getattr(mod, "OpResolverType", None)


def _fit(sample, details):
    """Cast/reshape one sample's inputs to the interpreter's input tensors, or say why not."""
    if len(sample) != len(details):
        raise AgentError(f"model has {len(details)} input(s), got {len(sample)}")
    out = []
    for i, (x, d) in enumerate(zip(sample, details)):
        x = np.asarray(x)
        shape = [int(s) for s in d["shape"]]
        if x.size != int(np.prod(shape)):
            raise AgentError(f"input {i}: expected shape {shape} "
                             f"({np.dtype(d['dtype']).name}), got {list(x.shape)}")
        out.append(x.astype(d["dtype"], copy=False).reshape(shape))
    return out


class Interp:
    """One interpreter with its tensor details looked up once."""

    def __init__(self, interpreter):
        self.it = interpreter
        self.it.allocate_tensors()
        self.inputs = self.it.get_input_details()
        self.outputs = self.it.get_output_details()

    def set(self, sample):
        for d, x in zip(self.inputs, _fit(sample, self.inputs)):
            self.it.set_tensor(d["index"], x)

    def get(self):
        return [self.it.get_tensor(d["index"]).copy() for d in self.outputs]

    def __call__(self, sample):
        self.set(sample)
        self.it.invoke()
        return self.get()


def _interpreter(cls, model, threads):
    """Interpreter(model_path, num_threads); tflite-runtime before 2.3 had no num_threads."""
    try:
        return cls(model_path=model, num_threads=threads)
    except TypeError as e:
        if "num_threads" not in str(e):
            raise
        return cls(model_path=model)


def open_runtime(model, threads=1):
    """First runtime that can actually load `model` (tflite-runtime 2.14 imports under numpy 2
    but fails on load) -> (name, version, default-kernel Interp, Interpreter class, resolver,
    [why each earlier runtime was skipped])."""
    if np is None:
        raise AgentError(NO_NUMPY % sys.executable)
    errors = []
    for name, modname, dists in RUNTIMES:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            cls, resolver = _import_runtime(name, modname)
            opt = Interp(_interpreter(cls, model, threads))
        except Exception as e:  # noqa: BLE001 -- any failure means "try the next runtime"
            first = (str(e).splitlines() or [""])[0]
            errors.append(f"{name}: {type(e).__name__}: {first}")
            continue
        return name, _dist_version(dists, sys.modules.get(name)), opt, cls, resolver, errors
    hint = ("install one with `agent.py --install-runtime` (ai-edge-litert; tflite-runtime "
            "2.14 needs numpy<2)")
    found = "; ".join(errors) or "none installed"
    raise AgentError(f"no usable TFLite runtime on this device: {found}; {hint}")


class InterpreterBackend:
    """Default kernels for timing, reference kernels (when offered) for the outputs."""

    def __init__(self, model, threads=1):
        self.model = model
        name, version, self.opt, cls, resolver, skipped = open_runtime(model, threads)
        self.opt.it.invoke()        # first invoke allocates what the delegate needs
        self.peak_rss_kb = peak_rss_kb()   # before the reference interpreter adds its own
        self.ref = None
        ref_error = None
        if resolver is not None and hasattr(resolver, "BUILTIN_REF"):
            try:
                self.ref = Interp(cls(model_path=model,
                                      experimental_op_resolver_type=resolver.BUILTIN_REF))
            except Exception as e:  # noqa: BLE001
                ref_error = f"{type(e).__name__}: {e}"
        else:
            ref_error = f"{name} {version} has no OpResolverType.BUILTIN_REF"
        self.meta = {"runtime": {"name": name, "version": version}, "threads": threads,
                     "reference_kernels": self.ref is not None, "model_sha256": sha256_file(model)}
        if ref_error:
            self.meta["reference_error"] = ref_error
        if skipped:
            self.meta["skipped_runtimes"] = skipped

    def infer(self, sample):
        """-> (outputs, max_lsb_diff or None, latency_us of the default kernels)."""
        self.opt.set(sample)
        t0 = time.perf_counter()
        self.opt.it.invoke()
        dt = (time.perf_counter() - t0) * 1e6
        got = self.opt.get()
        if self.ref is None:
            return got, None, dt
        ref = self.ref(sample)
        return ref, max_diff(got, ref), dt

    def bench(self, runs, warmup):
        """Time `runs` invokes of the default kernels on the last input set."""
        invoke = self.opt.it.invoke
        for _ in range(warmup):
            invoke()
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            invoke()
            out.append((time.perf_counter() - t0) * 1e6)
        self.peak_rss_kb = max(self.peak_rss_kb, peak_rss_kb()) if self.ref is None \
            else self.peak_rss_kb
        return out

    def report(self):
        return dict(self.meta, peak_rss_kb=self.peak_rss_kb, peak_rss_kb_total=peak_rss_kb())


# ---------------------------------------------------------------------------- native C

def _manifest(directory):
    with open(os.path.join(directory, "manifest.json")) as f:
        return json.load(f)


def build_native(directory, harness):
    """cc -O3 the uploaded C package with the harness; cached by source hash."""
    cdir = os.path.join(directory, "c")
    sources = sorted(p for p in glob.glob(os.path.join(cdir, "**", "*.c"), recursive=True)
                     if "examples" not in os.path.relpath(p, cdir).split(os.sep))  # own main()
    if not sources:
        raise AgentError(f"{directory} has no C package (c/*.c): compile the model first")
    if not os.path.exists(harness):
        raise AgentError(f"native harness {harness} is missing: deploy again")
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise AgentError(f"no C compiler {cc!r} on this device (apt install gcc, or set CC)")
    h = hashlib.sha256(" ".join([cc] + NATIVE_FLAGS).encode())
    headers = sorted(glob.glob(os.path.join(cdir, "**", "*.h"), recursive=True))
    for p in sources + headers + [harness]:
        h.update(p.encode())
        h.update(sha256_file(p).encode())
    out = os.path.join(directory, "native", "model-" + h.hexdigest()[:16])
    if os.path.exists(out):
        return out, cc
    os.makedirs(os.path.dirname(out), exist_ok=True)
    incs = sorted({os.path.dirname(p) for p in headers} | {cdir})
    tmp = f"{out}.tmp{os.getpid()}"
    cmd = [cc] + NATIVE_FLAGS + ["-I" + d for d in incs] + sources + [harness, "-o", tmp, "-lm"]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AgentError(f"{cc} timed out after {TIMEOUT_S}s") from None
    if r.returncode != 0:
        log = r.stdout.decode(errors="replace")[-2000:]
        raise AgentError(f"{cc} failed ({r.returncode}): {log}")
    os.replace(tmp, out)
    return out, cc


def _run_measured(cmd):
    """Run cmd -> (rc, stdout, stderr, its own peak RSS in kB) via wait4; killed on timeout."""
    import threading
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe)
        timer = threading.Timer(TIMEOUT_S, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        # os.waitstatus_to_exitcode is 3.9+: decode the status as subprocess does
        p.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) \
            else os.WEXITSTATUS(status)
        fo.seek(0)
        fe.seek(0)
        return p.returncode, fo.read(), fe.read(), int(ru.ru_maxrss)


class NativeBackend:
    """The generated C package compiled on the device, driven through native_main.c."""

    def __init__(self, directory, harness):
        self.exe, cc = build_native(directory, harness)
        man = _manifest(directory)
        self.in_specs = man["inputs"]
        self.out_specs = man["outputs"]
        self.last = None
        self.peak_rss_kb = 0
        self.ref = None     # LiteRT's reference kernels on the same model, when the board has it
        model = os.path.join(directory, "model.tflite")
        if os.path.exists(model) and runtimes_available():
            try:
                self.ref = InterpreterBackend(model)
            except AgentError:
                self.ref = None
        ccv = subprocess.run([cc, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=30, check=False).stdout.decode(errors="replace").splitlines()
        self.meta = {"runtime": {"name": "native-c", "version": (ccv or [cc])[0]},
                     "threads": 1, "reference_kernels": False, "flags": NATIVE_FLAGS,
                     "numerics": man.get("numerics"), "model_sha256": man.get("model_sha256")}
        if self.ref is not None:
            rt = self.ref.meta["runtime"]
            self.meta["diff_against"] = f"{rt['name']} {rt['version']} reference kernels"

    def _exe(self, samples, warmup, runs):
        """Run the harness: outputs of every sample, then timed runs on the last one."""
        with tempfile.TemporaryDirectory(prefix="ef-native-") as tmp:
            fin, fout = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
            with open(fin, "wb") as f:
                for s in samples:
                    f.writelines(np.asarray(x).astype(spec["dtype"], copy=False).tobytes()
                                 for x, spec in zip(s, self.in_specs))
            rc, stdout, stderr, rss = _run_measured([self.exe, fin, fout, str(warmup), str(runs)])
            if rc != 0:
                why = stderr.decode(errors="replace").strip()
                raise AgentError(f"native model failed (exit {rc}): {why}")
            with open(fout, "rb") as f:
                raw = f.read()
        hwm = [ln.split()[1] for ln in stderr.decode(errors="replace").splitlines()
               if ln.startswith("VmHWM:")]
        self.peak_rss_kb = max(self.peak_rss_kb, int(hwm[0]) if hwm else rss)
        outs, pos = [], 0
        for _ in samples:
            one = []
            for spec in self.out_specs:
                n = int(np.prod(spec["shape"])) * np.dtype(spec["dtype"]).itemsize
                one.append(np.frombuffer(raw[pos:pos + n], spec["dtype"]).reshape(spec["shape"]))
                pos += n
            outs.append(one)
        times = [int(t) / 1e3 for t in stdout.split()]
        return outs, times

    def infer(self, sample):
        self.last = [np.asarray(x) for x in sample]
        t0 = time.perf_counter()
        outs, _ = self._exe([self.last], 0, 0)
        dt = (time.perf_counter() - t0) * 1e6
        diff = max_diff(outs[0], self.ref.infer(self.last)[0]) if self.ref is not None else None
        return outs[0], diff, dt

    def bench(self, runs, warmup):
        if self.last is None:
            raise AgentError("benchmark before any input was written")
        return self._exe([self.last], warmup, runs)[1]

    def report(self):
        return dict(self.meta, peak_rss_kb=self.peak_rss_kb)


# ---------------------------------------------------------------------------- TensorRT
# JetPack puts trtexec here, not on PATH
TRTEXEC_PATHS = ("/usr/src/tensorrt/bin/trtexec",)
# fastest first: the default runtime is the first of these the board has. LiteRT (XNNPACK)
# before our C: KWS p50 32 vs 620 us, ResNet-8 59 vs 1700 us (x86 host, agent run vs native).
RUNTIME_ORDER = ("tensorrt", "litert", "native")
RUNTIME_CHOICES = ("auto",) + RUNTIME_ORDER


def find_trtexec():
    exe = shutil.which("trtexec")
    return exe or next((p for p in TRTEXEC_PATHS if os.access(p, os.X_OK)), None)


def tensorrt_info():
    """What TensorRT the board has: trtexec (which we drive) and/or the Python module."""
    exe = find_trtexec()
    module = importlib.util.find_spec("tensorrt") is not None
    if not exe and not module:
        return None
    return {"trtexec": exe, "module": _dist_version(("tensorrt",)) if module else None}


def choose_runtime(requested, have):
    """`requested` (auto | litert | tensorrt | native) given what the board and the model
    directory offer: have = {"tensorrt": bool, "litert": bool, "native": bool}."""
    if requested not in RUNTIME_CHOICES:
        raise AgentError(f"runtime {requested!r}: use one of {', '.join(RUNTIME_CHOICES)}")
    if requested != "auto":
        if not have.get(requested):
            raise AgentError(RUNTIME_MISSING[requested])
        return requested
    for name in RUNTIME_ORDER:
        if have.get(name):
            return name
    raise AgentError("no runtime on this device: " + "; ".join(RUNTIME_MISSING[n]
                                                               for n in RUNTIME_ORDER))


RUNTIME_MISSING = {
    "tensorrt": "--runtime tensorrt: no trtexec on this device (on PATH or in "
                "/usr/src/tensorrt/bin; JetPack's tensorrt package), or the model directory has "
                "no model_qdq.onnx (compile it again with this edgeforge)",
    "litert": "--runtime litert: no TFLite runtime (ai-edge-litert or tflite-runtime); "
              "install one with agent.py --install-runtime",
    "native": "--runtime native: no C compiler (cc) on this device, or no C package (c/)",
}


def available_runtimes(directory):
    """What `choose_runtime` may pick for this deployed model directory."""
    return {"tensorrt": bool(find_trtexec())
            and os.path.exists(os.path.join(directory, "model_qdq.onnx")),
            "litert": bool(runtimes_available()),
            "native": bool(shutil.which(os.environ.get("CC", "cc")))
            and os.path.isdir(os.path.join(directory, "c"))}


_TRT_ROWS = {"Latency": "latency", "End-to-End Host Latency": "end_to_end",
             "Enqueue Time": "enqueue", "H2D Latency": "h2d", "GPU Compute Time": "gpu_compute",
             "D2H Latency": "d2h"}
_TRT_FIELD = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\)) = "
                        r"([-+0-9.eE]+) (ms|us|s)")
_SCALE_US = {"s": 1e6, "ms": 1e3, "us": 1.0}


def parse_trtexec(text):
    """trtexec's "=== Performance summary ===" as numbers, every time in microseconds:
    {"throughput_qps", "latency": {min, max, mean, median, p90, p95, p99}, "gpu_compute",
     "h2d", "d2h", "enqueue", "end_to_end", "total_host_walltime_s", "total_gpu_compute_s",
     "tensorrt_version"} -- only the rows this trtexec printed (older ones print p99 only)."""
    out = {}
    ver = re.search(r"TensorRT version: ([0-9][0-9.]*[0-9])", text)
    tag = re.search(r"\[TensorRT v([0-9]+)\]", text)     # "&&&& RUNNING ... [TensorRT v8502]"
    if ver:
        out["tensorrt_version"] = ver.group(1)
    elif tag:                              # NV_TENSORRT_VERSION: 8502 = 8.5.2, 100300 = 10.3.0
        n = int(tag.group(1))
        major, rest = (n // 10000, n % 10000) if n >= 10000 else (n // 1000, n % 1000)
        out["tensorrt_version"] = f"{major}.{rest // 100}.{rest % 100}"
    at = text.find("=== Performance summary ===")
    if at < 0:
        return out
    for line in text[at:].splitlines()[1:]:
        body = re.sub(r"^(\[[^]]*\]\s*)+", "", line.strip())   # "[date time] [I] " prefixes
        if body.startswith("==="):
            break
        m = re.match(r"Throughput: ([-+0-9.eE]+) qps", body)
        if m:
            out["throughput_qps"] = float(m.group(1))
            continue
        m = re.match(r"Total (Host Walltime|GPU Compute Time): ([-+0-9.eE]+) s$", body)
        if m:
            key = "total_host_walltime_s" if m.group(1) == "Host Walltime" \
                else "total_gpu_compute_s"
            out[key] = float(m.group(2))
            continue
        name, sep, rest = body.partition(": ")
        if sep and name in _TRT_ROWS:
            row = {}
            for field, pct, value, unit in _TRT_FIELD.findall(rest):
                key = f"p{float(pct):g}" if pct else field
                row[key] = float(value) * _SCALE_US[unit]
            if row:
                out[_TRT_ROWS[name]] = row
    return out


def engine_path(directory, trtexec):
    """Where the engine for this model directory lives: a cache shared by every deployed
    directory of the board, keyed by the ONNX file's hash AND the trtexec binary's (an engine
    only loads in the TensorRT version, and on the GPU, that built it; a JetPack upgrade
    replaces trtexec, so the old engines are simply not found)."""
    onnx = os.path.join(directory, "model_qdq.onnx")
    key = hashlib.sha256((sha256_file(onnx) + sha256_file(os.path.realpath(trtexec)))
                         .encode()).hexdigest()[:16]
    cache = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(directory))),
                         "tensorrt")
    return os.path.join(cache, key + ".engine")


def load_inputs_spec(files):
    """trtexec --loadInputs for [(tensor name, file)]: names in single quotes, as trtexec's help
    says, since ours may hold ':' (TFLite's 'serving_default_x:0') or ','."""
    for name, _ in files:
        if "'" in name:
            raise AgentError(f"input {name!r}: trtexec cannot load a tensor whose name holds a "
                             "single quote")
    return "--loadInputs=" + ",".join(f"'{n}':{f}" for n, f in files)


def exported_outputs(exported, out_specs):
    """trtexec --exportOutput JSON ([{"name", "dimensions", "values"}]) as the manifest's
    outputs: float values quantized back with each output's scale / zero point."""
    by_name = {o["name"]: o for o in exported}
    outs = []
    for spec in out_specs:
        if spec["name"] not in by_name:
            raise AgentError(f"trtexec exported no output {spec['name']!r} (it has "
                             f"{', '.join(sorted(by_name)) or 'none'})")
        vals = np.asarray(by_name[spec["name"]]["values"], np.float64)
        if np.dtype(spec["dtype"]).kind == "i":
            info = np.iinfo(spec["dtype"])
            vals = np.clip(np.round(vals / (spec.get("scale") or 1.0)
                                    + (spec.get("zero_point") or 0)), info.min, info.max)
        outs.append(vals.astype(spec["dtype"]).reshape(spec["shape"]))
    return outs


def timed_iterations(trace, warmup_ms):
    """Per-iteration latency (us) from trtexec --exportTimes JSON. TensorRT 8.x exports the
    warm-up queries too; as trtexec's own report, a query is a warm-up when its compute
    started before warmup_ms."""
    return [float(t["latencyMs"]) * 1e3 for t in trace
            if float(t.get("startComputeMs", warmup_ms)) >= warmup_ms]


class TensorRTBackend:
    """model_qdq.onnx built into an INT8 engine by trtexec on the device (cached by the
    ONNX file's hash), run and timed by trtexec. The engine's I/O is float: inputs are
    dequantized with the manifest's scales, outputs quantized back to the model's int8."""

    def __init__(self, directory, trtexec):
        self.trtexec, self.dir = trtexec, directory
        man = _manifest(directory)
        self.in_specs, self.out_specs = man["inputs"], man["outputs"]
        onnx = os.path.join(directory, "model_qdq.onnx")
        self.engine = engine_path(directory, trtexec)
        os.makedirs(os.path.dirname(self.engine), exist_ok=True)
        self.last = None
        self.built = False
        self.stats = {}
        if not os.path.exists(self.engine):
            tmp = f"{self.engine}.part-{os.getpid()}"
            rc, out, err = self._trtexec(["--onnx=" + onnx, "--int8", "--saveEngine=" + tmp])
            if rc != 0 or not os.path.exists(tmp):
                raise AgentError("trtexec could not build an INT8 engine from model_qdq.onnx: "
                                 + (err or out).decode(errors="replace").strip()[-400:])
            os.replace(tmp, self.engine)
            self.built = True
            self.stats = parse_trtexec(out.decode(errors="replace"))
        self.meta = {"runtime": {"name": "tensorrt",
                                 "version": self.stats.get("tensorrt_version", "unknown")},
                     "threads": 1, "reference_kernels": False, "engine": self.engine,
                     "engine_built": self.built, "model_sha256": man.get("model_sha256")}
        self.peak_rss_kb = 0

    def _trtexec(self, args):
        rc, out, err, rss = _run_measured([self.trtexec] + args)
        self.peak_rss_kb = max(getattr(self, "peak_rss_kb", 0), rss)
        return rc, out, err

    def infer(self, sample):
        self.last = [np.asarray(x) for x in sample]
        work = tempfile.mkdtemp(prefix="ef-trt-")
        try:
            loads = []
            for x, spec in zip(self.last, self.in_specs):
                f = os.path.join(work, f"in{len(loads)}.bin")
                deq = (x.astype(np.float32) - (spec.get("zero_point") or 0)) \
                    * (spec.get("scale") or 1.0)
                deq.astype(np.float32).tofile(f)
                loads.append((spec["name"], f))
            outf = os.path.join(work, "out.json")
            t0 = time.perf_counter()
            rc, out, err = self._trtexec(["--loadEngine=" + self.engine,
                                          load_inputs_spec(loads),
                                          "--exportOutput=" + outf, "--iterations=1",
                                          "--warmUp=0", "--duration=0"])
            dt = (time.perf_counter() - t0) * 1e6
            if rc != 0:
                raise AgentError("trtexec inference failed: "
                                 + (err or out).decode(errors="replace").strip()[-400:])
            with open(outf) as f:
                return exported_outputs(json.load(f), self.out_specs), None, dt
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def bench(self, runs, warmup):
        """trtexec times `runs` iterations; its own summary is kept for report()."""
        work = tempfile.mkdtemp(prefix="ef-trt-")
        try:
            times = os.path.join(work, "times.json")
            warmup_ms = 200 if warmup else 0
            rc, out, err = self._trtexec(["--loadEngine=" + self.engine,
                                          f"--iterations={runs}", "--duration=0",
                                          f"--warmUp={warmup_ms}",
                                          "--avgRuns=1", "--exportTimes=" + times])
            if rc != 0:
                raise AgentError("trtexec benchmark failed: "
                                 + (err or out).decode(errors="replace").strip()[-400:])
            self.stats = parse_trtexec(out.decode(errors="replace"))
            with open(times) as f:
                return timed_iterations(json.load(f), warmup_ms)[:runs]
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def report(self):
        if self.stats.get("tensorrt_version"):     # a cached engine: known once trtexec ran
            self.meta["runtime"]["version"] = self.stats["tensorrt_version"]
        return dict(self.meta, peak_rss_kb=self.peak_rss_kb, trtexec=self.stats)


def open_backend(runtime, directory, harness, threads=1):
    """The backend `choose_runtime` picks for a deployed model directory; -> (name, backend)."""
    name = choose_runtime(runtime, available_runtimes(directory))
    if name == "tensorrt":
        return name, TensorRTBackend(directory, find_trtexec())
    if name == "native":
        return name, NativeBackend(directory, harness)
    return name, InterpreterBackend(os.path.join(directory, "model.tflite"), threads)


# ---------------------------------------------------------------------------- commands

def run_all(backend, samples, runs, warmup):
    """Every sample through the backend, then the timing runs: one JSON-able dict."""
    outputs, diffs = [], []
    for s in samples:
        out, diff, _ = backend.infer(s)
        outputs.append(out)
        if diff is not None:
            diffs.append(diff)
    times = backend.bench(runs, warmup)
    res = backend.report()
    res.update(board=board_info(), latency_us=stats(times), samples_us=times,
               outputs=[[encode(o) for o in out] for out in outputs],
               max_lsb_diff=max(diffs) if diffs else None)
    return res


def _check_complete(directory):
    if not os.path.exists(os.path.join(directory, COMPLETE)):
        raise AgentError(f"{directory}: incomplete deploy (no {COMPLETE} marker): "
                         "run `edgeforge deploy` again")


def hashes(directory):
    files = {}
    for root, _, names in os.walk(directory):
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, directory)
            if rel != COMPLETE and not rel.startswith("native" + os.sep):
                files[rel] = sha256_file(p)
    return {"files": files, "complete": os.path.exists(os.path.join(directory, COMPLETE))}


def session(backend, meta, stdin, stdout):
    """JSON lines: {"op": "infer", "inputs": [...]} | {"op": "bench", "runs", "warmup"} |
    {"op": "report"} | {"op": "quit"}; every reply has "ok" and, if false, "error"."""
    def reply(obj):
        stdout.write(json.dumps(obj) + "\n")
        stdout.flush()

    reply(dict(meta, ok=True, ready=True))
    for line in stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "quit":
                reply({"ok": True})
                return
            if op == "infer":
                out, diff, dt = backend.infer([decode(x) for x in req["inputs"]])
                reply({"ok": True, "outputs": [encode(o) for o in out], "max_lsb_diff": diff,
                       "latency_us": dt})
            elif op == "bench":
                times = backend.bench(int(req["runs"]), int(req["warmup"]))
                reply(dict(backend.report(), ok=True, samples_us=times, latency_us=stats(times)))
            elif op == "report":
                reply(dict(backend.report(), ok=True))
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except AgentError as e:
            reply({"ok": False, "error": str(e)})
        except Exception as e:  # noqa: BLE001 -- the session must answer, not die
            reply({"ok": False, "error": f"{type(e).__name__}: {e}"})


def install_runtime():
    """pip-install a runtime when none loads: ai-edge-litert where wheels exist (Python >= 3.9),
    else tflite-runtime beside numpy<2 (tflite-runtime 2.14 fails under numpy 2)."""
    present = [r["name"] for r in runtimes_available()]
    numpy2 = np is not None and int(np.__version__.split(".")[0]) >= 2
    usable = [n for n in present if not (n == "tflite_runtime" and numpy2)]
    if usable:
        return {"installed": None, "present": usable}
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if not in_venv:
        pip.append("--user")
    attempts = []
    if sys.version_info >= (3, 9):  # noqa: UP036 -- boards run older Pythons than the host
        attempts.append(["ai-edge-litert"] + ([] if np is not None else ["numpy"]))
    attempts.append(["tflite-runtime", "numpy<2"])
    errors = []
    for pkgs in attempts:
        try:
            r = subprocess.run(pip + pkgs, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            errors.append(f"{pkgs[0]}: pip timed out")
            continue
        if r.returncode == 0:
            return {"installed": pkgs}
        errors.append(f"{pkgs[0]}: " + r.stdout.decode(errors="replace").strip()[-300:])
    raise AgentError("could not install a TFLite runtime: " + " | ".join(errors) + " -- make a "
                     "venv on the device (python3 -m venv ~/ef-venv) and point at it with "
                     "?python=~/ef-venv/bin/python")


def too_old():
    floor = ".".join(map(str, PYTHON_FLOOR))
    return (f"{sys.executable} is Python {platform.python_version()}; the edgeforge agent needs "
            f"Python >= {floor} (JetPack 5 / Ubuntu 20.04 ship 3.8): install a newer python3 and "
            "pass it as ?python=/path/to/python3")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="agent.py", description=__doc__.splitlines()[0])
    ap.add_argument("--install-runtime", action="store_true",
                    help="pip-install a TFLite runtime if none is present")
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("info")
    p = sub.add_parser("run")
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("native")
    p.add_argument("--dir", required=True)
    p.add_argument("--harness", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "native_main.c"))
    for p in (sub.choices["run"], sub.choices["native"]):
        p.add_argument("--inputs", required=True, help=".npy [N, *shape] or .npz (one per input)")
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--runs", type=int, default=10)
        p.add_argument("--json", action="store_true", help="(always JSON; kept for symmetry)")
    p = sub.add_parser("session")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model")
    g.add_argument("--native", metavar="DIR")
    g.add_argument("--dir", help="model directory; the backend is --runtime's choice")
    p.add_argument("--runtime", default="auto", choices=RUNTIME_CHOICES)
    p.add_argument("--harness", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "native_main.c"))
    p.add_argument("--threads", type=int, default=1)
    for p in (sub.choices["native"], sub.choices["session"]):
        p.add_argument("--require-complete", action="store_true",
                       help="refuse a model directory whose deploy did not finish")
    p = sub.add_parser("hashes")
    p.add_argument("--dir", required=True)
    args = ap.parse_args(argv)

    # runtimes print banners (e.g. "Created TensorFlow Lite XNNPACK delegate") on fd 1 or 2:
    # keep our JSON on a private copy of stdout and send fd 1 to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        if args.cmd != "info" and sys.version_info[:2] < PYTHON_FLOOR:
            raise AgentError(too_old())
        if args.install_runtime:
            res = install_runtime()
            if args.cmd is None:
                out.write(json.dumps(res) + "\n")
                return 0
        if args.cmd == "info":
            res = info()
        elif args.cmd == "hashes":
            res = hashes(args.dir)
        elif args.cmd == "run":
            backend = InterpreterBackend(args.model, args.threads)
            res = run_all(backend, load_samples(args.inputs), args.runs, args.warmup)
        elif args.cmd == "native":
            if args.require_complete:
                _check_complete(args.dir)
            backend = NativeBackend(args.dir, args.harness)
            res = run_all(backend, load_samples(args.inputs), args.runs, args.warmup)
        elif args.cmd == "session":
            if args.require_complete:
                _check_complete(args.native or args.dir
                                or os.path.dirname(os.path.abspath(args.model)))
            if args.dir:
                _, backend = open_backend(args.runtime, args.dir, args.harness, args.threads)
            elif args.native:
                backend = NativeBackend(args.native, args.harness)
            else:
                backend = InterpreterBackend(args.model, args.threads)
            session(backend, dict(backend.meta), sys.stdin, out)
            return 0
        else:
            ap.print_help(sys.stderr)
            return 2
        out.write(json.dumps(res) + "\n")
        return 0
    except AgentError as e:
        out.write(json.dumps({"error": str(e)}) + "\n")
        return 1
    finally:
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
