"""Dramatiq broker and actors. Nothing here connects at import time."""
