"""Attestations of models and runs, offline-verifiable.

- :mod:`~mltrail.attest.target`: what is attested (a model version or a run) and its files.
- :mod:`~mltrail.attest.provenance`: the in-toto Statement with a SLSA v1 provenance predicate.
- :mod:`~mltrail.attest.dsse`: the DSSE envelope, signed with the local Ed25519 key.
- :mod:`~mltrail.attest.api`: ``attest`` and ``verify``.
- :mod:`~mltrail.attest.openssf`: the OpenSSF model-signing format (``model-signing``).
- :mod:`~mltrail.attest.docs_pack`: the technical documentation pack of a model version.
"""
