"""Abyssal: a self-hostable spot exchange core with a Kraken-compatible API."""

__version__ = "0.1.0"
__all__ = ["__version__"]
