"""A broker that asks for a login: the worker logs in with the user and password of ``RAPPORT_MQTT_URL``
(URL-encoded, so a password may hold ``:`` and ``@``), and a broker's refusal is named, not swallowed."""

from __future__ import annotations

from urllib.parse import quote

import orjson
import pytest
from mqtt_world import (
    LOCKED_LOGIN,
    ThreadWorker,
    apart,
    eventually,
    publish_with_paho,
    readings,
    register,
    run_apart,
    stored_numbers,
    unique,
)
from typer.testing import CliRunner

from rapport.cli import app
from rapport.db import Database
from rapport.mqtt.broker import LocalBroker
from rapport.mqtt.client import Broker, MqttError, open_connection
from rapport.settings import Settings

USER, PASSWORD = LOCKED_LOGIN


def _refusal(url: str) -> str:
    async def attempt() -> None:
        connection = await open_connection(Broker.from_url(url), client_id=unique("login"), clean_start=True)
        await connection.close()

    with pytest.raises(MqttError) as refused:
        run_apart(attempt)
    return str(refused.value)


def test_the_worker_logs_in_with_the_url_s_user_and_password(
    db: Database, settings: Settings, locked_broker: LocalBroker
) -> None:
    url = f"mqtt://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{locked_broker.port}"
    mqtt_settings = settings.model_copy(update={"mqtt_url": url})
    serials = [unique("wm")]
    register(db, mqtt_settings, serials)

    with ThreadWorker(db, mqtt_settings, group=unique("g")):
        publish_with_paho(url, readings(serials, 5))
        eventually(lambda: len(stored_numbers(db, serials)) == 5, what="5 readings stored")

    assert stored_numbers(db, serials) == {n: 1 for n in range(5)}


def test_a_wrong_password_or_none_is_refused_with_the_broker_s_reason(locked_broker: LocalBroker) -> None:
    at = f"127.0.0.1:{locked_broker.port}"

    wrong = _refusal(f"mqtt://{USER}:nope@{at}")
    anonymous = _refusal(f"mqtt://{at}")

    for said in (wrong, anonymous):
        assert said.startswith(f"mqtt://{at} refused the connection: "), said
    assert "nope" not in wrong  # the password is never repeated


def test_the_demo_logs_in_too_and_never_prints_the_password(
    cli: CliRunner, db: Database, locked_broker: LocalBroker
) -> None:
    url = f"mqtt://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{locked_broker.port}"

    result = apart(
        lambda: cli.invoke(
            app, ["demo", "--customers", "15", "--months", "1", "--no-serve"], env={"RAPPORT_MQTT_URL": url}
        )
    )

    assert result.exit_code == 0, result.output
    assert f"report through the MQTT broker at mqtt://127.0.0.1:{locked_broker.port}\n" in result.output
    summary = orjson.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])
    assert summary["events_sent_by_sensors_and_devices"] > 0 and summary["rejected"] == 0
    assert PASSWORD not in result.output and quote(PASSWORD, safe="") not in result.output
