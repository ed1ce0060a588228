"""A coupon a threshold earned keeps the threshold it was earned under (`earned_at_subtotal`),
so a partial refund decides whether the customer still deserves it from the sale's own rules,
not from whatever rules are active on the day of the refund. NULL for coupons issued before
(a refund then looks the rule up as it always did) and for personal offers.

Revision ID: 0018
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.add_column(sa.Column("earned_at_subtotal", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.drop_column("earned_at_subtotal")
