"""`edgeforge deploy DIR --target ssh://user@host[:port]`: edgeforge.api.deploy, printed."""
from __future__ import annotations

import json
from typing import Any

from edgeforge import api


def main(args: Any) -> int:
    res = api.deploy(args.dir, args.target, identity=args.identity,
                     known_hosts=args.known_hosts,
                     accept_new_host_key=args.accept_new_host_key)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    dev = res["device"]
    rts = ", ".join(f"{r['name']} {r['version']}" for r in dev.get("runtimes", [])) or "none"
    print(f"deployed {res['name']} ({res['model_sha256'][:16]}) to "
          f"{res['target']}:{res['dir']}\n  uploaded {len(res['uploaded'])}, unchanged "
          f"{len(res['unchanged'])}\n  board {dev['board']['model']} ({dev['arch']}), "
          f"python {dev['python']}, runtimes: {rts}")
    return 0
