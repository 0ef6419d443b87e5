"""Attestations: DSSE-signed in-toto statements with SLSA provenance, OpenSSF model signatures, and the documentation pack of a model version."""
