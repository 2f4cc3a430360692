"""The one reader of user-supplied .npy/.npz files (run -i, compile --calib, profile --inputs).

Nothing in the file is trusted: the header is parsed and checked (a numeric dtype without
Python objects, a shape whose bytes the file really holds, at most MAX_BYTES in all) before
any array is allocated or any .npz member inflated, so a header claiming petabytes or a
compressed bomb is one error, not a MemoryError or gigabytes inflated in vain.
"""
from __future__ import annotations

import lzma
import math
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npformat

from edgeforge.errors import EdgeforgeError

_MAGIC = (b"\x93NUMPY", b"PK\x03\x04")      # .npy header, .npz (a zip archive)
MAX_BYTES = 512 << 20                      # all arrays of one file together


class _Bad(Exception):
    """Why the file is refused (turned into the caller's error class with the path)."""


def read_npy(path: str | Path, error: type[EdgeforgeError] = EdgeforgeError
             ) -> np.ndarray | dict[str, np.ndarray]:
    """A .npy's array or a .npz's {name: array}, never unpickling; anything else (missing,
    a directory, empty, not numpy, corrupt, more than MAX_BYTES) raises `error` naming the
    file and why."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{p}: is a directory, not a .npy/.npz file")
    if not p.is_file():
        raise error(f"{p}: no such file")
    try:
        with p.open("rb") as f:
            head = f.read(6)
            if not head.startswith(_MAGIC):
                # np.load would try pickle on these and report that, which misleads
                raise error(f"{p}: " + ("empty file" if not head else "not a .npy/.npz file")
                            + " (save arrays with numpy.save / numpy.savez)")
            if head.startswith(b"PK"):
                return _read_npz(p)
            f.seek(0)
            return _read_array(f, p.stat().st_size, MAX_BYTES)
    except _Bad as e:
        raise error(f"{p}: {e}") from None
    except (OSError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
            zipfile.LargeZipFile, zlib.error, lzma.LZMAError) as e:
        # zipfile's own: unsupported version or method, encrypted member, bad CRC / stream
        raise error(f"{p}: unreadable .npy/.npz ({e or type(e).__name__})") from None


def _read_npz(p: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    budget = MAX_BYTES
    with zipfile.ZipFile(p) as z:
        for info in z.infolist():
            if not info.filename.endswith(".npy") or info.is_dir():
                raise _Bad(f"member {info.filename!r} is not a .npy array (a .npz holds "
                           "only arrays saved by numpy.savez)")
            with z.open(info) as f:                # inflates only what is read
                a = _read_array(f, info.file_size, budget, info.filename)
            budget -= a.nbytes
            out[info.filename[:-4]] = a
    return out


def _read_array(f: BinaryIO, size: int, budget: int, member: str = "") -> np.ndarray:
    """One .npy stream of `size` bytes: header checked, then exactly its data read."""
    where = f"member {member!r}: " if member else ""
    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as e:  # noqa: BLE001 - a crafted header breaks numpy's parser many ways
        raise _Bad(f"{where}malformed .npy header ({type(e).__name__}: "
                   f"{' '.join(str(e).split())[:200]})") from None
    if dtype.hasobject:
        raise _Bad(f"{where}holds Python objects (dtype {dtype}); only numeric arrays are read")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _Bad(f"{where}malformed .npy header (shape {shape})")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > budget:
        raise _Bad(f"{where}declares {dtype}{list(shape)}, {nbytes:,} bytes: more than the "
                   f"{MAX_BYTES:,} edgeforge reads from one file (use fewer samples)")
    left = size - f.tell()
    if left < nbytes:
        raise _Bad(f"{where}truncated: its header declares {dtype}{list(shape)} ({nbytes:,} "
                   f"bytes) but {max(left, 0):,} follow")
    if dtype.itemsize == 0:
        raise _Bad(f"{where}dtype {dtype} has no bytes per element")
    raw = np.empty(nbytes, np.uint8)
    view, got = memoryview(raw), 0
    while got < nbytes:                   # readinto may return less than asked (zip streams)
        n = f.readinto(view[got:])
        if not n:
            raise _Bad(f"{where}truncated: {got:,} of {nbytes:,} data bytes")
        got += n
    return raw.view(dtype).reshape(shape, order="F" if fortran else "C")
