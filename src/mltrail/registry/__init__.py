"""The model registry: registered models, versions, aliases, model cards, history, policies.

Concepts only (records, the :class:`~mltrail.registry.base.ModelRegistry` protocol, cards,
policies); the SQL implementation lives in :mod:`mltrail.store.sql.registry`, the HTTP client
in :mod:`mltrail.store.http_registry`, the SDK face in :mod:`mltrail.sdk.models`.
"""
