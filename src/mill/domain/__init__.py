"""Entities and state machines. No I/O, no imports from outer layers."""
