"""Brokers for the MQTT tests: the Mosquitto on 127.0.0.1:1883 when one runs, else one the tests start;
and a private one per test for the tests that restart it. ``scripts/test-services`` installs Mosquitto
where it is missing. Under CI=true a missing broker fails the run instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from mqtt_world import LOCKED_LOGIN

from rapport.db import Database
from rapport.mqtt.broker import BrokerUnavailable, LocalBroker, accepts_connections, mosquitto_binary
from rapport.settings import Settings

SHARED_BROKER = ("127.0.0.1", 1883)


def _unavailable(why: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; with CI=true the MQTT tests must run (scripts/test-services installs mosquitto)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A running broker: the one on 127.0.0.1:1883, or a private one for the session."""
    if accepts_connections(*SHARED_BROKER):
        yield f"mqtt://{SHARED_BROKER[0]}:{SHARED_BROKER[1]}"
        return
    try:
        broker = LocalBroker()
    except BrokerUnavailable as exc:
        _unavailable(str(exc))
    with broker:
        yield broker.url


@pytest.fixture
def mosquitto() -> str:
    """The Mosquitto binary, for tests that start brokers of their own."""
    binary = mosquitto_binary()
    if binary is None:
        _unavailable("mosquitto is not installed")
    return binary


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    """A private broker for one test, which the test may stop and start again."""
    try:
        broker = LocalBroker()
    except BrokerUnavailable as exc:
        _unavailable(str(exc))
    with broker:
        yield broker


@pytest.fixture
def mqtt_settings(settings: Settings, broker_url: str, db: Database) -> Settings:
    """The test database's settings, reading from the shared broker."""
    return settings.model_copy(update={"mqtt_url": broker_url})


@pytest.fixture
def locked_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A private broker that lets in the user and password of ``LOCKED_LOGIN`` and no one anonymous."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        _unavailable("mosquitto_passwd is not installed (it comes with Debian's mosquitto)")
    passwords = tmp_path / "passwords"
    subprocess.run([tool, "-b", "-c", str(passwords), *LOCKED_LOGIN], check=True, capture_output=True)
    try:
        broker = LocalBroker(extra_config=f"allow_anonymous false\npassword_file {passwords}\n")
    except BrokerUnavailable as exc:
        _unavailable(str(exc))
    with broker:
        yield broker


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[LocalBroker, Path]]:
    """A private broker that speaks only TLS, with a certificate for 127.0.0.1 signed by an authority of
    the test's own, and that authority's certificate (PEM) for the clients to trust."""
    tool = shutil.which("openssl")
    if tool is None:
        _unavailable("openssl is not installed (scripts/test-services installs it)")

    def openssl(*args: str) -> None:
        subprocess.run([tool, *args], check=True, capture_output=True, cwd=tmp_path)

    (tmp_path / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=Rapport tests CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")  # fmt: skip
    try:
        broker = LocalBroker(
            extra_config=f"certfile {tmp_path / 'server.pem'}\nkeyfile {tmp_path / 'server.key'}\n"
        )
    except BrokerUnavailable as exc:
        _unavailable(str(exc))
    with broker:
        yield broker, tmp_path / "ca.pem"
