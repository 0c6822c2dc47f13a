"""effect: partial indexes for the inbox-sweeper (effects not done; news mails by key prefix)

Every minute the inbox-sweeper looks for the to-dos whose news mail failed. Over a couple of
years' effects (a million rows) it read all of them each time: the few not done are found by
`ix_effect_not_done`, the news mails of a to-do by `ix_effect_news_mail` (a key prefix,
compared byte by byte on PostgreSQL too: `text_pattern_ops`).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

NOT_DONE = "status <> 'done'"
NEWS_MAIL = "kind = 'todo_mail' AND business_key LIKE '%#%'"


def upgrade() -> None:
    op.create_index('ix_effect_not_done', 'effect', ['kind'], unique=False,
                    sqlite_where=sa.text(NOT_DONE), postgresql_where=sa.text(NOT_DONE))
    op.create_index('ix_effect_news_mail', 'effect', ['business_key'], unique=False,
                    postgresql_ops={'business_key': 'text_pattern_ops'},
                    sqlite_where=sa.text(NEWS_MAIL), postgresql_where=sa.text(NEWS_MAIL))


def downgrade() -> None:
    op.drop_index('ix_effect_news_mail', table_name='effect')
    op.drop_index('ix_effect_not_done', table_name='effect')
