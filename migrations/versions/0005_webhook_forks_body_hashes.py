"""webhooks: fork pull requests, replayed bodies

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preview_allow_forks', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('preview_inherit_env', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_sha256', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_webhook_deliveries_application_id'), ['application_id', 'body_sha256'])


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_webhook_deliveries_application_id'), type_='unique')
        batch_op.drop_column('body_sha256')

    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('preview_inherit_env')
        batch_op.drop_column('preview_allow_forks')
