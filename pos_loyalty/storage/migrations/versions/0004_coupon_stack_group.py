"""Coupons carry their own stack group (`reward.coupon.stack_group`, a personal rule's
`coupon_stack_group`): "coupon" for every coupon issued before, as the engine assumed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.add_column(
            sa.Column("stack_group", sa.String(100), nullable=True, server_default="coupon")
        )


def downgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.drop_column("stack_group")
