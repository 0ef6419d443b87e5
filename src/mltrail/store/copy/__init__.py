"""Moving a store: ``mltrail store copy`` (every run, file, artifact, lineage edge and model
from one store into another, verified) through the stores' public protocols, so any pair of
backends works (SQLite, PostgreSQL, a server). See :func:`copy_store`."""

from mltrail.store.copy.copier import CopyReport, copy_store
from mltrail.store.copy.endpoint import Endpoint, open_endpoint

__all__ = ["CopyReport", "Endpoint", "copy_store", "open_endpoint"]
