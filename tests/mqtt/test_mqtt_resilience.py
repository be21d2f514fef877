"""Nothing lost, nothing applied twice: the broker restarted and workers killed in mid-stream, with
every message sent counted against every event stored (both backends, a private broker per test)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_world import (
    ThreadWorker,
    eventually,
    publish_with_paho,
    readings,
    register,
    run_apart,
    stored_numbers,
    telemetry_count,
    unique,
)

from rapport.db import Database
from rapport.mqtt.broker import LocalBroker
from rapport.mqtt.client import Broker, open_connection
from rapport.mqtt.publisher import Published, publish_all
from rapport.settings import Settings

pytestmark = pytest.mark.slow

MESSAGES = 10_000
#: the interruption comes once this many are stored: well inside the stream
MID_STREAM = 1_000


class Publishing:
    """A device fleet publishing ``messages`` at QoS 1 from a thread, riding out broker restarts."""

    def __init__(
        self,
        url: str,
        messages: list[tuple[str, bytes]],
        *,
        resend: bool = False,
        per_second: float | None = None,
    ) -> None:
        self.report: Published | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.report = asyncio.run(
                    publish_all(
                        Broker.from_url(url),
                        messages,
                        client_id=unique("fleet"),
                        window=500,
                        resend_unsubscribed=0.2 if resend else None,
                        per_second=per_second,
                    )
                )
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def finished(self) -> Published:
        self.thread.join(300)
        assert not self.thread.is_alive(), "the publisher did not finish"
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report


def everything_stored_once(db: Database, serials: list[str], report: Published) -> None:
    assert report.acknowledged == MESSAGES
    assert report.unsubscribed == [] and report.refused == []
    eventually(lambda: telemetry_count(db) >= MESSAGES, what=f"{MESSAGES:,} readings stored")
    counts = stored_numbers(db, serials)
    lost = sorted(set(range(MESSAGES)) - set(counts))
    assert lost == [] and len(counts) == MESSAGES
    assert [n for n, times in counts.items() if times > 1] == [], "stored twice"


@pytest.mark.parametrize(
    "shared",
    [
        pytest.param(False, id="plain-subscription"),
        # Mosquitto restores a persistent session's plain subscriptions after a restart, but not its
        # shared ones: until the workers subscribe again it answers "no matching subscribers" and drops
        # the message, so a publisher must send such messages again (as the README asks of devices).
        pytest.param(True, id="shared-subscription"),
    ],
)
def test_a_broker_restart_in_mid_stream_loses_nothing_and_doubles_nothing(
    db: Database, settings: Settings, own_broker: LocalBroker, shared: bool
) -> None:
    settings = settings.model_copy(update={"mqtt_url": own_broker.url})
    serials = [unique("wm") for _ in range(10)]
    register(db, settings, serials)

    with ThreadWorker(db, settings, batch_size=500, shared=shared):
        # paced, so that the publisher too is in mid-stream when the broker goes
        publishing = Publishing(own_broker.url, readings(serials, MESSAGES), resend=shared, per_second=2_000)
        eventually(lambda: telemetry_count(db) >= MID_STREAM, what="the stream under way")
        assert telemetry_count(db) < MESSAGES
        own_broker.restart()
        report = publishing.finished()
        everything_stored_once(db, serials, report)

    assert report.reconnects >= 1


# -- the worker process killed --------------------------------------------------------------------------


class Command:
    """``rapport mqtt`` in a process of its own, as an operator runs it."""

    def __init__(self, settings: Settings, folder: Path, *args: str) -> None:
        self.env = {
            **os.environ,
            "RAPPORT_DATABASE_URL": settings.database_url,
            "RAPPORT_MQTT_URL": settings.mqtt_url,
            "RAPPORT_SECRET_KEY": settings.secret_key.get_secret_value(),
        }
        self.args = [str(Path(sys.executable).parent / "rapport"), "mqtt", *args]
        self.folder = folder
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / f"rapport-mqtt-{self.starts}.log"

    def start(self, *, workers: int = 1) -> None:
        self.starts += 1
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.args, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        eventually(
            lambda: self.log.read_text().count("connected to") >= workers,
            what=f"rapport mqtt subscribed (log: {self.log})",
            timeout=60,
        )

    def kill(self, pid: int | None = None) -> None:
        assert self.process is not None
        os.kill(pid or self.process.pid, signal.SIGKILL)
        if pid is None:
            self.process.wait(30)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def workers(self) -> list[int]:
        """The pids of the worker processes the command started."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [
            int(pid)
            for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]  # fmt: skip


