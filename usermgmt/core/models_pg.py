"""The PostgreSQL-only parts of the models: options and indexes SQLite has no use for.

Declaring a ``postgresql_*`` option makes SQLAlchemy import its whole PostgreSQL
dialect (about 30 ms here), which a CLI command on SQLite should not pay for.
Importing this module adds them to the tables of usermgmt.core.models;
usermgmt.core.db imports it for every PostgreSQL database and the migrations'
environment imports it always, so wherever PostgreSQL DDL is compiled or
compared the metadata is the whole schema (the autogenerate test proves it).
"""

from __future__ import annotations

from sqlalchemy import Index, text

from usermgmt.core.models import User, UserSearch

users = User.__table__

# Live users, newest first (migration 0004): SQLite's WHERE is in models.
next(i for i in users.indexes if i.name == "ix_users_live_created_at_id").dialect_options[
    "postgresql"
]["where"] = text("deleted_at IS NULL")

# Live users by name (migration 0014): SQLite's WHERE is in models.
next(i for i in users.indexes if i.name == "ix_users_live_name_id").dialect_options["postgresql"][
    "where"
] = text("deleted_at IS NULL")

# Newest login first, never-logged-in last, live users (migration 0007).
Index(
    "ix_users_live_last_login_at_desc",
    users.c.last_login_at.desc().nulls_last(),
    users.c.id.desc(),
    postgresql_where=text("deleted_at IS NULL"),
).ddl_if(dialect="postgresql")

Index(
    "ix_users_search_text_trgm",
    users.c.search_text,
    postgresql_using="gin",
    postgresql_ops={"search_text": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")

Index(
    "ix_user_search_search_text_trgm",
    UserSearch.__table__.c.search_text,
    postgresql_using="gin",
    postgresql_ops={"search_text": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
