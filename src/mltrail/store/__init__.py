"""Tracking stores: the protocol, URI resolution and the backends."""

from mltrail.store.base import MetricSeries, RunPage, TrackingStore
from mltrail.store.registry import StoreLocation, open_store, resolve_location

__all__ = [
    "MetricSeries",
    "RunPage",
    "StoreLocation",
    "TrackingStore",
    "open_store",
    "resolve_location",
]
