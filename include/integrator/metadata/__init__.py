"""Archive metadata: SQLAlchemy models, engine/schema management, repository."""
