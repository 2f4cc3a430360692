"""The one reader of user-supplied .npy/.npz files (run -i, compile --calib, profile --inputs)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgeforge.errors import EdgeforgeError

_MAGIC = (b"\x93NUMPY", b"PK\x03\x04")      # .npy header, .npz (a zip archive)


def read_npy(path: str | Path, error: type[EdgeforgeError] = EdgeforgeError
             ) -> np.ndarray | dict[str, np.ndarray]:
    """A .npy's array or a .npz's {name: array}, never unpickling; anything else (missing,
    a directory, empty, not numpy, corrupt) raises `error` naming the file and why."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{p}: is a directory, not a .npy/.npz file")
    if not p.is_file():
        raise error(f"{p}: no such file")
    with p.open("rb") as f:
        head = f.read(6)
    if not head.startswith(_MAGIC):
        # np.load would try pickle on these and report that, which misleads
        raise error(f"{p}: " + ("empty file" if not head else "not a .npy/.npz file")
                    + " (save arrays with numpy.save / numpy.savez)")
    try:
        data = np.load(p, allow_pickle=False)
        if isinstance(data, np.ndarray):
            return data
        with data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise error(f"{p}: unreadable .npy/.npz ({e or type(e).__name__})") from None
