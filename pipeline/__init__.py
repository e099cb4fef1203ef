"""tokumei pipeline."""
