"""Byte transports under the MCU protocol: a serial port, a TCP socket (QEMU's UART), memory.

Every transport answers the same three calls; `recv` never blocks longer than its timeout and
raises TransportClosed (a DeviceError) when the other end is gone, so a dead device is an
error, never a hang.
"""
from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Protocol

from edgeforge.errors import DeviceError


class TransportClosed(DeviceError):
    """The device end went away (QEMU exited, cable pulled, socket closed)."""


class Transport(Protocol):
    def send(self, data: bytes) -> None: ...

    def recv(self, n: int, timeout: float) -> bytes:
        """1..n bytes, or b"" if none arrived within `timeout` seconds."""
        ...

    def close(self) -> None: ...


class SocketTransport:
    """TCP client: QEMU's `-serial tcp:127.0.0.1:PORT,server=on` UART, or a serial bridge."""

    def __init__(self, host: str, port: int, connect_timeout: float = 10.0):
        self.where = f"{host}:{port}"
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=1.0)
                break
            except OSError as e:
                if time.monotonic() > deadline:
                    raise DeviceError(f"cannot connect to {self.where}: {e}") from None
                time.sleep(0.05)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(10.0)
            self.sock.sendall(data)
        except OSError as e:
            raise TransportClosed(f"{self.where}: send failed ({e}); did the device exit?") from None

    def recv(self, n: int, timeout: float) -> bytes:
        try:
            self.sock.settimeout(max(timeout, 1e-3))
            data = self.sock.recv(n)
        except TimeoutError:
            return b""
        except OSError as e:
            raise TransportClosed(f"{self.where}: connection lost ({e})") from None
        if not data:
            raise TransportClosed(f"{self.where}: connection closed by the device")
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class SerialTransport:
    """pyserial port or URL (/dev/ttyACM0, COM3, socket://host:port, rfc2217://host:port,
    loop://)."""

    def __init__(self, port: str, baud: int = 115200, connect_timeout: float = 5.0):
        import serial

        self.port = port
        # a network serial bridge (socket://) may still be starting: retry for a few seconds
        deadline = time.monotonic() + (connect_timeout if port.startswith(("socket://", "rfc2217://"))
                                       else 0)
        while True:
            try:
                # pyserial's RFC 2217 client has no write timeout (its writes go to a TCP
                # socket; every reply wait is still bounded by our own timeouts)
                self.ser = serial.serial_for_url(
                    port, baudrate=baud, timeout=0.1,
                    write_timeout=None if port.startswith("rfc2217://") else 10)
                break
            except (serial.SerialException, ValueError) as e:
                if time.monotonic() >= deadline:
                    raise DeviceError(f"cannot open serial port {port}: {e}") from None
                time.sleep(0.05)

    def send(self, data: bytes) -> None:
        import serial

        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as e:
            raise TransportClosed(f"{self.port}: write failed ({e})") from None

    def recv(self, n: int, timeout: float) -> bytes:
        import serial

        try:
            self.ser.timeout = max(timeout, 1e-3)
            data = self.ser.read(1)
            if data:
                waiting = self.ser.in_waiting
                if waiting:
                    data += self.ser.read(min(n - 1, waiting))
            return data
        except (serial.SerialException, OSError) as e:
            raise TransportClosed(f"{self.port}: read failed ({e})") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):   # closing a dead port must not raise
            self.ser.close()


class MemoryTransport:
    """In-memory transport for unit tests: `device(bytes) -> bytes` answers every send.

    `inject(b)` queues bytes as if the device had sent them (garbage, stale frames);
    `close()` or `hang_up()` makes later calls raise TransportClosed.
    """

    def __init__(self, device: Callable[[bytes], bytes] | None = None):
        self.device = device
        self.rx = bytearray()
        self.sent = bytearray()
        self.closed = False

    def inject(self, data: bytes) -> None:
        self.rx += data

    def send(self, data: bytes) -> None:
        if self.closed:
            raise TransportClosed("memory transport closed")
        self.sent += data
        if self.device is not None:
            self.rx += self.device(bytes(data))

    def recv(self, n: int, timeout: float) -> bytes:
        if self.closed:
            raise TransportClosed("memory transport closed")
        if not self.rx:
            time.sleep(min(timeout, 0.01))   # nothing will arrive: behave like a timeout
            return b""
        data = bytes(self.rx[:n])
        del self.rx[:n]
        return data

    def hang_up(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True
