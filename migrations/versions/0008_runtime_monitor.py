"""runtime monitor: application health, incidents, engine watches

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'health', sa.String(length=16), nullable=False, server_default='UNKNOWN'))
        batch_op.add_column(sa.Column('health_at', sa.DateTime(), nullable=True))
    op.create_table(
        'incidents',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('application_id', sa.String(length=24), nullable=False),
        sa.Column('deployment_id', sa.String(length=24), nullable=True),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('opened_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('recovered_at', sa.DateTime(), nullable=True),
        sa.Column('recovered_sent_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['application_id'], ['applications.id'],
            name=op.f('fk_incidents_application_id_applications'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    )
    op.create_index(op.f('ix_incidents_application_id'), 'incidents', ['application_id'])
    op.create_table(
        'engine_watches',
        sa.Column('engine', sa.String(length=255), nullable=False),
        sa.Column('holder', sa.String(length=200), nullable=True),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('last_event_ns', sa.BigInteger(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('engine', name=op.f('pk_engine_watches')),
    )


def downgrade() -> None:
    op.drop_table('engine_watches')
    op.drop_index(op.f('ix_incidents_application_id'), table_name='incidents')
    op.drop_table('incidents')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('health_at')
        batch_op.drop_column('health')
