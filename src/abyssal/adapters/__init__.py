"""Adapters: one storage or transport technology per module."""
