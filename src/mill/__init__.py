"""Mill: a self-hosted machine-learning workspace driven by Azure ML CLI v2 YAML."""

__version__ = "0.1.0"
__all__ = ["__version__"]
