"""The HTTP client the CLI and SDK use to talk to the control plane."""

from mill.client.http import MillClient

__all__ = ["MillClient"]
