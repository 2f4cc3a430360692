"""`edgeforge bridge`: edgeforge.targets.mqtt.bridge, which runs until the inputs end and
logs its progress (the CLI shows it on stderr)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeforge.targets.mqtt import bridge


def main(args: Any) -> int:
    bridge(args.target, Path(args.dir), args.mqtt, args.inputs, args.labels, args.device_id,
           verbose=getattr(args, "verbose", 0), task=getattr(args, "task", None),
           threshold=getattr(args, "threshold", None))
    return 0
