"""The tamper-evident audit trail, as concepts (docs/provenance.md).

Every change to a store appends an entry (a gapless sequence number, a SHA-256 hash chain) in
the same transaction as the change; signed checkpoints (Ed25519 over an RFC 6962 Merkle root)
pin the log, in the store and off the database's host. Modules: ``keys`` (Ed25519 keys),
``merkle`` (tree hashing, inclusion and consistency proofs), ``entries`` (the canonical entry
and payload encodings), ``checkpoints`` (signed tree heads, off-box copies), ``verify`` (the
auditor's checks), ``api`` (proofs for a run). The SQL lives in ``store/sql/audit*.py``.
Nothing here is imported by ``import mltrail``; ``cryptography`` loads only when a key is used.
"""
