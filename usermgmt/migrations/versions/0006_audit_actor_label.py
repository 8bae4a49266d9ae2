"""audit events by actor label: operators (cli:<user>, tui:<user>) have no actor id

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 21:50:00.000000
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_actor_label_seq", ["actor_label", "seq"])


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_actor_label_seq")
