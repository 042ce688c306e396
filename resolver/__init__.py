"""A caching recursive DNS resolver: a pure iterator and cache behind a thin trio front end."""

__version__ = "0.1.0"
