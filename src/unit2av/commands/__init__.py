"""Subcommands of the ``unit2av`` console script (one module each)."""
