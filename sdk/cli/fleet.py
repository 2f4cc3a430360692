"""`edgeforge fleet profile DIR --inventory hosts.toml`: edgeforge.targets.fleet.fleet_profile
over every host, printed as one table (or --json). Exit 1 when any host failed."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.targets.fleet import fleet_profile
from edgeforge.targets.inventory import flag_shared_machines, is_toml, load_any, summary_row


def print_table(entries: list[dict[str, Any]], title: str,
                summary: dict[str, Any] | None = None) -> None:
    """One row per host, a summary row; failed hosts' errors are printed in full under the
    table, and hosts that shared a machine while profiled are marked *."""
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
        shared = "*" if e.get("shared_machine") else ""
        t.add_row(escape(e["name"]) + shared, "[green]ok[/green]",
                  escape(str(e.get("board") or "")),
                  str(e.get("arch") or ""),
                  f"{e.get('runtime') or ''} {e.get('runtime_version') or ''}".strip(),
                  f"{lat.get('mean', 0):.1f}", f"{lat.get('p50', 0):.1f}",
                  f"{lat.get('p99', 0):.1f}", str(e.get("peak_rss_kb") or ""),
                  str(e.get("max_lsb_diff") if e.get("max_lsb_diff") is not None else ""),
                  {True: "[green]match[/green]", False: "[red]MISMATCH[/red]"}.get(match, "?"))
    if summary is not None:
        spread = summary.get("mean_us") or {}
        t.add_section()
        t.add_row(f"{summary['ok']}/{summary['hosts']} ok",
                  f"{summary['failed']} failed" if summary["failed"] else "",
                  f"fastest {escape(summary.get('fastest', '-'))}", "", "median of means",
                  f"{spread.get('median', 0):.1f}", f"min {spread.get('min', 0):.1f}",
                  f"max {spread.get('max', 0):.1f}", "", "",
                  f"{summary['outputs_match']}/{summary['ok']} match")
    from edgeforge.cli import console
    con = console()
    con.print(t)
    for e in entries:
        if not e["ok"]:
            con.print(f"[red]{escape(e['name'])}[/red] ({escape(e['uri'])}): {escape(e['error'])}",
                      soft_wrap=True, highlight=False)
    shared = [e["name"] for e in entries if e.get("shared_machine")]
    if shared:
        con.print(f"* {', '.join(map(escape, shared))}: profiled at the same time on one "
                  "machine, so they slowed each other (tails inflated); --parallel 1 to "
                  "measure them alone", soft_wrap=True, highlight=False)


def main(args: Any) -> int:
    if args.fleet_command != "profile":
        raise EdgeforgeError(f"unknown fleet command {args.fleet_command!r}")
    artifact = Path(args.dir)
    manifest = Manifest.load(artifact)
    limit, engine = getattr(args, "limit", None), getattr(args, "engine", "threads")
    hosts = load_any(args.inventory, {
        "identity": args.identity, "known_hosts": args.known_hosts,
        "accept_new_host_key": args.accept_new_host_key}, limit)
    if engine == "ansible":
        if is_toml(args.inventory):
            raise EdgeforgeError(f"{args.inventory}: --engine ansible reads an Ansible "
                                 "inventory (INI or YAML), not hosts.toml")
        from edgeforge.targets.ansible_fleet import ansible_profile
        entries = ansible_profile(artifact, args.inventory, hosts, limit=limit, runs=args.runs,
                                  warmup=args.warmup, parallel=args.parallel,
                                  known_hosts=args.known_hosts)
    else:
        entries = fleet_profile(artifact, hosts, args.runs, args.warmup, args.parallel)
    flag_shared_machines(entries, hosts, concurrent=args.parallel > 1)
    summary = summary_row(entries)
    if args.json:
        print(json.dumps({"dir": str(artifact), "model_sha256": manifest.model_sha256,
                          "engine": engine, "hosts": entries, "summary": summary},
                         indent=2, default=_jsonable))
    else:
        print_table(entries, f"{manifest.name} ({manifest.model_sha256[:16]}) on "
                             f"{len(hosts)} host(s)", summary)
    return 0 if all(e["ok"] for e in entries) else 1


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return repr(o)
