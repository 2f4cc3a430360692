"""A compiled DIR on disk: how `compile` recognises one and how it swaps a new one in.

A folder is a compiled DIR only if its manifest.json carries FORMAT and lists every file
compile wrote with its sha256. compile replaces a DIR only when everything in it is still
what edgeforge wrote: the listed files unchanged, the manifest, and the firmware `edgeforge
build` keeps in DIR/fw/<board>/. A file a user added or edited makes compile refuse (one
error naming it), so compile never deletes a byte it did not write.

The swap: the new DIR is written in .NAME.XXXX.tmp beside NAME, then exchanged with the old
one by one renameat2(RENAME_EXCHANGE), so at every instant NAME is the old or the new DIR;
the old one, now under the temporary name, is deleted. Where the exchange is unavailable
the old DIR is renamed to .NAME.XXXX.old first and renamed back if the second rename fails.
Whatever an interrupted command leaves (a half-written .tmp, an old DIR under a temporary
name, NAME missing with its .old beside it) the next command finishes or rolls back:
recover(), which compile and Manifest.load call.
"""
from __future__ import annotations

import ctypes
import errno
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from edgeforge.errors import EdgeforgeError

FORMAT = "edgeforge-dir/1"
MANIFEST = "manifest.json"
PARTIAL = ".edgeforge-partial"       # in a .tmp being written: the writer's pid
# what `edgeforge build` leaves in DIR/fw/<board>/ (targets/build.py); its temporary
# folders there are hidden (.<board>-XXXX)
# written into a DIR after compile: the last `edgeforge profile` (api.profile) and the page
# `edgeforge report` draws by default
LAST_PROFILE = "profile.json"
REPORT_HTML = "report.html"
FW_FILES = frozenset({"firmware.elf", "firmware.bin", "build.json", "firmware.map", "link.ld",
                      "ef_fw_info.h"})


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_tree(d: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under d but the manifest and the marker."""
    files = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = Path(root, n)
            rel = p.relative_to(d).as_posix()
            if rel not in (MANIFEST, PARTIAL):
                files[rel] = sha256_file(p)
    return dict(sorted(files.items()))


def _listed(d: Path) -> dict[str, str] | None:
    """The manifest's file list if d is a compiled DIR by its manifest, else None."""
    try:
        raw = json.loads((d / MANIFEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        return None
    files = raw.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        return None
    return files


def _is_fw(rel: Path, is_dir: bool) -> bool:
    """Part of what `edgeforge build` writes: fw/, fw/<board>/, fw/<board>/<FW_FILES>, and
    anything in its hidden temporary folders fw/.<board>-XXXX/."""
    parts = rel.parts
    if parts[0] != "fw":
        return False
    if len(parts) >= 2 and parts[1].startswith("."):
        return True
    return (len(parts) <= 2 and is_dir) or (len(parts) == 3 and not is_dir
                                           and parts[2] in FW_FILES)


def not_ours(d: Path) -> list[str] | None:
    """What in the compiled DIR d edgeforge did not write (added, edited, replaced by a
    link), or None if d is not a compiled DIR at all."""
    files = _listed(d)
    if files is None:
        return None
    keep = {Path(f) for f in files}
    parents = {p for f in keep for p in f.parents}
    bad = []
    for root, dirs, names in os.walk(d):
        for n in sorted(dirs) + sorted(names):
            p = Path(root, n)
            rel = p.relative_to(d)
            link, is_dir = p.is_symlink(), p.is_dir()
            if link:
                ok = False
            elif rel.as_posix() in (MANIFEST, LAST_PROFILE, REPORT_HTML) or _is_fw(rel, is_dir):
                ok = True
            elif is_dir:
                ok = rel in parents
            else:
                ok = rel in keep
                if ok and sha256_file(p) != files[rel.as_posix()]:
                    bad.append(f"{rel.as_posix()} (edited)")
                    continue
            if not ok:
                bad.append(rel.as_posix() + ("/" if is_dir and not link else ""))
        dirs[:] = [x for x in dirs if not Path(root, x).is_symlink()]
    missing = [f for f in files if not (d / f).is_file()]
    return bad + [f"{f} (missing)" for f in missing if f not in bad]


def check_out(out: Path) -> None:
    """-o must be new, an empty folder, or a compiled DIR holding only what edgeforge wrote;
    never the current directory or one above it (the swap would pull it from under you)."""
    here = Path(_abs(Path("."), out))
    if here == _abs(out, out) or here.is_relative_to(_abs(out, out)):
        raise EdgeforgeError(f"{out}: is the current directory or contains it; compile "
                             "replaces DIR as a whole (pick a new folder for -o)")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise EdgeforgeError(f"{out}: exists and is not a directory (pick another -o)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    bad = not_ours(out)
    if bad is None:
        older = (out / MANIFEST).is_file() and (out / "model.tflite").is_file()
        raise EdgeforgeError(
            f"{out}: " + ("looks like a DIR from an older edgeforge (its manifest lists no "
                          "files), so compile cannot tell its files from yours; delete it "
                          "yourself or pick another -o" if older else
                          f"exists and is not a compiled DIR (no manifest.json with format "
                          f"{FORMAT}); refusing to replace it (pick another -o)"))
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise EdgeforgeError(f"{out}: holds files edgeforge did not write ({shown}); "
                             "refusing to replace it (move them out or pick another -o)")


def _abs(p: Path, out: Path) -> Path:
    try:
        return Path(os.path.abspath(p))
    except OSError:                      # os.getcwd(): our directory was removed
        raise EdgeforgeError(f"{out}: the current directory no longer exists") from None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False                 # our own leftover from an earlier failure
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _writer(d: Path) -> int | None:
    """pid in a .tmp's marker, or None if d has no marker."""
    try:
        return int((d / PARTIAL).read_text() or 0)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return 0


def recover(out: Path) -> None:
    """Finish or roll back an interrupted swap of out and remove the temporary folders
    compile made beside it. Leaves alone what another running compile is writing and any
    folder whose content is not what edgeforge wrote."""
    out = _abs(out, out)                     # "." and "dir/" have a name to put beside
    parent, name = out.parent, glob.escape(out.name)
    if not parent.is_dir() or not out.name:
        return
    for p in sorted(parent.glob(f".{name}.*.old")) + sorted(parent.glob(f".{name}.*.tmp")):
        if p.is_symlink() or not p.is_dir():
            continue
        pid = _writer(p)
        if pid is not None:
            if not _alive(pid):
                rmtree(p)            # a half-written new DIR
            continue
        bad = not_ours(p)
        if bad == [] and p.suffix == ".old" and not out.exists() and not out.is_symlink():
            with suppress(OSError):
                os.rename(p, out)    # roll back: the old DIR was moved aside, the new one never came
            continue
        if bad == [] or (bad is None and not any(p.iterdir())):
            rmtree(p)                # an old DIR swapped out, or an empty mkdtemp


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A new .NAME.XXXX.tmp beside out to write the new DIR in; removed if the body fails."""
    out = _abs(out, out)
    recover(out)
    check_out(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise EdgeforgeError(f"{out}: cannot create the output directory ({e.strerror})") from None
    try:
        (tmp / PARTIAL).write_text(str(os.getpid()))
        yield tmp
    except BaseException:
        rmtree(tmp)
        raise


# the steps of swap_in, module-level so a test can make each one fail
def rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def _exchange(a: Path, b: Path) -> None:
    """Atomically swap the names a and b (Linux renameat2 RENAME_EXCHANGE)."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 unavailable")
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _rename(a: Path, b: Path) -> None:
    os.rename(a, b)


def _publish(tmp: Path) -> None:
    """mkdtemp made tmp private; give the DIR the umask's permissions, drop the marker."""
    mask = os.umask(0)
    os.umask(mask)
    for p in [tmp, *tmp.rglob("*")]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)
    (tmp / PARTIAL).unlink()


def swap_in(tmp: Path, out: Path) -> None:
    """Put the complete DIR tmp at out; the old out (if any) is deleted afterwards."""
    out = _abs(out, out)
    check_out(out)                   # again: the user may have added a file meanwhile
    _publish(tmp)
    if not out.exists():
        _rename(tmp, out)
        return
    try:
        _exchange(tmp, out)          # tmp now holds the old DIR
        rmtree(tmp)
        return
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(old)
    _rename(out, old)
    try:
        _rename(tmp, out)
    except BaseException:
        _rename(old, out)            # roll back; if this fails too, recover() does it later
        raise
    rmtree(old)
