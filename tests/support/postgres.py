"""Find, or start, a PostgreSQL server the test suite may create databases on.

``postgres_server_url()`` tries, in order:

1. ``RAPPORT_TEST_POSTGRES_URL`` (must connect, else ``RuntimeError``);
2. a server on 127.0.0.1:5432, user ``postgres``, database ``postgres``;
3. a throwaway cluster made with ``initdb`` in a temporary directory and started with ``pg_ctl``
   on a free port on 127.0.0.1 (stopped and removed at interpreter exit);
4. ``None`` when no server binaries can be found.

The answer is cached: one throwaway cluster per test process at most.
"""

from __future__ import annotations

import atexit
import functools
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ENV_VAR = "RAPPORT_TEST_POSTGRES_URL"
LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 3
START_TIMEOUT_S = 60


# --------------------------------------------------------------------------- public API


@functools.cache
def postgres_server_url() -> str | None:
    """A ``postgresql+psycopg://`` URL of a server the tests may create databases on, or None."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        if not _accepts_connections(configured):
            raise RuntimeError(f"{ENV_VAR}={_safe(configured)} does not accept connections")
        return configured

    if _accepts_connections(LOCAL_URL) and _may_create_databases(LOCAL_URL):
        return LOCAL_URL

    if _find_server_bin_dir() is None:
        return None
    url, _stop = _start_throwaway_cluster()
    return url


def create_database(server_url: str, name: str, *, icu_locale: str | None = None) -> str:
    """Create database ``name`` on the server (dropping any old one first), its text ordered as the
    server's default or, with ``icu_locale``, as that language orders it; return its URL."""
    drop_database(server_url, name)
    ordered = (
        sql.SQL(" LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(icu_locale))
        if icu_locale
        else sql.SQL("")
    )
    with _connect(server_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0{}").format(
                sql.Identifier(name), ordered
            )
        )
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, terminating any sessions still connected to it."""
    with _connect(server_url) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


# --------------------------------------------------------------------------- connections


def _connect_kwargs(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {_safe(url)}")
    kwargs: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
    }
    for key, value in parsed.query.items():  # e.g. ?host=/run/postgresql or ?sslmode=disable
        kwargs[key] = value if isinstance(value, str) else value[-1]
    return {key: value for key, value in kwargs.items() if value is not None}


def _connect(url: str) -> psycopg.Connection[Any]:
    kwargs = _connect_kwargs(url)
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    return psycopg.connect(autocommit=True, **kwargs)


def _accepts_connections(url: str) -> bool:
    try:
        with _connect(url) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _may_create_databases(url: str) -> bool:
    with _connect(url) as conn:
        row = conn.execute(
            "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    return bool(row and row[0])


def _safe(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return str(make_url(url))
    except Exception:
        return "<unparseable URL>"


# --------------------------------------------------------------------------- throwaway cluster


def _find_server_bin_dir() -> Path | None:
    """Directory holding both ``initdb`` and ``pg_ctl``: PATH first, then the newest Debian install."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        # Resolve symlinks (e.g. /usr/local/bin/initdb) so both tools come from the same install.
        initdb_dir, pg_ctl_dir = Path(initdb).resolve().parent, Path(pg_ctl).resolve().parent
        if initdb_dir == pg_ctl_dir:
            return initdb_dir
    candidates = []
    for initdb_path in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bin_dir = Path(initdb_path).parent
        version = bin_dir.parent.name
        if (bin_dir / "pg_ctl").exists() and re.fullmatch(r"\d+(\.\d+)?", version):
            candidates.append((tuple(int(part) for part in version.split(".")), bin_dir))
    if candidates:
        return max(candidates)[1]
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """When running as root, the account to run initdb/postgres as (they refuse to run as root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, but neither a 'postgres' nor a 'nobody' account exists")


def _command(user: pwd.struct_passwd | None, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    args = [os.fspath(arg) for arg in argv]
    if user is None:
        return args
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    if not os.path.exists(runuser):
        raise RuntimeError("running as root, but runuser(1) is not available to drop privileges")
    return [runuser, "-u", user.pw_name, "--", *args]


def _run(user: pwd.struct_passwd | None, argv: Sequence[str | os.PathLike[str]], cwd: Path) -> None:
    cmd = _command(user, argv)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    result = subprocess.run(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed with exit status {result.returncode}:\n{result.stdout}{result.stderr}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _base_temp_dir(user: pwd.struct_passwd | None) -> str | None:
    """Where to make the cluster's directory: the usual temp dir, unless the server's user can't reach it."""
    if user is None:
        return None
    base = Path(tempfile.gettempdir()).resolve()
    for directory in (base, *base.parents):
        if not directory.stat().st_mode & 0o001:  # not traversable by "other"
            return "/tmp"
    return str(base)


def _start_throwaway_cluster() -> tuple[str, Callable[[], None]]:
    """initdb + start a private cluster on a free 127.0.0.1 port; return (url, stop).

    ``stop`` is idempotent and is also registered with atexit.
    """
    bin_dir = _find_server_bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found")
    user = _unprivileged_user()

    root = Path(tempfile.mkdtemp(prefix="rapport-pg-", dir=_base_temp_dir(user)))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    data_dir, log_file = root / "data", root / "postgres.log"

    def remove_dir() -> None:
        shutil.rmtree(root, ignore_errors=True)

    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "--auth=trust", "--username=postgres"]
        _run(user, [*initdb, "-E", "UTF8", "--locale=C", "--no-sync"], cwd=root)
    except BaseException:
        remove_dir()
        raise

    port, started, last_error = 0, False, ""
    for _attempt in range(5):  # the free port may be grabbed by someone else before postgres binds it
        port = _free_port()
        options = (
            f"-h 127.0.0.1 -p {port} -k {root} -F"
            " -c full_page_writes=off -c synchronous_commit=off -c max_connections=200"
        )
        try:
            pg_ctl_start = [str(bin_dir / "pg_ctl"), "start", "-D", str(data_dir), "-l", str(log_file)]
            _run(user, [*pg_ctl_start, "-w", "-t", str(START_TIMEOUT_S), "-o", options], cwd=root)
        except RuntimeError as exc:
            last_error = f"{exc}\n{_tail(log_file)}"
            _quiet_stop(user, bin_dir, data_dir, root)
            continue
        started = True
        break
    if not started:
        remove_dir()
        raise RuntimeError(f"could not start a throwaway PostgreSQL cluster in {root}:\n{last_error}")

    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        atexit.unregister(stop)
        _quiet_stop(user, bin_dir, data_dir, root)
        remove_dir()

    atexit.register(stop)

    deadline = time.monotonic() + START_TIMEOUT_S
    while not _accepts_connections(url):
        if time.monotonic() > deadline:
            log = _tail(log_file)
            stop()
            raise RuntimeError(f"throwaway PostgreSQL cluster on port {port} never answered:\n{log}")
        time.sleep(0.1)
    return url, stop


def _quiet_stop(user: pwd.struct_passwd | None, bin_dir: Path, data_dir: Path, cwd: Path) -> None:
    if not (data_dir / "postmaster.pid").exists():
        return
    for mode in ("fast", "immediate"):  # immediate is the last resort, so no postmaster outlives the tests
        try:
            _run(user, [bin_dir / "pg_ctl", "stop", "-D", data_dir, "-m", mode, "-w"], cwd=cwd)
        except RuntimeError:
            continue
        return


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
