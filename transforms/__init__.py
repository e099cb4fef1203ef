"""tokumei transforms."""
