"""Linux boards over SSH (paramiko): `ssh://user@host[:port]`, and `edgeforge deploy`.

Everything but the transport is `targets.agent.AgentTarget`: deploy into
`~/.edgeforge/models/<sha16>/`, run `agent.py session` there, infer/benchmark over its JSON
lines. This module adds the SSH `Shell`:
  * host keys are checked against known_hosts (default ~/.ssh/known_hosts); an unknown host
    is REJECTED with the key's fingerprint unless accept_new_host_key=True, which records it
    there (never paramiko's silent AutoAddPolicy); a changed key is always an error;
  * key-file or ssh-agent auth; passwords and passphrases are never logged or printed;
  * every remote command is built with shlex.quote; files move over SFTP, where paths need
    no quoting at all. A board whose sshd has no SFTP subsystem (dropbear/BusyBox, OpenWrt,
    many Yocto images) gets files over exec channels instead -- `cat > FILE` fed on stdin,
    then a sha256 of what landed compared with what was sent -- as Ansible falls back from
    sftp to piping; if that fails too, one error names the missing subsystem.
Options come as keywords (CLI) or in the URI query: ?python=/usr/bin/python3&dir=/data/ef
&native=1&threads=4&timeout=120.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shlex
import stat
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import paramiko

from edgeforge.errors import DeviceError, EdgeforgeError
from edgeforge.manifest import sha256_file
from edgeforge.targets.agent import AgentTarget
from edgeforge.targets.shell import Pipe, Shell

CONNECT_TIMEOUT = 15.0
MAX_OUTPUT = 64 << 20     # what one agent command may print (JSON lines): more is a fault
# paramiko logs transport failures ("Exception (client): ...") to stderr through logging's
# last-resort handler; the one DeviceError below already says what went wrong
logging.getLogger("paramiko").addHandler(logging.NullHandler())
log = logging.getLogger(__name__)     # the CLI shows edgeforge.* records on stderr


def redact(uri: str) -> str:
    """The URI with any password replaced, for messages and logs."""
    p = urlparse(uri)
    if p.password is None:
        return uri
    netloc = f"{p.username}:***@{p.hostname}" + (f":{p.port}" if p.port else "")
    return p._replace(netloc=netloc).geturl()


def host_key_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


class HostKeyError(DeviceError):
    """Unknown or changed host key: we did not talk to the device."""


class _KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Reject an unknown host, or (accept_new) trust it and append it to known_hosts."""

    def __init__(self, known_hosts: Path, accept_new: bool):
        self.known_hosts, self.accept_new = known_hosts, accept_new

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        fp = key.fingerprint
        if not self.accept_new:
            raise HostKeyError(
                f"unknown host key for {hostname} ({key.get_name()} {fp}) -- not in "
                f"{self.known_hosts}. Check the fingerprint on the device (ssh-keygen -lf "
                "/etc/ssh/ssh_host_*_key.pub), then rerun with --accept-new-host-key to "
                "record it")
        self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning(f"edgeforge: recorded host key of {hostname} ({key.get_name()} {fp}) in "
                    f"{self.known_hosts}")


class _SshPipe(Pipe):
    def __init__(self, chan: paramiko.Channel, where: str):
        super().__init__(where)
        self.chan = chan

    def _recv(self, timeout: float) -> bytes:
        self.chan.settimeout(timeout)
        try:
            return self.chan.recv(65536)
        except TimeoutError:
            raise TimeoutError from None

    def write(self, data: bytes) -> None:
        try:
            self.chan.settimeout(30.0)
            self.chan.sendall(data)
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise DeviceError(f"{self.where}: agent connection lost: {e}") from None

    def stderr_tail(self) -> str:
        out = b""
        while self.chan.recv_stderr_ready():
            out += self.chan.recv_stderr(65536)
        return out.decode(errors="replace").strip()[-800:]

    def close(self) -> None:
        self.chan.close()


