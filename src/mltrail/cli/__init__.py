"""The ``mltrail`` command line (Typer + Rich); the entry point is :func:`mltrail.cli.main.main`."""
