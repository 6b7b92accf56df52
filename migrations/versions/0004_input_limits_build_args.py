"""input limits: build args encrypted, registry credentials bound to a host

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Build argument values move to ``build_args_enc`` (encrypted like env) and their names to
``build_arg_keys``. The migration has no access to the server's secret key, so it only
copies the names; the server moves every row's clear values into the encrypted column
(and empties ``build_args``) when it starts, and again whenever it writes the build args
or runs a deployment (``app.db.repos.applications.seal_all_build_args``/``seal_build_args``).

Registry credentials get the registry host they were given for (``registry_host``),
filled here from each row's ``docker_image``; a pull sends them to that host only.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_apps = sa.table(
    'applications',
    sa.column('id', sa.String),
    sa.column('build_args', sa.JSON),
    sa.column('build_arg_keys', sa.JSON),
    sa.column('docker_image', sa.String),
    sa.column('registry_username', sa.String),
    sa.column('registry_password_enc', sa.Text),
    sa.column('registry_host', sa.String),
)


def _registry_host(image: str) -> str:
    """Docker's rule (docker.auth.resolve_repository_name), frozen for this migration."""
    name = image.split('@', 1)[0]
    first, sep, _ = name.partition('/')
    if not sep or ('.' not in first and ':' not in first and first != 'localhost'):
        return 'docker.io'
    return 'docker.io' if first == 'index.docker.io' else first


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('build_args_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('build_arg_keys', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('registry_host', sa.String(length=255), nullable=True))

    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            _apps.c.id, _apps.c.build_args, _apps.c.docker_image,
            _apps.c.registry_username, _apps.c.registry_password_enc,
        )
    ).all()
    for app_id, build_args, image, user, password in rows:
        values: dict[str, object] = {}
        if build_args:
            values['build_arg_keys'] = sorted(build_args)
        if image and (user or password):
            values['registry_host'] = _registry_host(image)
        if values:
            conn.execute(_apps.update().where(_apps.c.id == app_id).values(**values))


def downgrade() -> None:
    # Encrypted build args cannot be decrypted here (no key): rows already sealed by the
    # application lose their build args on downgrade; rows never used keep them in clear.
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('registry_host')
        batch_op.drop_column('build_arg_keys')
        batch_op.drop_column('build_args_enc')
