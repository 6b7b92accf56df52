"""notifications (apprise URLs, encrypted) and their delivery outbox

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notifications',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('url_enc', sa.Text(), nullable=False),
        sa.Column('service', sa.String(length=100), nullable=False),
        sa.Column('scheme', sa.String(length=32), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('application_ids', sa.JSON(), nullable=False),
        sa.Column('last_sent_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
        sa.UniqueConstraint('name', name=op.f('uq_notifications_name')),
    )
    op.create_table(
        'notification_deliveries',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('notification_id', sa.String(length=24), nullable=False),
        sa.Column('event', sa.String(length=32), nullable=False),
        sa.Column('application_id', sa.String(length=24), nullable=True),
        sa.Column('deployment_id', sa.String(length=24), nullable=True),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['notification_id'], ['notifications.id'],
            name=op.f('fk_notification_deliveries_notification_id_notifications'),
            ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
    )
    op.create_index(op.f('ix_notification_deliveries_notification_id'),
                    'notification_deliveries', ['notification_id'], unique=False)
    op.create_index(op.f('ix_notification_deliveries_status'),
                    'notification_deliveries', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_notification_deliveries_status'), table_name='notification_deliveries')
    op.drop_index(op.f('ix_notification_deliveries_notification_id'),
                  table_name='notification_deliveries')
    op.drop_table('notification_deliveries')
    op.drop_table('notifications')
