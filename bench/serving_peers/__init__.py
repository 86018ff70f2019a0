"""Bare single-process ASGI peers for bench/serving.py (raw ASGI, no framework)."""
