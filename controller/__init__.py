"""Railyard: a self-hosted, level-triggered GitOps deployment controller."""

__version__ = "0.1.0"