class SshShell(Shell):
    """One paramiko connection: commands over exec channels, files over SFTP."""

    def __init__(self, host: str, port: int = 22, user: str | None = None, *,
                 identity: str | None = None, known_hosts: str | None = None,
                 accept_new_host_key: bool = False, password: str | None = None,
                 passphrase: str | None = None, timeout: float = CONNECT_TIMEOUT):
        self.host, self.port = host, port
        self.user = user or os.environ.get("USER") or "root"
        self.where = f"{self.user}@{host}:{port}"
        self.known_hosts = Path(known_hosts or "~/.ssh/known_hosts").expanduser()
        self.client = paramiko.SSHClient()
        if self.known_hosts.exists():
            try:
                self.client.load_host_keys(str(self.known_hosts))
            except (OSError, paramiko.SSHException) as e:
                raise EdgeforgeError(f"{self.known_hosts}: unreadable known_hosts: {e}") from None
        self.client.set_missing_host_key_policy(
            _KnownHostsPolicy(self.known_hosts, accept_new_host_key))
        if identity and not Path(identity).expanduser().exists():
            raise EdgeforgeError(f"identity file {identity} does not exist")
        try:
            self.client.connect(
                host, port=port, username=self.user, password=password, passphrase=passphrase,
                key_filename=str(Path(identity).expanduser()) if identity else None,
                look_for_keys=identity is None, allow_agent=True, timeout=timeout,
                banner_timeout=timeout, auth_timeout=timeout)
        except HostKeyError:
            self.client.close()
            raise
        except paramiko.BadHostKeyException as e:
            self.client.close()
            raise HostKeyError(
                f"HOST KEY CHANGED for {host_key_name(host, port)}: known_hosts has "
                f"{e.expected_key.fingerprint}, the device offers {e.key.fingerprint}. "
                f"Someone may be intercepting; if the device was reinstalled, remove its line "
                f"from {self.known_hosts} (ssh-keygen -R)") from None
        except paramiko.PasswordRequiredException:
            self.client.close()
            raise DeviceError(f"{self.where}: key {identity or '(default)'} is encrypted: add it "
                              "to ssh-agent (ssh-add) or pass its passphrase") from None
        except paramiko.AuthenticationException:
            self.client.close()
            how = f"key {identity}" if identity else "ssh-agent and ~/.ssh keys"
            raise DeviceError(f"{self.where}: authentication failed (tried {how})") from None
        except paramiko.ssh_exception.NoValidConnectionsError:
            self.client.close()
            raise DeviceError(f"{self.where}: cannot connect: connection refused (is sshd "
                              "running, is the port right?)") from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            t = self.client.get_transport()
            self.client.close()
            if t is not None and not t.remote_version:     # paramiko then says "No existing session"
                raise DeviceError(f"{self.where}: cannot connect: no SSH server answered within "
                                  f"{timeout:g} s (is the port right?)") from None
            raise DeviceError(f"{self.where}: cannot connect: {e or type(e).__name__}") from None
        transport = self.client.get_transport()
        assert transport is not None
        transport.set_keepalive(15)
        self._sftp: paramiko.SFTPClient | None = None
        self.sftp_missing: str | None = None   # why SFTP is unavailable, once we know

    @staticmethod
    def cmdline(argv: list[str]) -> str:
        return " ".join(shlex.quote(a) for a in argv)

    @property
    def sftp(self) -> paramiko.SFTPClient | None:
        """The SFTP session, or None on a board without the subsystem (then: exec fallback)."""
        if self._sftp is None and self.sftp_missing is None:
            try:
                self._sftp = self.client.open_sftp()
                self._sftp.get_channel().settimeout(60.0)
            except (paramiko.SSHException, EOFError) as e:
                # paramiko says only "Channel closed." when sshd refuses the subsystem
                self.sftp_missing = str(e) or type(e).__name__
        return self._sftp

    def run(self, argv: list[str], timeout: float) -> tuple[int, bytes, bytes]:
        try:
            chan = self.client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
            chan.exec_command(self.cmdline(argv))
            chan.shutdown_write()
            # both streams together (stderr left unread would stall the channel's window),
            # until EOF, within `timeout` in all and MAX_OUTPUT bytes
            deadline = time.monotonic() + timeout
            chan.settimeout(0.2)
            out, err = bytearray(), bytearray()
            eof = False
            while not eof or chan.recv_stderr_ready():
                if time.monotonic() > deadline:
                    raise TimeoutError
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if not eof:
                    try:
                        chunk = chan.recv(65536)
                        eof = not chunk
                        out += chunk
                    except TimeoutError:
                        pass
                if len(out) + len(err) > MAX_OUTPUT:
                    chan.close()
                    raise DeviceError(f"{self.where}: {argv[1:3]} wrote more than "
                                      f"{MAX_OUTPUT >> 20} MiB")
            if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError
            rc = chan.recv_exit_status()
            chan.close()
        except TimeoutError:
            raise DeviceError(f"{self.where}: {argv[1:3]} timed out after {timeout:.0f} s") \
                from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise DeviceError(f"{self.where}: connection lost: {e}") from None
        return rc, bytes(out), bytes(err)

    def spawn(self, argv: list[str]) -> Pipe:
        try:
            chan = self.client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
            chan.exec_command(self.cmdline(argv))
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise DeviceError(f"{self.where}: cannot start the agent: {e}") from None
        return _SshPipe(chan, self.where)

    def _sftp_call(self, what: str, fn, *args):
        try:
            return fn(*args)
        except (OSError, EOFError, paramiko.SSHException) as e:
            if isinstance(e, FileNotFoundError) or getattr(e, "errno", None) == 2:
                raise
            raise DeviceError(f"{self.where}: {what} failed: {e}") from None

    # -- the exec-channel fallback: every argument quoted, nothing interpolated ------------
    def _exec(self, what: str, argv: list[str], stdin: bytes | Path | None = None,
              progress=None, timeout: float = 120.0) -> bytes:
        """Run argv, feeding stdin; its stdout, or the one error naming the missing SFTP."""
        try:
            chan = self.client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
            chan.settimeout(timeout)
            chan.exec_command(self.cmdline(argv))
            if stdin is not None:
                total = len(stdin) if isinstance(stdin, bytes) else stdin.stat().st_size
                src = io.BytesIO(stdin) if isinstance(stdin, bytes) else open(stdin, "rb")  # noqa: SIM115
                sent = 0
                with src:
                    for block in iter(lambda: src.read(1 << 15), b""):
                        chan.sendall(block)
                        sent += len(block)
                        if progress:
                            progress(sent, total)
            chan.shutdown_write()
            out = bytearray()
            for chunk in iter(lambda: chan.recv(65536), b""):
                out += chunk
            err = bytearray()
            for chunk in iter(lambda: chan.recv_stderr(65536), b""):
                err += chunk
            rc = chan.recv_exit_status()
            chan.close()
        except TimeoutError:
            raise DeviceError(f"{self.where}: {what} timed out after {timeout:.0f} s") from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            rc, out, err = -1, b"", str(e).encode()
        if rc != 0:
            why = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {rc}"]
            raise DeviceError(
                f"{self.where}: the SSH server offers no SFTP subsystem ({self.sftp_missing}) "
                f"and the exec-channel fallback could not {what}: {why[0][:300]} -- enable "
                "`Subsystem sftp` in sshd_config (dropbear: install its sftp-server), or give "
                "the board a POSIX shell with cat, mkdir, mv and sha256sum")
        return bytes(out)

    def home(self) -> str:
        if self.sftp is None:
            return self._exec("find the home directory", ["pwd"]).decode().strip()
        return self._sftp_call("sftp", self.sftp.normalize, ".")

    def exists(self, path: str) -> bool:
        if self.sftp is None:
            out = self._exec(f"stat {path}", ["sh", "-c", 'test -e "$1" && echo y || echo n',
                                               "sh", path])
            return out.strip() == b"y"
        try:
            self._sftp_call("stat", self.sftp.stat, path)
            return True
        except FileNotFoundError:
            return False

    def makedirs(self, path: str) -> None:
        if self.sftp is None:
            self._exec(f"mkdir {path}", ["mkdir", "-p", "--", path])
            return
        parts = path.split("/")
        for i in range(2 if path.startswith("/") else 1, len(parts) + 1):
            p = "/".join(parts[:i])
            try:
                st = self._sftp_call("stat", self.sftp.stat, p)
                if not stat.S_ISDIR(st.st_mode or 0):
                    raise DeviceError(f"{self.where}: {p} exists and is not a directory")
            except FileNotFoundError:
                try:
                    self._sftp_call(f"mkdir {p}", self.sftp.mkdir, p)
                except DeviceError:
                    # another deploy (a fleet sharing one home) may have made it meanwhile
                    st = self._sftp_call("stat", self.sftp.stat, p)
                    if not stat.S_ISDIR(st.st_mode or 0):
                        raise

    def put(self, data, remote, progress=None) -> None:
        if self.sftp is None:
            self._exec_put(data, remote, progress)
        elif isinstance(data, bytes):
            self._sftp_call(f"upload {remote}", self.sftp.putfo, io.BytesIO(data), remote,
                            len(data), progress)
        else:
            self._sftp_call(f"upload {remote}", self.sftp.put, str(data), remote, progress)

    def _exec_put(self, data: bytes | Path, remote: str, progress=None) -> None:
        """`cat > remote` over an exec channel, then the file's sha256 must equal ours."""
        if isinstance(data, bytes):
            want = hashlib.sha256(data).hexdigest()
        else:
            data = Path(data)
            want = sha256_file(data)
        out = self._exec(f"upload {remote}", ["sh", "-c", _CAT_AND_HASH, "sh", remote], data,
                         progress, timeout=600.0)
        got = out.split()[:1]
        if got != [want.encode()]:
            with contextlib.suppress(DeviceError):
                self.remove(remote)
            raise DeviceError(f"{self.where}: upload of {remote} over exec arrived corrupted "
                              f"(sha256 {got[0].decode()[:16] if got else 'missing'}..., sent "
                              f"{want[:16]}...)")

    def rename(self, src: str, dst: str) -> None:
        if self.sftp is None:
            self._exec(f"rename {dst}", ["mv", "-f", "--", src, dst])   # rename(2): atomic
            return
        self._sftp_call(f"rename {dst}", self.sftp.posix_rename, src, dst)

    def remove(self, path: str) -> None:
        if self.sftp is None:
            self._exec(f"remove {path}", ["rm", "-f", "--", path])
            return
        try:
            self._sftp_call(f"remove {path}", self.sftp.remove, path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()


# $1 = destination; stdin = the bytes. sha256sum is coreutils and BusyBox; python3 for the rest
_CAT_AND_HASH = ('cat > "$1" && { sha256sum "$1" 2>/dev/null || python3 -c "import hashlib, sys; '
                 'print(hashlib.sha256(open(sys.argv[1], \'rb\').read()).hexdigest())" "$1"; }')


class SshTarget(AgentTarget):
    """A Linux board reached over SSH, running the agent with whatever runtime it has."""

    kind = "ssh"

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> SshTarget:
        p = urlparse(uri)
        if p.scheme != "ssh" or not p.hostname:
            raise EdgeforgeError(f"bad SSH target {redact(uri)!r}: use ssh://user@host[:port]")
        try:
            port = p.port or 22
        except ValueError:
            raise EdgeforgeError(f"bad port in {redact(uri)!r}") from None
        opts = cls.common_options(options, parse_qs(p.query))
        shell = SshShell(
            p.hostname, port, unquote(p.username) if p.username else None,
            identity=options.get("identity"), known_hosts=options.get("known_hosts"),
            accept_new_host_key=bool(options.get("accept_new_host_key")),
            password=unquote(p.password) if p.password else options.get("password"),
            passphrase=options.get("passphrase"),
            timeout=float(options.get("connect_timeout") or CONNECT_TIMEOUT))
        clean = p._replace(netloc=f"{shell.user}@{p.hostname}:{port}", query="").geturl()
        return cls(shell, uri=clean, **opts)
