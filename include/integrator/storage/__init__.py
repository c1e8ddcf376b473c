"""Archive storage backends behind one write-once interface."""

from include.integrator.storage.base import ObjectMissing, Storage, StorageError, StoredObject, object_key

__all__ = ["ObjectMissing", "Storage", "StorageError", "StoredObject", "object_key"]
