"""`labgrid://PLACE?board=NAME[&coordinator=HOST:PORT]`: a microcontroller in a labgrid lab.

open() acquires PLACE from the labgrid coordinator (default: $LG_COORDINATOR, else
127.0.0.1:20408) through labgrid's own client session, finds the place's
NetworkSerialPort (a serial port a labgrid exporter serves over ser2net, RFC 2217 or raw
TCP) and speaks our protocol over it with pyserial, exactly as `serial://` does on a local
port. Flashing goes through the place's resources when they have a flasher:
  * an esptool board (ESP32) is flashed over the NetworkSerialPort itself (esptool speaks
    RFC 2217);
  * a place with a (Network)USBDebugger gets the firmware through labgrid's OpenOCDDriver
    (config from the board profile's [flasher] openocd_config);
  * a place with a NetworkService named `gdbserver` (a GDB remote server on the lab's
    network: QEMU's -gdb, OpenOCD's or pyOCD's gdbserver, a J-Link GDB server, a Black Magic
    Probe behind ser2net) gets it through GdbFlashDriver, a labgrid driver that runs
    gdb-multiarch `load` and starts the image as a Cortex-M reset does (SP and PC from the
    vector table at the profile's flash origin).
Both debugger routes share everything but the driver: a labgrid Target bound to the acquired
place (RemotePlace), the driver activated, `load(elf)`, deactivated. The serial port is opened
first, so the freshly flashed firmware's boot banner is awaited. Without a flasher the board
must already run DIR's firmware (INFO's model hash is checked, and a mismatch says so). The
place is released on close(), also when open(), flashing or a run fails, and at interpreter
exit.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

from edgeforge.errors import DeviceError, EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.targets.build import load_board
from edgeforge.targets.serial import McuTarget
from edgeforge.targets.transport import Transport

DEFAULT_COORDINATOR = "127.0.0.1:20408"
DEBUGGERS = ("USBDebugger", "NetworkUSBDebugger")
GDB_SERVER = "gdbserver"        # the place's NetworkService that is a GDB remote server
GDB_TIMEOUT_S = 120
_LIVE: weakref.WeakSet[LabgridTarget] = weakref.WeakSet()


@atexit.register
def _release_all() -> None:
    for t in list(_LIVE):
        t.release()


class Place:
    """One acquired labgrid place: the coordinator session and the place's resources."""

    def __init__(self, coordinator: str, name: str):
        try:
            from labgrid.remote.client import start_session
            from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        except ImportError:
            raise EdgeforgeError("labgrid:// needs labgrid: pip install labgrid") from None
        self.coordinator, self.name, self._pb = coordinator, name, pb
        try:
            self.session = start_session(coordinator, extra={})
        except Exception as e:  # noqa: BLE001 -- grpc/asyncio raise many kinds
            raise DeviceError(f"labgrid coordinator {coordinator}: cannot connect ({e})") \
                from None
        self.acquired = False

    def _call(self, what: str, coro) -> Any:
        import grpc
        try:
            return self.session.loop.run_until_complete(coro)
        except grpc.aio.AioRpcError as e:
            raise DeviceError(f"labgrid place {self.name}: {what} refused: {e.details()}") \
                from None

    def acquire(self) -> None:
        s = self.session
        places = s.places
        if self.name not in places:
            known = ", ".join(sorted(places)) or "none"
            raise EdgeforgeError(f"labgrid coordinator {self.coordinator} has no place "
                                 f"{self.name!r} (places: {known})")
        p = places[self.name]
        if p.acquired:
            raise DeviceError(f"labgrid place {self.name} is already acquired by {p.acquired}")
        self._call("acquire", s.stub.AcquirePlace(
            self._pb.AcquirePlaceRequest(placename=self.name)))
        self.acquired = True
        self._call("sync", s.sync_with_coordinator())

    def resources(self) -> dict[tuple[str, str], Any]:
        """(name, class) -> the exporter's entry (.cls, .args, .avail)."""
        return self.session.get_target_resources(self.session.places[self.name])

    def release(self) -> None:
        if self.acquired:
            self.acquired = False
            with contextlib.suppress(Exception):   # releasing must never mask the real error
                self._call("release", self.session.stub.ReleasePlace(
                    self._pb.ReleasePlaceRequest(placename=self.name)))

    def share_session(self) -> None:
        """Let labgrid's RemotePlaceManager (drivers on a RemotePlace) use this session: the
        coordinator keys clients by connection, and grpc gives a process one connection to
        it, so a second session from the same process is refused."""
        from labgrid.resource.remote import RemotePlaceManager
        mgr = RemotePlaceManager.get()
        mgr.session, mgr.loop, mgr.url = self.session, self.session.loop, self.coordinator

    def close(self) -> None:
        self.release()
        from labgrid.resource.remote import RemotePlaceManager
        mgr = RemotePlaceManager.get()
        if mgr.session is self.session:
            mgr.session = mgr.loop = None
        with contextlib.suppress(Exception):
            self.session.loop.run_until_complete(self.session.stop())
            self.session.loop.run_until_complete(self.session.close())


