"""``python -m mltrail``: the command-line interface."""

from mltrail.cli.main import main

main()
