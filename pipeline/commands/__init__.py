"""CLI subcommands of tokumei, registered on the main app by pipeline/cli.py."""
