"""The `edgeforge` command: the one layer that parses arguments and prints.

This module holds the parser and main(); each command's handler is `main(args)` in its own
module here (edgeforge.cli.compile, ...). A handler calls the same edgeforge.api function a
script would and renders what it returns (--json prints it as JSON); library code below
returns data and logs progress to the "edgeforge" logger, which main() sends to stderr.
Handlers are imported lazily so `edgeforge --help` stays fast and a missing optional
dependency only affects the command that needs it.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Any

# Ctrl-C at start-up (importing numpy, LiteRT, the parser, a command's module) is noted, not
# raised: a KeyboardInterrupt inside a C extension's import surfaces as an ImportError
# traceback. Once start-up is over, main() says "interrupted" and exits 130; while a command
# runs, Ctrl-C is a KeyboardInterrupt again, so its clean-up (compile's temp DIR) runs.
_SIGINTS: list[int] = []


def _hold_sigint() -> Any:
    try:
        return signal.signal(signal.SIGINT, lambda signum, frame: _SIGINTS.append(signum))
    except ValueError:                   # not the main thread: signals are not ours to take
        return None


def _release_sigint(previous: Any) -> bool:
    """Restore Ctrl-C; True if it was pressed while held."""
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
    return bool(_SIGINTS)


def _interrupted_hook(kind: type[BaseException], value: BaseException, tb: Any,
                      _previous: Any = sys.excepthook) -> None:
    """A KeyboardInterrupt that nothing caught: one line and exit 130, no traceback."""
    if issubclass(kind, KeyboardInterrupt):
        sys.stderr.write("edgeforge: interrupted\n")
        sys.stderr.flush()
        os._exit(130)
    _previous(kind, value, tb)


sys.excepthook = _interrupted_hook
_held = _hold_sigint()                  # before the imports below, the slow part

import argparse
import contextlib
import importlib
import io
import json
import logging
from collections.abc import Callable

from edgeforge.errors import EdgeforgeError
from edgeforge.qmath import DEFAULT_NUMERICS, Numerics


def _numerics(p: argparse.ArgumentParser) -> None:
    p.add_argument("--numerics", choices=[n.value for n in Numerics], default=DEFAULT_NUMERICS.value,
                   help="int8 rounding profile: tflm (TFLM, default), litert (LiteRT) or single "
                        "(TFLITE_SINGLE_ROUNDING; closest to onnxruntime/TensorRT)")


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more detail on stderr: -v stage progress even when not on a terminal "
                        "and progress bars, -vv per-step detail")


# command name -> "module:function"; the function takes the parsed args and returns an exit code
HANDLERS: dict[str, str] = {
    name: f"edgeforge.cli.{name}:main"
    for name in ("inspect", "run", "compile", "build", "flash", "profile", "deploy", "fleet",
                 "serve", "bridge", "validate", "report", "boards")
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs (the examples) as written; every option with a real default says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        h = action.help or ""
        d = action.default
        if (action.option_strings and "%(default)" not in h and "default" not in h
                and not any(d is v for v in (None, False, True, argparse.SUPPRESS))
                and not (isinstance(action, argparse._CountAction) and d == 0)):
            h += " (default: %(default)s)"
        return h.strip()


# `edgeforge CMD --help` ends with these
EXAMPLES: dict[str, str] = {
    "inspect": """examples:
  edgeforge inspect kws.tflite
  edgeforge inspect net.onnx --json | jq .totals""",
    "run": """examples:
  edgeforge run kws.tflite -i x.npy                    # int8 reference kernels
  edgeforge run net.onnx -i x_nchw.npy                 # the ONNX model's own layout is fine
  edgeforge run out/kws -i x.npy --backend c           # the generated C, built on the host""",
    "compile": """examples:
  edgeforge compile kws_int8.tflite -o out/kws --name kws
  edgeforge compile net.onnx --calib calib.npz -o out/net
  edgeforge compile net.onnx --calib data.npz:images -o out/net --numerics litert
  then: DIR/c/README.md (CMake, Make, Zephyr, PlatformIO, Arduino), edgeforge profile DIR""",
    "build": """examples:
  edgeforge build out/kws --board mps2-an386
  edgeforge boards                                     # the boards there are""",
    "flash": """examples:
  edgeforge flash out/kws --board nucleo-l4r5zi --port /dev/ttyACM0""",
    "profile": """examples:
  edgeforge profile out/kws                            # QEMU mps2-an386, no hardware
  edgeforge profile out/kws --clock-mhz 120 --trace kws.json   # ui.perfetto.dev opens it
  edgeforge profile out/kws --target 'serial:///dev/ttyACM0?board=nucleo-l4r5zi'
  edgeforge profile out/kws --target ssh://pi@10.0.0.5 --native
  then: edgeforge report out/kws""",
    "deploy": """examples:
  edgeforge deploy out/kws --target ssh://pi@10.0.0.5""",
    "fleet": """examples:
  edgeforge fleet profile out/kws --inventory hosts.toml
inventory (hosts.toml; Ansible INI/YAML inventories too, see docs/fleet.md):
  [defaults]                       # optional, for every host
  identity = "~/.ssh/id_ed25519"
  timeout = 300                    # seconds for one host's whole profile
  [[host]]
  name = "pi4"
  uri = "ssh://pi@10.0.0.5"        # or local, qemu://mps2-an386, serial:///dev/X?board=B
  python = "/usr/bin/python3"      # optional, with numpy and a TFLite runtime
  native = false                   # optional: compile the C package on the board""",
    "validate": """examples:
  edgeforge validate out/net --data test.npz           # float vs int8 on the host
  edgeforge validate out/net --data test.npz --target qemu://mps2-an386 --json""",
    "report": """examples:
  edgeforge report out/kws -o kws.html""",
    "boards": """examples:
  edgeforge boards --json | jq '.[] | select(.qemu) | .name'""",
    "serve": """examples:
  edgeforge serve out/kws --mqtt mqtt://broker --inputs frames/ --labels labels.txt""",
    "bridge": """examples:
  edgeforge bridge 'serial:///dev/ttyACM0?board=nucleo-l4r5zi' out/kws --mqtt mqtt://broker""",
}


