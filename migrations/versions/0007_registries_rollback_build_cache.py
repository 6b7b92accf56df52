"""registries, push, build settings and cache, rollback points and restore

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'registries',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('username', sa.String(length=200), nullable=True),
        sa.Column('password_enc', sa.Text(), nullable=True),
        sa.Column('image_prefix', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_registries')),
        sa.UniqueConstraint('name', name=op.f('uq_registries_name')),
    )
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registry_id', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column(
            'rollback_active', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('rollback_registry_id', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column(
            'restore_on_failure', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column(
            'clean_cache', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column(
            'clean_cache_next', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('docker_build_stage', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('build_secrets_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column(
            'build_secret_keys', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('build_memory_limit', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('build_cpu_limit', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('rollback_pinned_id', sa.String(length=24), nullable=True))
        batch_op.create_foreign_key(
            op.f('fk_applications_registry_id_registries'), 'registries', ['registry_id'], ['id'])
        batch_op.create_foreign_key(
            op.f('fk_applications_rollback_registry_id_registries'), 'registries',
            ['rollback_registry_id'], ['id'])
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clean_cache', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('registry_id', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('rollback_of_id', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('rollback_image', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('rollback_registry_ref', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('rollback_registry_id', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('release_spec_enc', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        for column in ('release_spec_enc', 'rollback_registry_id', 'rollback_registry_ref',
                       'rollback_image', 'rollback_of_id', 'registry_id', 'clean_cache'):
            batch_op.drop_column(column)
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f('fk_applications_rollback_registry_id_registries'), type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_applications_registry_id_registries'), type_='foreignkey')
        for column in ('rollback_pinned_id', 'build_cpu_limit', 'build_memory_limit',
                       'build_secret_keys', 'build_secrets_enc', 'docker_build_stage',
                       'clean_cache_next', 'clean_cache', 'restore_on_failure',
                       'rollback_registry_id', 'rollback_active', 'registry_id'):
            batch_op.drop_column(column)
    op.drop_table('registries')
