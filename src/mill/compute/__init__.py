"""Runners: launch job bootstraps on a compute target, watch them, stop them."""

from mill.compute.base import ProcessHandle, Runner
from mill.compute.distribution import process_plan
from mill.compute.local import LocalRunner

__all__ = ["LocalRunner", "ProcessHandle", "Runner", "process_plan"]
