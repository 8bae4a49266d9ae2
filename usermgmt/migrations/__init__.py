"""Alembic migrations, shipped inside the package so `usermgmt db upgrade` works anywhere."""
