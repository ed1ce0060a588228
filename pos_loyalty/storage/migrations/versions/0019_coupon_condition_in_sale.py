"""The condition a coupon was earned under lives in the sale it was earned in (each coupon to
issue's `earned_by`: the basket positions measured and the threshold, or the trigger goods), so
the coupon row no longer keeps a copy of the threshold (`earned_at_subtotal`, from 0018).
It also joins the two lines that branched from 0005 (0010 head-office bundles, 0018), so the
schema has one head again.

Revision ID: 0019
Revises: 0010, 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = ("0010", "0018")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.drop_column("earned_at_subtotal")


def downgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.add_column(sa.Column("earned_at_subtotal", sa.BigInteger(), nullable=True))
