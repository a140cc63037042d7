"""Builds, runs and checks learners' model containers on a real Docker engine."""

__version__ = "0.1.0"
