"""Storage behind the core's ports: room history in SQLite (one thread owns the database)."""
