"""The `rankrag` command line: one module per command group (the app is `rankrag.cli.app:app`)."""
