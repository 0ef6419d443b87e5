"""The content-addressed object layer: digests, trees, object databases, cache, transfers.

One module per concern (see docs/objects-api.md for the contract):
:mod:`~mltrail.objects.digest`, :mod:`~mltrail.objects.paths`, :mod:`~mltrail.objects.tree`,
:mod:`~mltrail.objects.index`, :mod:`~mltrail.objects.odb`, :mod:`~mltrail.objects.cache`,
:mod:`~mltrail.objects.build`, :mod:`~mltrail.objects.checkout`,
:mod:`~mltrail.objects.transfer`, :mod:`~mltrail.objects.gc`, :mod:`~mltrail.objects.fsck`
(verify a whole store), :mod:`~mltrail.objects.lock` (the cache lock gc and writers share).

objects/ knows nothing of runs, git or the tracking store. Nothing heavy is imported here:
blake3 loads on the first hash, fsspec only for a non-local URL.
"""

from __future__ import annotations
