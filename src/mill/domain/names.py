"""Job names generated the way Azure ML does: ``adjective_noun_<10 random chars>``."""

from __future__ import annotations

import re
import secrets
import string

__all__ = ["NAME_PATTERN", "generate_job_name", "is_valid_name"]

_ADJECTIVES = (
    "amber", "bold", "brave", "bright", "busy", "calm", "clever", "cosmic", "crisp", "dapper",
    "eager", "epic", "fancy", "frosty", "gentle", "good", "happy", "honest", "icy", "jolly",
    "keen", "kind", "lemon", "lively", "loyal", "lucid", "mellow", "modest", "neat", "nifty",
    "nimble", "olive", "plucky", "polite", "proud", "quick", "quiet", "rapid", "serene", "sharp",
    "shiny", "silly", "sincere", "sleepy", "smart", "stoic", "sunny", "sweet", "tidy", "upbeat",
    "vivid", "warm", "wise", "witty", "zen",
)
_NOUNS = (
    "apple", "basket", "beach", "berry", "bird", "boat", "brush", "cabbage", "candle", "carrot",
    "cat", "cheetah", "cloud", "coconut", "comet", "crow", "engine", "fig", "fox", "garden",
    "ghost", "grape", "hamster", "heron", "island", "kettle", "kiwi", "lamp", "leaf", "lime",
    "mango", "map", "moon", "nail", "napkin", "night", "onion", "owl", "pear", "pencil",
    "pepper", "piano", "plum", "puppy", "quill", "river", "rocket", "rose", "sail", "seal",
    "snail", "spoon", "tail", "tomato", "tree", "tuna", "violin", "whale", "yacht", "zebra",
)
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits

# Azure ML: letters, digits, '-' and '_', starting with a letter or digit, at most 255.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")


def generate_job_name() -> str:
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(10))
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{suffix}"


def is_valid_name(name: str) -> bool:
    return bool(NAME_PATTERN.match(name))
