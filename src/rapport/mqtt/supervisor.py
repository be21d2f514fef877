"""Run workers: one in this process, or several in processes of their own that share the load through
the shared subscriptions. SIGINT and SIGTERM stop them gracefully: each finishes and acknowledges what
it has received, then disconnects; the broker keeps the rest for its session. The first worker also
retires the sessions of workers a run with more of them left (see :mod:`rapport.mqtt.retire`).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from rapport.db import connect_configured
from rapport.ingest.pipeline import Outcome
from rapport.mqtt.retire import Surplus, retire_surplus
from rapport.mqtt.worker import BatchDone, Worker, WorkerOptions
from rapport.settings import Settings

log = logging.getLogger("rapport.mqtt")
_spawn = multiprocessing.get_context("spawn")


def default_client_id() -> str:
    """The client id prefix of this machine's workers: stable across restarts, so each worker gets its
    session back, and different on another machine."""
    return f"rapport-{socket.gethostname()}"[:50]


def worker_options(base: WorkerOptions, count: int) -> list[WorkerOptions]:
    """Options for ``count`` workers: the same, each with its own fixed client id ``<prefix>-<n>``."""
    return [replace(base, client_id=f"{base.client_id}-{n}") for n in range(1, count + 1)]


def surplus(base: WorkerOptions, count: int) -> Surplus:
    """The client ids beyond ``count`` workers' that an earlier run with more workers may have left."""
    return Surplus(base.client_id, count + 1)


def configure_logging() -> None:
    """Progress and problems to stderr, one line each."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


async def _run(
    settings: Settings,
    options: WorkerOptions,
    *,
    on_batch: Callable[[BatchDone], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    retire: Surplus | None = None,
) -> Outcome:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    database = connect_configured(settings)
    try:
        worker = Worker(database, settings=settings, options=options, on_batch=on_batch, on_ready=on_ready)
        retiring = None
        if retire is not None:
            retiring = asyncio.create_task(
                retire_surplus(database, settings, options, retire, stop, on_batch=on_batch)
            )
        outcome = await worker.run(stop)
        if retiring is not None:
            outcome.add(await retiring)
        return outcome
    finally:
        database.dispose()


def _summary(client_id: str, outcome: Outcome) -> None:
    log.info(
        "%s stopped: %s stored, %s duplicates, %s quarantined",
        client_id,
        f"{outcome.accepted:,}",
        f"{outcome.duplicates:,}",
        f"{outcome.rejected_count:,}",
    )


def run_here(settings: Settings, options: WorkerOptions, *, retire: Surplus | None = None) -> Outcome:
    """One worker in this process, until SIGINT or SIGTERM."""
    outcome = asyncio.run(_run(settings, options, retire=retire))
    _summary(options.client_id, outcome)
    return outcome


def _child(
    settings: Settings,
    options: WorkerOptions,
    ready: Event | None,
    reports: Queue[tuple[str, int, int, int, int, float]] | None,
    retire: Surplus | None = None,
) -> None:
    """The body of a worker process."""
    configure_logging()

    def on_batch(done: BatchDone) -> None:
        if reports is not None:
            o = done.outcome
            reports.put(
                (
                    options.client_id,
                    done.messages,
                    o.accepted,
                    o.duplicates,
                    o.rejected_count,
                    done.committed_at,
                )
            )

    outcome = asyncio.run(
        _run(
            settings,
            options,
            on_batch=on_batch,
            on_ready=ready.set if ready is not None else None,
            retire=retire,
        )
    )
    _summary(options.client_id, outcome)


class Pool:
    """Worker processes, restarted when one dies unexpectedly, stopped together. The first also retires
    the sessions of ``retire``, if given."""

    def __init__(
        self,
        settings: Settings,
        options: list[WorkerOptions],
        *,
        reports: Queue[Any] | None = None,
        retire: Surplus | None = None,
    ) -> None:
        self.settings = settings
        self.retire = retire
        self.options = [replace(o, parent_pid=os.getpid()) for o in options]
        self.reports = reports
        self.ready = [_spawn.Event() for _ in options]
        self.processes: list[SpawnProcess | None] = [None] * len(options)
        self.restarts = 0

    def _start(self, index: int) -> None:
        process = _spawn.Process(
            target=_child,
            args=(
                self.settings,
                self.options[index],
                self.ready[index],
                self.reports,
                self.retire if index == 0 else None,
            ),
            name=self.options[index].client_id,
            daemon=False,
        )
        process.start()
        self.processes[index] = process

    def start(self) -> None:
        for index in range(len(self.options)):
            self._start(index)

    def wait_ready(self, timeout: float) -> bool:
        """Whether every worker has subscribed within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        return all(event.wait(max(0.0, deadline - time.monotonic())) for event in self.ready)

    def watch(self, stopping: Callable[[], bool], *, every: float = 0.5) -> None:
        """Restart workers that died until ``stopping()`` says so."""
        while not stopping():
            time.sleep(every)
            for index, process in enumerate(self.processes):
                if process is None or process.is_alive() or stopping():
                    continue
                if process.exitcode == 0:  # stopped on request
                    log.info("%s stopped", process.name)
                    self.processes[index] = None
                    continue
                log.warning("%s exited with status %s; starting it again", process.name, process.exitcode)
                self.restarts += 1
                self._start(index)

    def stop(self, timeout: float = 60.0) -> None:
        """Ask every worker to stop (SIGTERM), wait for them, and kill any still running after ``timeout``."""
        alive = [p for p in self.processes if p is not None and p.is_alive()]
        for process in alive:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("%s did not stop within %.0f s; killing it", process.name, timeout)
                process.kill()
                process.join()


def serve(settings: Settings, options: WorkerOptions, *, workers: int) -> None:
    """``rapport mqtt``: ``workers`` workers until SIGINT or SIGTERM."""
    configure_logging()
    if workers == 1:
        run_here(settings, worker_options(options, 1)[0], retire=surplus(options, 1))
        return
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    pool = Pool(settings, worker_options(options, workers), retire=surplus(options, workers))
    try:
        pool.start()
        pool.watch(lambda: stopping)
    finally:
        pool.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
