"""Process-tree helpers over Linux's /proc.

A job is a tree: the bootstrap, the shells it starts (each in its own session) and
whatever those start. Stopping a job must reach all of it, including after the control
plane restarted and no longer is the parent; and a pid alone is not an identity, since
pids are reused, so a process is named by its pid and its start time.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ProcStat",
    "descendants",
    "has_proc",
    "kill_tree",
    "parse_stat",
    "process_start_ticks",
    "read_stat",
    "signal_processes",
]


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` we use."""

    state: str
    ppid: int
    pgrp: int
    start_ticks: int


def has_proc() -> bool:
    return os.path.isdir("/proc/self")


def parse_stat(data: bytes) -> ProcStat:
    """Parse ``/proc/<pid>/stat``. The command name (field 2) is in parentheses and may
    itself hold spaces and parentheses, so fields are counted from the last ')'."""
    rest = data[data.rindex(b")") + 2 :].split()
    # rest[0] is field 3 (state); field N is rest[N - 3]; start time is field 22.
    return ProcStat(
        state=rest[0].decode(), ppid=int(rest[1]), pgrp=int(rest[2]), start_ticks=int(rest[19])
    )


def read_stat(pid: int) -> ProcStat | None:
    """None when the process does not exist (or /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return parse_stat(f.read())
    except (OSError, ValueError, IndexError):
        return None


def process_start_ticks(pid: int) -> int | None:
    stat = read_stat(pid)
    return None if stat is None else stat.start_ticks


def _table() -> dict[int, ProcStat]:
    table: dict[int, ProcStat] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    return table


def descendants(pid: int) -> dict[int, ProcStat]:
    """Every living descendant of ``pid`` (not ``pid`` itself), found by parent pid."""
    table = _table()
    children: dict[int, list[int]] = {}
    for child, stat in table.items():
        children.setdefault(stat.ppid, []).append(child)
    found: dict[int, ProcStat] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and table[child].state not in ("Z", "X"):
                found[child] = table[child]
                todo.append(child)
    return found


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to ``pid``, its descendants and their process groups; returns the pids
    signalled. The tree is collected before any signal, as orphans lose their parent link."""
    tree = descendants(pid)
    root = read_stat(pid)
    targets = {pid: root, **tree} if root is not None else dict(tree)
    return signal_processes(targets, sig)


def signal_processes(targets: Mapping[int, ProcStat | None], sig: int) -> list[int]:
    """Signal each process still the one recorded (same start time) and each of their
    process groups, except our own group and init's."""
    ours = {os.getpid(), os.getpgrp(), 0, 1}
    signalled: list[int] = []
    groups: set[int] = set()
    for pid, recorded in targets.items():
        if pid in ours:
            continue
        now = read_stat(pid)
        if recorded is not None:
            if now is not None and now.start_ticks != recorded.start_ticks:
                continue  # the pid was reused by another process since we looked
            groups.add(recorded.pgrp)
        if now is None and has_proc():
            continue
        try:
            os.kill(pid, sig)
            signalled.append(pid)
        except OSError:
            pass
    for pgrp in groups - ours:
        try:
            os.killpg(pgrp, sig)
        except OSError:
            pass
    return signalled