def serial_url(entry: Any) -> tuple[str, int | None]:
    """A NetworkSerialPort entry as a pyserial URL, and its speed."""
    a = entry.args
    proto = a.get("protocol", "rfc2217")
    scheme = {"rfc2217": "rfc2217", "raw": "socket"}.get(proto)
    if scheme is None:
        raise EdgeforgeError(f"NetworkSerialPort protocol {proto!r}: use rfc2217 or raw")
    # ser2net does not answer RFC 2217's SET_CONTROL (flow control); labgrid's own
    # SerialDriver tells pyserial to ignore it the same way
    query = "?ign_set_control" if scheme == "rfc2217" else ""
    return f"{scheme}://{a['host']}:{a['port']}{query}", a.get("speed")


def gdb_flash_driver() -> type:
    """GdbFlashDriver, registered with labgrid's target factory on first use."""
    import attr
    from labgrid.driver.common import Driver
    from labgrid.factory import target_factory
    from labgrid.protocol import BootstrapProtocol
    from labgrid.step import step

    if "GdbFlashDriver" in target_factory.drivers:
        return target_factory.drivers["GdbFlashDriver"]

    @target_factory.reg_driver
    @attr.s(eq=False)
    class GdbFlashDriver(Driver, BootstrapProtocol):
        """Loads an ELF through the GDB remote server a NetworkService names, then starts it
        as a Cortex-M reset does: SP = vector_table[0], PC = vector_table[1]. A reset
        through the server would not do (QEMU's restores the image it was started with);
        on a real chip the peripherals therefore keep their state across the load, which
        a server's `monitor reset halt` first would clear (not issued: untested here)."""
        bindings: ClassVar[dict[str, str]] = {"server": "NetworkService"}
        vector_table = attr.ib(default=0, validator=attr.validators.instance_of(int))

        @Driver.check_active
        @step(args=["filename"])
        def load(self, filename: str) -> None:
            gdb = next(filter(None, map(shutil.which, ("gdb-multiarch", "arm-none-eabi-gdb"))),
                       None)
            if gdb is None:
                raise EdgeforgeError("flashing through a GDB server needs gdb-multiarch "
                                     "(apt install gdb-multiarch)")
            vt, srv = self.vector_table, self.server
            # a gdb script stops at its first failing command, and -batch then exits 1
            script = ["set confirm off", "set pagination off", "set tcp connect-timeout 10",
                      "set remotetimeout 10", "set tcp auto-retry off",
                      f"target remote {srv.address}:{srv.port}",
                      "load", f"set $sp = *(unsigned int *){vt:#x}",
                      f"set $pc = *(unsigned int *){vt + 4:#x} & ~1", "detach"]
            with tempfile.NamedTemporaryFile("w", suffix=".gdb") as f:
                f.write("\n".join(script) + "\n")
                f.flush()
                try:
                    r = subprocess.run([gdb, "-q", "-nx", "-batch", "-x", f.name, filename],
                                       capture_output=True, text=True, timeout=GDB_TIMEOUT_S,
                                       check=False, stdin=subprocess.DEVNULL)
                except subprocess.TimeoutExpired:
                    raise DeviceError(f"gdb {srv.address}:{srv.port}: no answer within "
                                      f"{GDB_TIMEOUT_S} s") from None
            if r.returncode != 0:
                why = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
                raise DeviceError(f"gdb load through {srv.address}:{srv.port} failed: "
                                  f"{why[0]}")

    return GdbFlashDriver


