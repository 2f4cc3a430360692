"""`edgeforge fleet profile DIR --inventory hosts.toml`: edgeforge.targets.fleet.fleet_profile
over every host, printed as one table (or --json). Exit 1 when any host failed."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.targets.fleet import fleet_profile, load_inventory


def print_table(entries: list[dict[str, Any]], title: str) -> None:
    """One row per host; failed hosts' errors are printed in full under the table."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(title))
    for col in ("host", "status", "board", "arch", "runtime", "mean µs", "p50 µs", "p99 µs",
                "RSS kB", "max LSB", "outputs"):
        t.add_column(col, justify="right" if "µs" in col or "kB" in col else "left",
                     no_wrap=col in ("host", "status"))
    for e in entries:
        if not e["ok"]:
            t.add_row(escape(e["name"]), "[red]FAILED[/red]", *[""] * 9)
            continue
        lat = e.get("latency_us") or {}
        match = e.get("outputs_match_reference")
        t.add_row(escape(e["name"]), "[green]ok[/green]", escape(str(e.get("board") or "")),
                  str(e.get("arch") or ""),
                  f"{e.get('runtime') or ''} {e.get('runtime_version') or ''}".strip(),
                  f"{lat.get('mean', 0):.1f}", f"{lat.get('p50', 0):.1f}",
                  f"{lat.get('p99', 0):.1f}", str(e.get("peak_rss_kb") or ""),
                  str(e.get("max_lsb_diff") if e.get("max_lsb_diff") is not None else ""),
                  {True: "[green]match[/green]", False: "[red]MISMATCH[/red]"}.get(match, "?"))
    from edgeforge.cli import console
    con = console()
    con.print(t)
    for e in entries:
        if not e["ok"]:
            con.print(f"[red]{escape(e['name'])}[/red] ({escape(e['uri'])}): {escape(e['error'])}",
                      soft_wrap=True, highlight=False)


def main(args: Any) -> int:
    if args.fleet_command != "profile":
        raise EdgeforgeError(f"unknown fleet command {args.fleet_command!r}")
    artifact = Path(args.dir)
    manifest = Manifest.load(artifact)
    hosts = load_inventory(args.inventory, {
        "identity": args.identity, "known_hosts": args.known_hosts,
        "accept_new_host_key": args.accept_new_host_key})
    entries = fleet_profile(artifact, hosts, args.runs, args.warmup, args.parallel)
    if args.json:
        print(json.dumps({"dir": str(artifact), "model_sha256": manifest.model_sha256,
                          "hosts": entries}, indent=2, default=_jsonable))
    else:
        print_table(entries, f"{manifest.name} ({manifest.model_sha256[:16]}) on "
                             f"{len(hosts)} host(s)")
    return 0 if all(e["ok"] for e in entries) else 1


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return repr(o)
