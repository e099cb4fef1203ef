"""tokumei anonymize."""
