"""``rapport bench mqtt`` as an operator runs it: a private broker, workers and a publisher of its own."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rapport.cli import app
from rapport.db import Database

pytestmark = pytest.mark.slow


def test_the_mqtt_benchmark_counts_every_message_and_ends_with_its_figures_as_json(
    cli: CliRunner, db: Database, mosquitto: str
) -> None:
    result = cli.invoke(app, ["bench", "mqtt", "--messages", "600", "--devices", "12", "--batch-size", "100"])

    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["backend"] == db.backend
    assert figures["messages"] == figures["stored"] == figures["acknowledged_by_broker"] == 600
    assert figures["lost"] == 0 and figures["doubled"] == 0
    assert figures["messages_per_s"] > 0