def console() -> Any:
    """The rich Console the printers use: as rich draws it on a terminal; piped or captured,
    no colour and no wrapping (each line as long as it needs), so `| grep`, `| less -S` and
    logs see whole lines, never `model sha256 \\n...` or shapes cut to `1x48x48...`."""
    from rich.console import Console
    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, no_color=True, highlight=False, soft_wrap=True)


def _ssh_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--identity", help="SSH private key file")
    p.add_argument("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="trust and record an unknown host key (default: reject it)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="edgeforge",
        description="Compress neural networks to int8, emit .tflite and C, and prove them "
                    "on devices (QEMU, serial boards, SSH boards).")
    from edgeforge.version import __version__
    ap.add_argument("--version", action="version", version=f"edgeforge {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="ops, tensors, params, MACs, weight bytes")
    p.add_argument("model")
    _json(p)
    _verbose(p)

    p = sub.add_parser("run", help="run one input through a model")
    p.add_argument("model", help=".tflite, .onnx, or a compiled DIR (backend c)")
    p.add_argument("-i", "--input", required=True, help=".npy with one input (batch included)")
    p.add_argument("-o", "--output", help="write the first output here (.npy)")
    p.add_argument("--backend", choices=["reference", "litert", "c"], default="reference")
    p.add_argument("--numerics", choices=[n.value for n in Numerics], default=None,
                   help="int8 rounding profile: tflm or litert (default: a compiled DIR's "
                        "own, else tflm)")
    _json(p)

    p = sub.add_parser("compile", help="model -> int8 .tflite + C package + manifest")
    p.add_argument("model")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--calib", metavar="DATA.npz[:KEY]",
                   help="calibration inputs of a float model: .npy, or .npz (arrays named "
                        "after the inputs, or pick one with :KEY)")
    p.add_argument("--board", help="board profile to tune for (targets/boards/*.toml)")
    p.add_argument("--name", default="model", help="C symbol prefix: ef_<name>_invoke()")
    p.add_argument("--observer", default=None,
                   help="calibration observer: minmax|percentile|entropy|mse (default: mse, "
                        "the best on the MLPerf models)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weight quantization")
    p.add_argument("--activations", choices=("int8", "int16", "auto"), default="int8",
                   help="activation precision of a float model: int8, int16 (16x8: int16 "
                        "activations, int8 weights) or auto (per layer, the layers int8 hurts "
                        "most as 16x8 while the arena fits --ram-budget); default int8")
    p.add_argument("--ram-budget", type=int, metavar="BYTES", default=None,
                   help="arena budget for --activations auto and for --cluster's unpacked "
                        "weights (default: the --board's RAM)")
    p.add_argument("--prune", type=float, default=None, help="magnitude-prune to this sparsity")
    p.add_argument("--prune-blocks", action="store_true",
                   help="with --prune: zero whole 4x4 FC weight blocks (smallest L2 norm) so "
                        "the C package stores and multiplies only the rest (block-sparse "
                        "kernel, when at most half the blocks are left)")
    p.add_argument("--prune-channels", type=float, default=None,
                   help="structured channel pruning: fraction of MACs to remove")
    p.add_argument("--distill", action=argparse.BooleanOptionalAction, default=None,
                   help="refit pruned layers to the float model's layer outputs (least "
                        "squares; on by default when pruning)")
    p.add_argument("--target-macs", type=int, metavar="N", default=None,
                   help="structured channel pruning down to N MACs")
    p.add_argument("--target-flash", type=int, metavar="BYTES", default=None,
                   help="structured channel pruning down to BYTES of int8 weights")
    p.add_argument("--cluster", type=int, choices=(16, 4), default=None,
                   help="weight clustering: at most K int8 values per conv/FC weight tensor, "
                        "stored in the C package as a value table + 4-/2-bit indices")
    p.add_argument("--val-data", metavar="DATA.npz",
                   help="x (and labels y) to measure what compression costs (default: the "
                        "held-out 20%% of --calib)")
    p.add_argument("--max-sqnr-drop", type=float, metavar="DB", default=None,
                   help="search the strongest pruning (up to the --prune / --prune-channels "
                        "given) whose int8 output SQNR falls by at most DB")
    p.add_argument("--min-accuracy", type=float, metavar="A", default=None,
                   help="as --max-sqnr-drop, keeping top-1 accuracy on --val-data >= A "
                        "(0.97 or 97)")
    _numerics(p)
    _json(p)
    _verbose(p)

    p = sub.add_parser("validate", help="float vs int8 (and the device) on a labelled data set")
    p.add_argument("model", help="a compiled DIR, or a .tflite / .onnx model")
    p.add_argument("--data", required=True,
                   help=".npz with x (N inputs on the batch axis) and optionally y (labels)")
    p.add_argument("--target", help="also run int8 on this target (as in profile --target)")
    p.add_argument("--calib", help="a float model file: calibration data (default: x)")
    p.add_argument("--numerics", choices=[n.value for n in Numerics], default=None,
                   help="a model file: int8 rounding profile (a DIR keeps its own)")
    _ssh_opts(p)
    _json(p)
    _verbose(p)

    p = sub.add_parser("report", help="one HTML page: arena timeline, per-op and SQNR bars")
    p.add_argument("dir")
    p.add_argument("-o", "--out", help="the .html to write (default DIR/report.html)")
    _json(p)

    p = sub.add_parser("build", help="firmware image for a board from a compiled DIR")
    p.add_argument("dir")
    p.add_argument("--board", required=True)
    p.add_argument("--kernels", choices=["ref", "dsp"], help="override the board's kernel set")
    _json(p)

    p = sub.add_parser("flash", help="flash a built DIR onto a board")
    p.add_argument("dir")
    p.add_argument("--board", required=True)
    p.add_argument("--port")

    p = sub.add_parser("profile", help="measure a compiled DIR on a target")
    p.add_argument("dir")
    p.add_argument("--target", default="qemu://mps2-an386",
                   help="local | ssh://user@host[:port] | serial:///dev/X?board=B | qemu://mps2-an386")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--inputs", help=".npy of N inputs stacked on a new leading axis")
    p.add_argument("--native", action="store_true", help="ssh: compile the C package on the device")
    p.add_argument("--runtime", choices=["auto", "litert", "tensorrt", "native"],
                   help="Linux boards: LiteRT, a TensorRT INT8 engine built on the device from "
                        "model_qdq.onnx, or the C package (default auto: the fastest the board has)")
    p.add_argument("--threads", type=int, default=None,
                   help="interpreter threads (default: the URI's ?threads=, else 1)")
    p.add_argument("--trace", dest="trace_out", metavar="OUT.json",
                   help="write the per-op profile as Chrome/Perfetto trace events")
    p.add_argument("--trace-frames", dest="trace", action="store_true",
                   help="log every frame in hex")
    p.add_argument("--kernels", choices=["ref", "dsp"], help="qemu: build with this kernel set")
    p.add_argument("--clock-mhz", type=float, metavar="MHZ",
                   help="counting targets (qemu, serial): latency at this clock instead of "
                        "the board profile's (QEMU mps2-an386: 25 MHz, 1 instruction/cycle)")
    p.add_argument("--cycles", action="store_true",
                   help="qemu: also estimate Cortex-M4 cycles (TRM timings) from QEMU's "
                        "execution log, in total and per op")
    _ssh_opts(p)
    _json(p)
    _verbose(p)

    p = sub.add_parser("deploy", help="upload a compiled DIR to a Linux board")
    p.add_argument("dir")
    p.add_argument("--target", required=True, help="ssh://user@host[:port]")
    _ssh_opts(p)
    _json(p)

    p = sub.add_parser("fleet", help="act on many boards at once")
    fsub = p.add_subparsers(dest="fleet_command", required=True)
    fp = fsub.add_parser("profile", help="profile a DIR on every host of an inventory")
    fp.add_argument("dir")
    fp.add_argument("--inventory", required=True,
                    help="hosts.toml, or an Ansible inventory (INI or YAML file, or directory)")
    fp.add_argument("--limit", help="Ansible host pattern: a group, a host, 'boards:!pi3'")
    fp.add_argument("--engine", choices=["threads", "ansible"], default="threads",
                    help="fan-out: a thread pool here (default), or Ansible via ansible-runner")
    fp.add_argument("--runs", type=int, default=10)
    fp.add_argument("--warmup", type=int, default=1)
    fp.add_argument("--parallel", type=int, default=4, help="hosts at once (Ansible: forks)")
    _ssh_opts(fp)
    _json(fp)
    _verbose(fp)

    for name, what in (("serve", "on a Linux board: run a stream of inputs, publish over MQTT"),
                       ("bridge", "relay a microcontroller's results to MQTT")):
        p = sub.add_parser(name, help=what)
        p.add_argument("dir" if name == "serve" else "target")
        if name == "bridge":
            p.add_argument("dir")
        p.add_argument("--mqtt", required=True, help="mqtt://[user:pass@]broker[:1883]")
        p.add_argument("--inputs", default="-", help="directory, pipe or - (stdin) of .npy frames")
        p.add_argument("--labels", help="text file, one class name per line")
        p.add_argument("--device-id",
                       help="Home Assistant device id (default: edgeforge_<board>_<model>_<hash8>)")
        p.add_argument("--task", choices=["classifier", "anomaly", "regressor"],
                       help="which entities to publish (default: guessed from the outputs)")
        p.add_argument("--threshold", type=float,
                       help="anomaly: reconstruction error above which the Anomaly sensor is on")
        _verbose(p)

    p = sub.add_parser("boards", help="the board profiles: CPU, kernels, memory, QEMU")
    _json(p)

    ap.formatter_class = _HelpFormatter
    ap.epilog = "`edgeforge COMMAND --help` shows each command's options and examples."
    cmds = [(name, cmd) for name, cmd in sub.choices.items()]
    cmds += [(name, child) for name, cmd in cmds for a in cmd._actions
             if isinstance(a, argparse._SubParsersAction) for child in a.choices.values()]
    for name, cmd in cmds:                   # `fleet profile` gets fleet's examples too
        cmd.formatter_class = _HelpFormatter
        cmd.epilog = EXAMPLES.get(name)
        for action in cmd._actions:          # argparse prints help only for actions with one
            if action.help is None and action.option_strings and \
                    not any(action.default is v for v in (None, False, True)):
                action.help = "(default: %(default)s)"
    return ap


