"""devices: twins owned through their registration, ownership history, telemetry series, models

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import rapport.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
PEOPLE = sa.text("type NOT IN ('device.reported', 'device.telemetry')")


def upgrade() -> None:
    op.create_table(
        "device_models",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("thresholds", JSON, nullable=False),
        sa.Column("silent_after_seconds", sa.Integer(), nullable=True),
        sa.Column("updated_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_device_models")),
    )
    op.create_table(
        "device_readings",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("serial", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("readings", JSON, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_device_readings")),
    )
    with op.batch_alter_table("device_readings", schema=None) as batch_op:
        batch_op.create_index("ix_device_readings_serial_time", ["serial", "occurred_at"], unique=False)
    op.create_table(
        "device_registrations",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("serial", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", rapport.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_device_registrations")),
    )
    with op.batch_alter_table("device_registrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_registrations_serial"), ["serial"], unique=False)
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_event_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("last_event_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("silence_alerted", sa.String(length=200), nullable=True))
        batch_op.drop_index(batch_op.f("ix_devices_profile_id"))
        batch_op.create_index("ix_devices_model_seen", ["model", "last_seen_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_owner_event_id"), ["owner_event_id"], unique=False)
        batch_op.drop_column("profile_id")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_profile_people",
            ["profile_id", "occurred_at", "seq"],
            unique=False,
            postgresql_where=PEOPLE,
            sqlite_where=PEOPLE,
        )
    _backfill()


def _backfill() -> None:
    """Ownership history, telemetry series and owners of the devices already stored, from their events."""
    if op.get_bind().dialect.name == "postgresql":
        model, kind, readings = "data->>'model'", "data->>'kind'", "data->'readings'"
    else:
        model, kind, readings = (
            "json_extract(data, '$.model')",
            "json_extract(data, '$.kind')",
            ("json_extract(data, '$.readings')"),
        )
    op.execute(
        "INSERT INTO device_registrations (event_id, serial, occurred_at, model, kind) "
        f"SELECT event_id, subject, occurred_at, {model}, {kind} FROM events "
        "WHERE type = 'device.registered' AND subject IS NOT NULL"
    )
    op.execute(
        "INSERT INTO device_readings (event_id, serial, occurred_at, readings) "
        f"SELECT event_id, subject, occurred_at, {readings} FROM events "
        "WHERE type = 'device.telemetry' AND subject IS NOT NULL"
    )
    op.execute(
        "UPDATE devices SET owner_event_id = (SELECT r.event_id FROM device_registrations r "
        "WHERE r.serial = devices.serial ORDER BY r.occurred_at DESC, r.event_id DESC LIMIT 1), "
        "last_event_id = (SELECT r.event_id FROM device_readings r "
        "WHERE r.serial = devices.serial ORDER BY r.occurred_at DESC, r.event_id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_profile_people", postgresql_where=PEOPLE, sqlite_where=PEOPLE)
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_id", sa.String(length=40), nullable=True))
        batch_op.drop_index(batch_op.f("ix_devices_owner_event_id"))
        batch_op.drop_index("ix_devices_model_seen")
        batch_op.create_index(batch_op.f("ix_devices_profile_id"), ["profile_id"], unique=False)
        batch_op.drop_column("silence_alerted")
        batch_op.drop_column("last_event_id")
        batch_op.drop_column("owner_event_id")
    op.execute(
        "UPDATE devices SET profile_id = (SELECT e.profile_id FROM events e "
        "JOIN device_registrations r ON r.event_id = e.event_id WHERE r.serial = devices.serial "
        "ORDER BY r.occurred_at DESC, r.event_id DESC LIMIT 1)"
    )
    with op.batch_alter_table("device_registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_registrations_serial"))
    op.drop_table("device_registrations")
    with op.batch_alter_table("device_readings", schema=None) as batch_op:
        batch_op.drop_index("ix_device_readings_serial_time")
    op.drop_table("device_readings")
    op.drop_table("device_models")
