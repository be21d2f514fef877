"""visit baskets: a visit keeps what it paid in each currency

A visit kept the value of its till orders in the currency of the first alone: an order paid in another
currency at the same till (a shop taking euros and dollars) was left out of the store's average basket.
A visit now keeps its baskets by currency. Visits stored before keep none (their one basket counts as
before) until ``rapport rebuild`` builds them again.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 23:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.db.base import JSONDoc

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.add_column(sa.Column("baskets", JSONDoc, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        batch.drop_column("baskets")
