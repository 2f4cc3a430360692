"""`edgeforge fleet profile DIR --inventory hosts.toml`: one model, many boards, one table.

Inventory (TOML):
    [defaults]                      # optional, applies to every host
    identity = "~/.ssh/id_ed25519"
    known_hosts = "~/.ssh/known_hosts"
    timeout = 300                   # seconds for the whole profile of one host
    [[host]]
    name = "pi4"
    uri = "ssh://pi@10.0.0.5"
    python = "/usr/bin/python3"     # optional: interpreter with numpy + a TFLite runtime
    dir = "~/.edgeforge"            # optional: base directory on the device
    native = false                  # optional: compile the C package on the device
    accept_new_host_key = false

Hosts are profiled concurrently (at most --parallel at once), each under its own timeout;
a host that fails or times out becomes an error entry and the others carry on.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest

HOST_KEYS = {"name", "uri", "identity", "known_hosts", "accept_new_host_key", "python", "dir",
             "native", "threads", "timeout", "passphrase"}
# key -> (python types it may have, how the error says it); bool is not a number here
KEY_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"), "uri": ((str,), "a string"),
    "identity": ((str,), "a path string"), "known_hosts": ((str,), "a path string"),
    "python": ((str,), "a path string"), "dir": ((str,), "a path string"),
    "passphrase": ((str,), "a string"),
    "accept_new_host_key": ((bool,), "true or false"), "native": ((bool,), "true or false"),
    "threads": ((int,), "a whole number >= 1"), "timeout": ((int, float), "seconds > 0"),
}
DEFAULT_TIMEOUT = 300.0


def _check_types(path: Path, where: str, table: dict[str, Any]) -> None:
    """One error naming the file, the host (or [defaults]), the key and what it must be."""
    for key, value in table.items():
        if key not in KEY_TYPES:
            continue
        types, what = KEY_TYPES[key]
        if bool in types:
            ok = isinstance(value, bool)        # "no" is truthy: only TOML true/false
        else:
            ok = isinstance(value, types) and not isinstance(value, bool)
        if ok and key == "threads":
            ok = value >= 1
        if ok and key == "timeout":
            ok = math.isfinite(value) and value > 0
        if ok and isinstance(value, str) and key in ("name", "uri"):
            ok = bool(value.strip())
        if not ok:
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            if key == "passphrase":              # a secret: never in a message
                shown = f"<{type(value).__name__}>"
            raise EdgeforgeError(f"{path}: {where}: {key} = {shown} must be {what}")


@dataclass
class Host:
    name: str
    uri: str
    timeout: float = DEFAULT_TIMEOUT
    options: dict[str, Any] = field(default_factory=dict)   # passed to open_target


def load_inventory(path: str | Path, defaults: dict[str, Any] | None = None) -> list[Host]:
    """hosts.toml -> hosts; CLI `defaults` < [defaults] table < the host's own keys."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise EdgeforgeError(f"{path}: inventory not found") from None
    except OSError as e:
        raise EdgeforgeError(f"{path}: cannot read the inventory ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EdgeforgeError(f"{path}: not valid TOML ({e})") from None
    unknown_top = set(raw) - {"host", "defaults"}
    if unknown_top:
        raise EdgeforgeError(f"{path}: unknown table(s) or key(s) {sorted(unknown_top)}; "
                             "an inventory has [defaults] and [[host]] entries")
    hosts = raw.get("host")
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, dict) for h in hosts):
        raise EdgeforgeError(f"{path}: no [[host]] entries (each needs name and uri)")
    table = raw.get("defaults", {})
    if not isinstance(table, dict):
        raise EdgeforgeError(f"{path}: defaults = {table!r} must be a table ([defaults])")
    unknown = set(table) - (HOST_KEYS - {"name", "uri"})
    if unknown:
        raise EdgeforgeError(f"{path}: [defaults]: unknown key(s) {sorted(unknown)}; allowed: "
                             f"{sorted(HOST_KEYS - {'name', 'uri'})}")
    _check_types(path, "[defaults]", table)
    base = {k: v for k, v in (defaults or {}).items() if v not in (None, False)}
    base.update(table)
    out: list[Host] = []
    for i, h in enumerate(hosts):
        label = f"host {i + 1}" + (f" ({h['name']})" if isinstance(h.get("name"), str) else "")
        unknown = set(h) - HOST_KEYS
        if unknown:
            raise EdgeforgeError(f"{path}: {label}: unknown key(s) {sorted(unknown)}; "
                                 f"allowed: {sorted(HOST_KEYS)}")
        _check_types(path, label, h)
        entry = {**base, **h}
        if not entry.get("name") or not entry.get("uri"):
            raise EdgeforgeError(f"{path}: {label} needs both name and uri")
        name, uri = entry.pop("name"), entry.pop("uri")
        if any(x.name == name for x in out):
            raise EdgeforgeError(f"{path}: host name {name!r} appears twice")
        timeout = float(entry.pop("timeout", DEFAULT_TIMEOUT))
        if uri.startswith(("ssh:", "local")):               # the agent's per-request limit
            entry.setdefault("timeout", min(timeout, 120.0))
        out.append(Host(name, uri, timeout, entry))
    return out


