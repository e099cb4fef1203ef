"""tokumei: see docs/architecture.md for the layout."""
