"""``python -m mltrail``: the command-line interface (same entry point as ``mltrail``)."""

from mltrail.cli._entry import main

main()
