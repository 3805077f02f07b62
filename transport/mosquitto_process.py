"""Run a private Mosquitto broker as a child process, for tests, the demo and the benches.

The broker runs in the foreground (never ``-d``) and the config written by
:mod:`transport.broker_config` sets no ``pid_file``: this object holds the process itself. Its stderr
goes to a log file next to the config, never to a pipe that nobody drains (a full pipe would stall
the broker mid-test).

While it runs, its PID is noted in ``mosquitto.pid`` beside the config, so that another command
(``fieldpos provision``, ``terminal retire``, ``broker-config``) can make it re-read the password file
and ACL it just rewrote: :func:`reload_running_broker` sends SIGHUP, which Mosquitto answers by
reloading both without dropping a client. A note left by a killed broker is harmless: the reload
checks that the PID still runs Mosquitto with this very config before signalling it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from protocol.errors import FieldposError

# Where Debian puts it; /usr/sbin is often not on a normal user's PATH.
DEBIAN_MOSQUITTO_PATH = "/usr/sbin/mosquitto"
LOG_FILE_NAME = "mosquitto.log"
PID_FILE_NAME = "mosquitto.pid"
# How often start() probes the port: Mosquitto is usually listening within 10-30 ms.
_START_POLL_INTERVAL_S = 0.01
_PORT_PROBE_TIMEOUT_S = 0.2
# A clean shutdown writes the persistence database; a big one takes a moment.
DEFAULT_STOP_TIMEOUT_S = 10.0
_LOG_TAIL_CHARS = 2000


class BrokerError(FieldposError):
    """Our private Mosquitto broker could not be found, started or stopped."""

    code = "BROKER"


class BrokerNotInstalledError(BrokerError):
    """The Mosquitto broker is not installed."""

    code = "BROKER_NOT_INSTALLED"


class BrokerStartError(BrokerError):
    """Mosquitto exited or did not listen in time; the message carries its log."""

    code = "BROKER_START_FAILED"


def find_mosquitto(*, install_if_missing: bool = True) -> str:
    """Path of the ``mosquitto`` executable; as root, install Debian's package if it is missing."""
    found = _locate_mosquitto()
    if found is None and install_if_missing and os.geteuid() == 0 and shutil.which("apt-get"):
        _install_debian_mosquitto()
        found = _locate_mosquitto()
    if found is not None:
        return found
    raise BrokerNotInstalledError(
        "Mosquitto (2.0 or later) is not installed. Install it with "
        "'sudo apt-get install mosquitto' (Debian, Ubuntu, Raspberry Pi OS) or your system's "
        "package manager, then run this again."
    )


def _locate_mosquitto() -> str | None:
    if on_path := shutil.which("mosquitto"):
        return on_path
    return DEBIAN_MOSQUITTO_PATH if os.access(DEBIAN_MOSQUITTO_PATH, os.X_OK) else None


def _install_debian_mosquitto() -> None:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "mosquitto"]):
        result = subprocess.run(command, env=environment, capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerNotInstalledError(
                f"Installing Mosquitto failed at '{' '.join(command)}': {result.stderr[-_LOG_TAIL_CHARS:]}"
            )


def reload_running_broker(config_dir: Path) -> int | None:
    """SIGHUP the Mosquitto a :class:`MosquittoProcess` started from ``config_dir/mosquitto.conf``, so
    it re-reads its password file and ACL (new terminals log in, retired ones are refused); return
    its PID, or None when no such broker runs (a broker started another way is not ours to signal)."""
    config_dir = Path(config_dir).resolve()
    try:
        pid = int((config_dir / PID_FILE_NAME).read_text().strip())
    except (OSError, ValueError):
        return None
    if not _runs_config(pid, config_dir / "mosquitto.conf"):
        return None  # a stale note: that PID ended, or now belongs to another program
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None
    return pid


def _runs_config(pid: int, config_path: Path) -> bool:
    """Whether process ``pid`` is a Mosquitto started with ``-c config_path`` (Linux /proc)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (len(arguments) >= 3 and Path(os.fsdecode(arguments[0])).name == "mosquitto"
            and os.fsencode(str(config_path)) in arguments)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS may hand it to someone else before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def is_port_accepting(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_PORT_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


class MosquittoProcess:
    """One Mosquitto broker started from ``config_path`` and listening on ``host:port``.

    ``port`` is the listener start() waits for (the config's plain listener). Use as a context
    manager, or call start() and stop(); kill() is the crash that chaos tests want.
    """

    def __init__(
        self, config_path: Path, port: int, *, host: str = "127.0.0.1", executable: str | None = None
    ):
        self.config_path = Path(config_path).resolve()
        self.host = host
        self.port = port
        self.log_path = self.config_path.parent / LOG_FILE_NAME
        self.pid_path = self.config_path.parent / PID_FILE_NAME
        self._executable = executable
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.is_running else None

    def start(self, timeout_s: float = 10.0) -> None:
        """Spawn the broker and return once its port accepts TCP connections."""
        if self.is_running:
            raise BrokerStartError(f"the broker on port {self.port} is already running (pid {self.pid})")
        if is_port_accepting(self.host, self.port):
            # Otherwise our probe below would succeed against the other listener while our broker
            # dies on "Address already in use".
            raise BrokerStartError(f"port {self.host}:{self.port} is already taken by another process")
        executable = self._executable or find_mosquitto()
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"--- fieldpos: starting {executable} -c {self.config_path}\n".encode())
            log_file.flush()
            self._process = subprocess.Popen(
                [executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                cwd=self.config_path.parent,
            )
        atexit.register(self._kill_at_exit)
        self._wait_until_listening(timeout_s)
        self.pid_path.write_text(f"{self._process.pid}\n")

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password file and ACL, keeping its clients connected."""
        if not self.is_running:
            raise BrokerError(f"the broker on port {self.port} is not running: nothing to reload")
        self._process.send_signal(signal.SIGHUP)

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """SIGTERM and wait: Mosquitto saves its persistence database on the way out."""
        if self._process is None:
            return
        try:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                    raise BrokerError(
                        f"Mosquitto ignored SIGTERM for {timeout_s} s and was killed; see {self.log_path}"
                    )
        finally:
            self._forget_process()

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would: nothing is saved since the last autosave."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._forget_process()

    def restart(self, timeout_s: float = 10.0) -> None:
        self.stop()
        self.start(timeout_s)

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> MosquittoProcess:
        if not self.is_running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_listening(self, timeout_s: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._forget_process()
                raise BrokerStartError(f"Mosquitto exited with status {code} at start:\n{self._log_tail()}")
            if is_port_accepting(self.host, self.port):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerStartError(
                    f"Mosquitto did not listen on {self.host}:{self.port} within {timeout_s} s:\n"
                    f"{self._log_tail()}"
                )
            time.sleep(_START_POLL_INTERVAL_S)

    def _log_tail(self) -> str:
        return self.read_log()[-_LOG_TAIL_CHARS:]

    def _forget_process(self) -> None:
        atexit.unregister(self._kill_at_exit)
        if self._process is not None and self._read_pid_note() == self._process.pid:
            self.pid_path.unlink(missing_ok=True)
        self._process = None

    def _read_pid_note(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _kill_at_exit(self) -> None:
        # A test run that ends without stop() (an error, Ctrl-C) must not leave brokers behind.
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
