"""Runs as streams of events: the spool file format, batches, the writer thread, recovery."""
