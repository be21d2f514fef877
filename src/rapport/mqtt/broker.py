"""A private Mosquitto on a free loopback port, for benchmarks and tests: configured as production
should be (see the README), restartable, and stopped when its ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

#: the settings production needs too: nothing queued for a worker is ever dropped, and the queue survives
#: a restart of the broker
CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
user {user}
persistence true
persistence_location {folder}/
autosave_interval 30
max_queued_messages 0
max_inflight_messages 0
set_tcp_nodelay true
log_dest file {folder}/mosquitto.log
"""


class BrokerUnavailable(RuntimeError):
    """No Mosquitto binary, or it would not start."""


def mosquitto_binary() -> str | None:
    """The ``mosquitto`` executable, on PATH or where Debian installs it."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts_connections(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class LocalBroker:
    """``with LocalBroker() as broker: … broker.url …``; ``broker.restart()`` keeps its persisted state."""

    def __init__(self, *, extra_config: str = "") -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerUnavailable("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.binary = binary
        self.folder = Path(tempfile.mkdtemp(prefix="rapport-mosquitto-"))
        self.port = free_port()
        self.config = self.folder / "mosquitto.conf"
        user = pwd.getpwuid(os.geteuid()).pw_name
        self.config.write_text(CONFIG.format(port=self.port, user=user, folder=self.folder) + extra_config)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not accepts_connections("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BrokerUnavailable(f"mosquitto did not start on port {self.port}:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it as an operator would (SIGTERM: it saves its state), killing it after ``timeout``."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        log = self.folder / "mosquitto.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def __enter__(self) -> LocalBroker:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
        self.remove()

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)