@pytest.fixture
def command(db: Database, settings: Settings, own_broker: LocalBroker, tmp_path: Path) -> Iterator[Command]:
    settings = settings.model_copy(update={"mqtt_url": own_broker.url})
    running = Command(settings, tmp_path, "--client-id", unique("w"), "--batch-size", "500")
    yield running
    if running.process is not None and running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def test_a_worker_killed_in_mid_stream_loses_nothing_and_doubles_nothing_once_started_again(
    db: Database, settings: Settings, own_broker: LocalBroker, command: Command
) -> None:
    serials = [unique("fr") for _ in range(10)]
    register(db, settings, serials)
    command.start()

    publishing = Publishing(own_broker.url, readings(serials, MESSAGES))
    eventually(lambda: telemetry_count(db) >= MID_STREAM, what="the stream under way")
    command.kill()
    assert telemetry_count(db) < MESSAGES
    command.start()
    report = publishing.finished()
    everything_stored_once(db, serials, report)

    assert command.stop() == 0


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the worker processes through /proc")
def test_a_worker_process_that_dies_is_started_again_by_the_command(
    db: Database, settings: Settings, own_broker: LocalBroker, command: Command
) -> None:
    serials = [unique("dw") for _ in range(10)]
    register(db, settings, serials)
    command.args += ["--workers", "2"]
    command.start(workers=2)
    first, second = command.workers()

    publishing = Publishing(own_broker.url, readings(serials, MESSAGES))
    eventually(lambda: telemetry_count(db) >= MID_STREAM, what="the stream under way")
    command.kill(first)
    report = publishing.finished()
    everything_stored_once(db, serials, report)

    assert second in command.workers() and first not in command.workers()
    assert len(command.workers()) == 2
    assert command.stop() == 0
    assert command.process is not None and command.process.poll() == 0


# -- fewer workers than before --------------------------------------------------------------------------


def _session_present(url: str, client_id: str) -> bool:
    """Whether the broker holds a session for ``client_id`` (one made by asking is ended again)."""

    async def ask() -> bool:
        connection = await open_connection(Broker.from_url(url), client_id=client_id, session_expiry=60)
        present = connection.session_present
        await connection.close(end_session=True)
        return present

    return run_apart(ask)


def test_fewer_workers_than_before_lose_nothing_to_the_sessions_of_those_gone(
    db: Database, settings: Settings, own_broker: LocalBroker, command: Command
) -> None:
    serials = [unique("sh") for _ in range(10)]
    register(db, settings, serials)
    prefix = command.args[command.args.index("--client-id") + 1]
    messages = readings(serials, 1_000)
    one_worker = list(command.args)
    command.args += ["--workers", "2"]
    command.start(workers=2)
    assert command.stop() == 0

    # half published while no worker runs (the broker deals them to both sessions in turn), half after
    # the command is back with one worker
    publish_with_paho(own_broker.url, messages[:500])
    command.args = one_worker
    command.start()
    publish_with_paho(own_broker.url, messages[500:])

    eventually(lambda: len(stored_numbers(db, serials)) == 1_000, what="1,000 readings stored", timeout=60)
    assert stored_numbers(db, serials) == {n: 1 for n in range(1_000)}
    eventually(lambda: "retired" in command.log.read_text(), what=f"the session retired (log: {command.log})")
    assert not _session_present(own_broker.url, f"{prefix}-2")
    assert command.stop() == 0
