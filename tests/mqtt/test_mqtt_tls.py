"""A broker that speaks TLS (``mqtts://``) with a certificate a private authority signed: the worker
trusts the authority named by ``RAPPORT_MQTT_CA_FILE``; without it, the refusal names the certificate."""

from __future__ import annotations

from pathlib import Path

import pytest
from mqtt_world import ThreadWorker, eventually, readings, register, run_apart, stored_numbers, unique

from rapport.db import Database
from rapport.mqtt.broker import LocalBroker
from rapport.mqtt.client import Broker, MqttError, open_connection
from rapport.mqtt.publisher import publish_all
from rapport.settings import Settings


def test_the_worker_reads_a_tls_broker_whose_authority_it_is_told_to_trust(
    db: Database, settings: Settings, tls_broker: tuple[LocalBroker, Path]
) -> None:
    broker, authority = tls_broker
    tls_settings = settings.model_copy(
        update={"mqtt_url": f"mqtts://127.0.0.1:{broker.port}", "mqtt_ca_file": authority}
    )
    serials = [unique("wm")]
    register(db, tls_settings, serials)

    with ThreadWorker(db, tls_settings, group=unique("g")):
        sent = run_apart(
            lambda: publish_all(Broker.configured(tls_settings), readings(serials, 5), client_id=unique("d"))
        )
        eventually(lambda: len(stored_numbers(db, serials)) == 5, what="5 readings stored")

    assert sent.acknowledged == 5
    assert stored_numbers(db, serials) == {n: 1 for n in range(5)}


def test_without_the_authority_the_broker_s_certificate_is_named_as_the_problem(
    tls_broker: tuple[LocalBroker, Path], tmp_path: Path
) -> None:
    broker, _ = tls_broker
    not_pem = tmp_path / "not-a-certificate.pem"
    not_pem.write_text("hello")

    async def attempt(ca_file: Path | None) -> None:
        target = Broker.from_url(f"mqtts://127.0.0.1:{broker.port}", ca_file=ca_file)
        connection = await open_connection(target, client_id=unique("tls"), clean_start=True)
        await connection.close()

    unverified = r"cannot reach mqtts://127\.0\.0\.1:\d+: .*CERTIFICATE_VERIFY_FAILED"
    with pytest.raises(MqttError, match=unverified):
        run_apart(lambda: attempt(None))
    untrusted = r"cannot trust the certificate authorities in .*not-a-certificate\.pem"
    with pytest.raises(MqttError, match=untrusted):
        run_apart(lambda: attempt(not_pem))
