"""The content-addressed object layer: digests, trees, object databases, cache, transfers.

One module per concern (see docs/objects-api.md for the contract):
:mod:`~mltrail.objects.digest`, :mod:`~mltrail.objects.paths`, :mod:`~mltrail.objects.tree`,
:mod:`~mltrail.objects.index`; the store seam :mod:`~mltrail.objects.base` (the
``ObjectStore`` protocol and its capabilities), opened by URL through
:mod:`~mltrail.objects.registry`, with the backends :mod:`~mltrail.objects.local`,
:mod:`~mltrail.objects.fsspec_store` and :mod:`~mltrail.objects.http`, which share the leaf
modules :mod:`~mltrail.objects.layout` and :mod:`~mltrail.objects.verify`;
:mod:`~mltrail.objects.cache`, :mod:`~mltrail.objects.build`,
:mod:`~mltrail.objects.checkout`, :mod:`~mltrail.objects.transfer`,
:mod:`~mltrail.objects.gc`, :mod:`~mltrail.objects.fsck` (verify a whole store),
:mod:`~mltrail.objects.lock` (the cache lock gc and writers share).

objects/ knows nothing of runs, git or the tracking store. Nothing heavy is imported here:
blake3 loads on the first hash, fsspec only for a non-local URL.
"""

from __future__ import annotations
