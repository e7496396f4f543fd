"""Persistence: SQLModel models, async engine and sessions, repositories, migrations."""
