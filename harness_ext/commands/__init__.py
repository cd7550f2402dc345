"""One module per `harness-ext` subcommand (see harness_ext/cli.py for the interface)."""