def default_inputs(manifest: Manifest, n: int = 3, seed: int = 0) -> np.ndarray:
    """Deterministic [n, *shape] inputs in the model's input dtype, the same on every host."""
    spec = manifest.inputs[0]
    rng = np.random.default_rng(seed)
    dt = np.dtype(spec.dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, int(info.max) + 1, size=(n, *spec.shape), dtype=dt)
    return rng.standard_normal((n, *spec.shape)).astype(dt)


def profile_target(artifact: Path, uri: str, runs: int, warmup: int, inputs: np.ndarray,
                   **options: Any) -> dict[str, Any]:
    """Profile on one target: targets.profile.profile, which checks every sample's outputs
    against the profile the target computes in."""
    from edgeforge.targets.profile import profile
    return profile(artifact, uri, runs=runs, warmup=warmup, inputs=inputs, **options)


def _summary(name: str, uri: str, res: dict[str, Any], seconds: float) -> dict[str, Any]:
    dev = res.get("device") or {}       # targets.profile flattens Measurement.extra into res
    board = dev.get("board") or res.get("board")
    return {"name": name, "uri": uri, "ok": True, "seconds": round(seconds, 2),
            "board": board.get("model") if isinstance(board, dict) else board,
            "machine": board.get("machine") if isinstance(board, dict) else None,
            "arch": dev.get("arch") or res.get("arch"),
            "runtime": res.get("runtime"), "runtime_version": res.get("runtime_version"),
            "latency_us": res["latency_us"],
            "peak_rss_kb": res.get("peak_rss_kb"), "max_lsb_diff": res.get("max_lsb_diff"),
            "outputs_match_reference": res.get("outputs_match_reference"),
            **({res["count_unit"]: res.get(res["count_unit"])} if res.get("count_unit") else {})}


def fleet_profile(artifact: Path, hosts: list[Host], runs: int = 10, warmup: int = 1,
                  parallel: int = 4, inputs: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Profile every host concurrently; one entry per host, in inventory order, errors inline."""
    manifest = Manifest.load(artifact)
    inputs = default_inputs(manifest) if inputs is None else inputs
    started: dict[str, float] = {}

    def work(h: Host) -> dict[str, Any]:
        started[h.name] = time.monotonic()
        res = profile_target(artifact, h.uri, runs, warmup, inputs, **h.options)
        return _summary(h.name, h.uri, res, time.monotonic() - started[h.name])

    results: dict[str, dict[str, Any]] = {}
    stage = logging.getLogger("edgeforge.stage.fleet").info   # shown on a terminal (cli)
    told: set[str] = set()
    pool = cf.ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="fleet")
    futures = {pool.submit(work, h): h for h in hosts}
    try:
        while len(results) < len(hosts):
            done, _ = cf.wait([f for f, h in futures.items() if h.name not in results],
                              timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for f in done:
                h = futures[f]
                try:
                    results[h.name] = f.result()
                except Exception as e:  # noqa: BLE001 -- one host's failure is its own entry
                    msg = str(e) if isinstance(e, EdgeforgeError) else f"{type(e).__name__}: {e}"
                    results[h.name] = {"name": h.name, "uri": h.uri, "ok": False, "error": msg}
            now = time.monotonic()
            for f, h in futures.items():
                if h.name not in results and h.name in started \
                        and now - started[h.name] > h.timeout:
                    results[h.name] = {"name": h.name, "uri": h.uri, "ok": False,
                                       "error": f"timed out after {h.timeout:.0f} s"}
            for name in [n for n in results if n not in told]:
                told.add(name)
                stage("fleet: %d/%d hosts done (%s: %s)", len(told), len(hosts), name,
                      "ok" if results[name].get("ok") else "failed")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [results[h.name] for h in hosts]
