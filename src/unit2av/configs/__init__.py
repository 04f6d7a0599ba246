"""Bundled config files."""
