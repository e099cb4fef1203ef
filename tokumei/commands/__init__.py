"""CLI subcommands of tokumei, registered on the main app by tokumei/cli.py."""
