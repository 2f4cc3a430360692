"""The package version, importable from any layer (edgeforge/__init__ is the API facade)."""
__version__ = "0.1.0"