class LabgridTarget(McuTarget):
    kind = "labgrid"

    def __init__(self, place: str, board_name: str, coordinator: str, baud: int | None = None,
                 **kw: Any):
        super().__init__(load_board(board_name), **kw)
        self.place_name, self.coordinator, self.baud = place, coordinator, baud
        self.place: Place | None = None
        self.port = ""
        self.flashed: str | None = None

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> LabgridTarget:
        u = urlparse(uri)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        place = u.netloc or u.path.strip("/")
        if not place or "board" not in q:
            raise EdgeforgeError(f"{uri}: use labgrid://PLACE?board=NAME"
                                 "[&coordinator=HOST:PORT]")
        baud = q.get("baud")
        if baud is not None and (not baud.isdigit() or int(baud) == 0):
            raise EdgeforgeError(f"{uri}: baud {baud!r} is not a positive integer")
        coordinator = q.get("coordinator") or os.environ.get("LG_COORDINATOR") \
            or DEFAULT_COORDINATOR
        return cls(place, q["board"], coordinator, int(baud) if baud else None, **options)

    def _start(self, artifact: Path) -> tuple[Transport, bool]:
        from edgeforge.targets.transport import SerialTransport
        self.place = Place(self.coordinator, self.place_name)
        _LIVE.add(self)
        self.place.acquire()
        res = self.place.resources()
        ports = [e for (_, cls), e in res.items() if cls == "NetworkSerialPort"]
        if not ports:
            have = ", ".join(sorted(f"{n} ({c})" for n, c in res)) or "none"
            raise EdgeforgeError(f"labgrid place {self.place_name}: no NetworkSerialPort "
                                 f"(its resources: {have}); export the board's UART with a "
                                 "RawSerialPort/USBSerialPort on its exporter")
        if not ports[0].avail:
            raise DeviceError(f"labgrid place {self.place_name}: its serial port is not "
                              "available (exporter down, or the device unplugged)")
        self.port, speed = serial_url(ports[0])
        baud = self.baud or speed or int(self.board.uart["baud"])
        if self.board.flasher.get("tool") == "esptool":   # it needs the port to itself
            self.flashed = self._flash_esptool(artifact)
            return SerialTransport(self.port, baud, connect_timeout=10.0), False
        transport = SerialTransport(self.port, baud, connect_timeout=10.0)
        try:
            self.flashed = self._flash_debugger(artifact, res)
        except BaseException:
            transport.close()
            raise
        return transport, self.flashed is not None    # a flashed board boots: await it

    def _flash_esptool(self, artifact: Path) -> str:
        """Over the NetworkSerialPort itself (esptool speaks RFC 2217)."""
        from edgeforge.targets.flash import FLASH_TIMEOUT_S, flash_command
        argv = flash_command(artifact, self.board.name, self.port)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=FLASH_TIMEOUT_S,
                           check=False)
        if r.returncode != 0:
            raise DeviceError(f"labgrid place {self.place_name}: esptool failed: "
                              f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        return "esptool over the NetworkSerialPort"

    def _flash_debugger(self, artifact: Path, res: dict[tuple[str, str], Any]) -> str | None:
        """Through the place's debugger or GDB server, if it has one; what was used."""
        if any(c in DEBUGGERS for _, c in res) and \
                self.board.flasher.get("tool") in ("openocd", "pyocd"):
            from labgrid.driver import OpenOCDDriver
            cfg = self.board.flasher.get("openocd_config")
            if not cfg:
                raise EdgeforgeError(f"board {self.board.name}: its [flasher] has no "
                                     "openocd_config, needed to flash through labgrid")
            self._load_through(artifact, lambda t: OpenOCDDriver(t, name=None, config=cfg))
            return "labgrid OpenOCDDriver"
        if (GDB_SERVER, "NetworkService") in res:
            e = res[(GDB_SERVER, "NetworkService")]
            vt = int(self.board.flash["origin"])
            self._load_through(artifact, lambda t: gdb_flash_driver()(t, name=None,
                                                                      vector_table=vt),
                               {"server": GDB_SERVER})
            return f"labgrid GdbFlashDriver via {e.args['address']}:{e.args['port']}"
        return None

    def _load_through(self, artifact: Path, make_driver, bindings: dict | None = None) -> None:
        """A labgrid Target bound to the acquired place; the driver loads DIR's ELF."""
        from labgrid.resource import RemotePlace
        from labgrid.target import Target as LgTarget

        from edgeforge.targets.build import ensure_built
        elf = ensure_built(artifact, self.board.name)
        assert self.place is not None
        self.place.share_session()
        t = LgTarget(self.place_name)
        drv = None
        try:
            RemotePlace(t, name=self.place_name)
            if bindings:
                t.set_binding_map(bindings)
            drv = make_driver(t)
            t.activate(drv)
            drv.load(str(elf))
        except Exception as e:  # noqa: BLE001 -- labgrid drivers raise many kinds
            why = str(e).strip().splitlines()[-1:] or [type(e).__name__]
            raise DeviceError(f"labgrid place {self.place_name}: flashing through "
                              f"{type(drv).__name__ if drv else 'labgrid'} failed: "
                              f"{why[0]}") from None
        finally:
            t.cleanup()

    def open(self, artifact: Path, manifest: Manifest) -> dict[str, Any]:
        try:
            info = super().open(artifact, manifest)
        except BaseException:
            self.close()
            raise
        return {**info, "labgrid_place": self.place_name, "serial": self.port,
                "flashed": self.flashed}

    def release(self) -> None:
        if self.place is not None:
            self.place.close()
            self.place = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release()
            _LIVE.discard(self)
