"""The `magvit` command line."""