def _handler(command: str) -> Callable[[Any], int]:
    module, func = HANDLERS[command].split(":")
    return getattr(importlib.import_module(module), func)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """parse_args, but a usage error asked for with --json is printed as JSON too."""
    argv = sys.argv[1:] if argv is None else argv
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit as e:
        sys.stderr.write(err.getvalue())
        if e.code == 2 and "--json" in argv and err.getvalue().strip():
            last = err.getvalue().strip().splitlines()[-1]
            print(json.dumps({"error": last.split(": error: ", 1)[-1]}))
        raise


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (pytest's capture swaps it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


STAGE_LOGGER = "edgeforge.stage"     # "compile: quantizing ...": the long steps' progress
PROGRESS_LOGGER = "edgeforge.progress"   # stage / done / total / detail events (a bar)


class _ProgressBar(logging.Handler):
    """Draws the library's progress events (edgeforge.quantize.calibrate.report_progress)
    as a transient rich bar per stage on stderr: a stage's bar goes when it completes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        stage = getattr(record, "stage", None)
        if stage is None:
            return
        done, total = int(record.done), max(int(record.total), 1)
        detail = str(getattr(record, "detail", ""))
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                                console=Console(file=sys.stderr), transient=True)
            self.bar.start()
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total, detail=detail)
        self.bar.update(self.tasks[stage], completed=done, total=total, detail=detail)
        if done >= total:
            self.bar.remove_task(self.tasks.pop(stage))
            if not self.tasks:
                self.bar.stop()
                self.bar = None


def _progress_bar() -> None:
    """Progress events become a bar only when stderr is a terminal; piped, nothing."""
    log = logging.getLogger(PROGRESS_LOGGER)
    for h in [h for h in log.handlers if isinstance(h, _ProgressBar)]:
        log.removeHandler(h)
    log.propagate = False                  # never plain lines on stderr
    if sys.stderr.isatty():
        log.addHandler(_ProgressBar())
        log.setLevel(logging.DEBUG)
    else:
        log.setLevel(logging.NOTSET)


def _log_to_stderr(verbose: int = 0) -> None:
    """Library progress (edgeforge.* loggers, INFO and up) goes to stderr as plain lines;
    stage progress (STAGE_LOGGER) only on a terminal, or when -v asks for it anyway."""
    log = logging.getLogger("edgeforge")
    h = next((h for h in log.handlers if isinstance(h, _Stderr)), None)
    if h is None:
        h = _Stderr()
        h.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(h)
    show = verbose > 0 or sys.stderr.isatty()
    for f in list(h.filters):
        h.removeFilter(f)
    h.addFilter(lambda r: show or not r.name.startswith(STAGE_LOGGER))
    log.setLevel(logging.INFO)
    _progress_bar()


def main(argv: list[str] | None = None) -> int:
    held = _hold_sigint()                # start-up goes on: parse, import the command
    try:
        args = _parse(argv)
        handler = _handler(args.command)
    finally:
        interrupted = _release_sigint(held)
    if interrupted:
        print("edgeforge: interrupted", file=sys.stderr)
        return 130
    _log_to_stderr(int(getattr(args, "verbose", 0) or 0))
    try:
        return int(handler(args) or 0)
    except EdgeforgeError as e:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(e)}))
        print(f"edgeforge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:            # `edgeforge ... | head` closed our stdout: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if _release_sigint(_held):                # Ctrl-C while this module was imported
    sys.stderr.write("edgeforge: interrupted\n")
    sys.exit(130)
