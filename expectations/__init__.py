"""tokumei expectations."""
