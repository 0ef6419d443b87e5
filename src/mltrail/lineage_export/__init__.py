"""OpenLineage run events: runs, their jobs and their datasets for Marquez, DataHub & co.

- :mod:`~mltrail.lineage_export.naming`: run UUIDs, job and dataset names.
- :mod:`~mltrail.lineage_export.facts`: what an event says, from the store or a live run.
- :mod:`~mltrail.lineage_export.events`: the events, built with ``openlineage-python``.
- :mod:`~mltrail.lineage_export.transport`: ``MLTRAIL_OPENLINEAGE_URL`` -> a client.
- :mod:`~mltrail.lineage_export.live`: what runs send as they start and end (off by default).
- :mod:`~mltrail.lineage_export.export`: past runs (``mltrail openlineage export``).

Only ``live`` is imported by the SDK; it stays light until an event is sent.
"""
