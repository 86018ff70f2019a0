"""The job bootstrap: carries out one job's launch plan inside the job's environment.

A runner starts it as ``python -S <abs>/bootstrap.py <run_dir>/launch.json`` (``python -m
mill.runtime.bootstrap <launch.json>`` works too). It is one file of standard library code
that runs on any Python >= 3.8, because it must start in whatever environment the job
asked for, and a runner on another node can copy it over as is. Start-up is kept short:
modules only some jobs need (``shutil``, ``urllib``, ``queue``) are imported when used.
It decides nothing the plan does not state; the control plane made every choice.

launch.json, version 1 (written by the control plane, mode 0600 because of the token)::

    version               1
    job_id, job_name      for the logs
    callback              null (no HTTP at all) or {base_url, path, token, server_file}:
                          events are POSTed to base_url + path with "Authorization: Bearer
                          <token>"; on connection errors base_url is re-read from the "url"
                          key of the JSON server_file (the control plane may have restarted)
    run_dir               where status.json and result.json are written
    working_dir           the user command's cwd; code is staged into it
    code                  null or {blobs_dir, files: [{path, sha256, mode}]}; each file is
                          copied (never linked) from <blobs_dir>/<sha256[:2]>/<sha256>;
                          absolute paths and paths with ".." are refused
    inputs                [{name, action: none|copy|download_url, source, target}]
    outputs               [{name, type: uri_folder|uri_file, mode: rw_mount|upload,
                            local_path, destination}]; upload outputs are copied from
                          local_path to destination after the command ends
    artifacts_dir         user_logs/, system_logs/runtime.txt, outputs/ and logs/ go here
    command, shell        each process runs [shell, "-c", command]; shell defaults to /bin/bash
    env                   added to the bootstrap's own environment for every process
    processes             [{rank, env}], one process per entry (default: one, rank 0)
    timeout_seconds       null or the limit on the processes' running time (from Running)
    cancel_grace_seconds  SIGTERM-to-SIGKILL delay when stopping processes (default 10)

Files written:

- ``<run_dir>/status.json``: ``{status, at, pid, history: [{status, at}]}`` on every
  transition Preparing -> Running -> Finalizing -> Completed | Failed | Canceled.
- ``<run_dir>/result.json``: ``{status, exit_code, reason, at}``, written before the
  terminal event is posted, so a control plane that finds the bootstrap dead can read it.
- ``<artifacts_dir>/user_logs/std_log.txt`` (plus ``std_log_process_<rank>.txt`` when
  there are several processes) and ``<artifacts_dir>/system_logs/runtime.txt``.

Every rank runs in its own session. When a rank fails, on cancel and on timeout, all the
process groups (and descendants that left theirs) get SIGTERM, then SIGKILL after
cancel_grace_seconds; whatever a finished command left running is stopped the same way.
Finalizing (saving ./outputs, ./logs and the upload outputs) follows every run, whatever
its outcome; a staging failure, or a cancel before the command started, skips it.

Each event ``{status, at, exit_code, reason, pid}`` is posted by one background thread,
in order, with retries, so the network never delays user code. SIGTERM or SIGINT cancels.

Exit status: 0 Completed, 1 Failed or Canceled (result.json says which), 2 no usable plan.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

TYPE_CHECKING = False  # typing costs start-up time; mypy reads the block below anyway
if TYPE_CHECKING:
    from typing import Any

PLAN_VERSION = 1
COMPLETED, FAILED, CANCELED = "Completed", "Failed", "Canceled"
FLUSH_SECONDS = 10.0  # how long the end of the job waits for undelivered events
_REASON_CHARS = 300


class StagingError(Exception):
    """Code, inputs or outputs could not be prepared; the message is the job's reason."""


def now() -> float:
    return time.time()


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    """Readers (the control plane) never see a half-written file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out)
    os.replace(tmp, path)


def describe(exc: BaseException) -> str:
    """One short line for a reason, without Python's exception class noise where possible.
    (urllib and shutil are looked up, not imported: if they are not loaded, ``exc`` is
    not theirs.)"""
    urllib_error, shutil = sys.modules.get("urllib.error"), sys.modules.get("shutil")
    if urllib_error is not None and isinstance(exc, urllib_error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason} from {exc.url}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    elif shutil is not None and isinstance(exc, shutil.Error) and exc.args[0]:
        failures = exc.args[0]  # [(source, target, why), ...]
        text = f"{failures[0][2]} ({len(failures)} file(s) failed)"
    else:
        text = str(exc) or type(exc).__name__
    return text[:_REASON_CHARS]


class RuntimeLog:
    """The bootstrap's own timestamped log, ``system_logs/runtime.txt``."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        at = now()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
        with self._lock:
            self._file.write(f"{stamp}.{int(at * 1000) % 1000:03d}Z {message}\n")


class EventSender:
    """Posts events in order from one daemon thread; retries with backoff, never blocks."""

    def __init__(self, callback: dict[str, Any], log: RuntimeLog) -> None:
        import queue

        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._base_url = str(callback["base_url"]).rstrip("/")
        self._path = str(callback["path"])
        self._token = str(callback.get("token") or "")
        self._server_file = callback.get("server_file")
        self._log = log
        self._deadline: float | None = None  # set by close(): stop retrying after it
        self._go = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mill-events", daemon=True)
        self._thread.start()

    def send(self, event: dict[str, Any]) -> None:
        self._queue.put(event)

    def go(self) -> None:
        """The user command has started: from now on our imports cost it nothing."""
        self._go.set()

    def close(self, timeout: float) -> None:
        """Deliver what is queued for at most ``timeout`` seconds, then give up."""
        self._deadline = time.monotonic() + timeout
        self._go.set()
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._log(f"gave up delivering events after {timeout:.0f} s")

    def _run(self) -> None:
        # urllib (http.client, email, ssl) takes longer to import than staging most jobs
        # takes; wait for go() unless staging is slow, so it does not hold the GIL while
        # the main thread is starting user code.
        self._go.wait(0.5)
        import urllib.request

        # The control plane is reached directly: a proxy meant for the job's downloads
        # must not carry (or see the token of) our callbacks.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            event = self._queue.get()
            if event is None:
                return
            self._deliver(opener, event)

    def _deliver(self, opener: Any, event: dict[str, Any]) -> None:
        import urllib.error
        import urllib.request

        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"}
        delay, attempt = 0.2, 0
        while True:
            attempt += 1
            url = self._base_url + self._path
            try:
                request = urllib.request.Request(url, body, headers, method="POST")
                with opener.open(request, timeout=5) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code not in (408, 429):
                    self._log(f"event {event['status']} refused: HTTP {exc.code}; dropped")
                    return
                why = f"HTTP {exc.code}"
            except Exception as exc:  # connection refused, reset, bad status line...
                why = describe(exc)
                self._reresolve()
            if attempt == 1:
                self._log(f"event {event['status']} not delivered to {url} ({why}); retrying")
            if self._deadline is not None and time.monotonic() + delay > self._deadline:
                self._log(f"event {event['status']} dropped: control plane unreachable")
                return
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _reresolve(self) -> None:
        if not self._server_file:
            return
        try:
            with open(self._server_file, encoding="utf-8") as f:
                url = str(json.load(f)["url"]).rstrip("/")
        except (OSError, ValueError, KeyError, TypeError):
            return
        if url and url != self._base_url:
            self._log(f"control plane moved: {self._base_url} -> {url}")
            self._base_url = url


class Reporter:
    """Records each status transition in status.json and sends it as an event."""

    def __init__(self, run_dir: str, sender: EventSender | None, log: RuntimeLog) -> None:
        self._path = os.path.join(run_dir, "status.json")
        self._sender = sender
        self._log = log
        self._history: list[dict[str, Any]] = []

    def transition(
        self, status: str, exit_code: int | None = None, reason: str | None = None
    ) -> None:
        at = now()
        self._history.append({"status": status, "at": at})
        data = {"status": status, "at": at, "pid": os.getpid(), "history": self._history}
        write_json_atomic(self._path, data)
        self._log(f"status {status}" + (f": {reason}" if reason else ""))
        if self._sender is not None:
            event = {"status": status, "at": at, "exit_code": exit_code, "reason": reason}
            self._sender.send({**event, "pid": os.getpid()})


# -- processes ------------------------------------------------------------------------


def scan_proc() -> dict[int, tuple[str, int, int]] | None:
    """``{pid: (state, ppid, pgrp)}`` from /proc, or None where there is no /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    table: dict[int, tuple[str, int, int]] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
            rest = data[data.rindex(b")") + 2 :].split()  # comm may hold spaces and ")"
            table[int(name)] = (rest[0].decode(), int(rest[1]), int(rest[2]))
        except (OSError, ValueError, IndexError):
            continue
    return table


class UserProcess:
    """One rank of the user command, with the thread copying its output when piped."""

    def __init__(self, rank: int, popen: subprocess.Popen[bytes], log_path: str) -> None:
        self.rank = rank
        self.popen = popen
        self.log_path = log_path
        self.tee: threading.Thread | None = None


def tee_lines(pipe: int, rank: int, own_path: str, combined: Any, lock: threading.Lock) -> None:
    """Copy a rank's output to its own log as it comes and, line by line, prefixed, to the
    combined log (whole lines, so ranks do not interleave mid-line)."""
    prefix = f"[rank {rank}] ".encode()
    pending = b""
    with open(own_path, "ab", buffering=0) as own:
        while True:
            chunk = os.read(pipe, 65536)
            if not chunk:
                break
            own.write(chunk)
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            if len(pending) > 65536:  # a huge line, or \r progress bars: write what we have
                lines.append(pending)
                pending = b""
            if lines:
                with lock:
                    combined.write(b"".join(prefix + line + b"\n" for line in lines))
    if pending:
        with lock:
            combined.write(prefix + pending + b"\n")
    os.close(pipe)


def last_line(path: str) -> str:
    """The last non-empty line of a log, trimmed, for the failure reason."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 8192))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    for line in reversed(tail.replace("\r", "\n").split("\n")):
        if line.strip():
            return line.strip()[:_REASON_CHARS]
    return ""


# -- staging --------------------------------------------------------------------------


def code_target(root: str, rel: str) -> str:
    """Where a code file goes; refuses paths that are absolute or climb out of ``root``."""
    bad = not rel or os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/")
    target = os.path.normpath(os.path.join(root, rel))
    if bad or target == root or os.path.commonpath([root, target]) != root:
        raise StagingError(f"refusing code file path {rel!r}: it must stay inside the code folder")
    return target


def stage_code(code: dict[str, Any], working_dir: str, log: RuntimeLog) -> None:
    import shutil

    root = os.path.abspath(working_dir)
    files = code.get("files") or []
    plan = [(code_target(root, str(f["path"])), f) for f in files]  # check all before copying
    blobs_dir = str(code["blobs_dir"])
    for target, entry in plan:
        digest = str(entry["sha256"])
        blob = os.path.join(blobs_dir, digest[:2], digest)
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise StagingError(f"code file {entry['path']!r}: {digest!r} is not a sha256")
        if not os.path.isfile(blob):
            raise StagingError(f"code file {entry['path']!r}: blob {digest} is missing")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target) and not os.path.isdir(target):
            os.unlink(target)  # a read-only copy left by an earlier attempt
        shutil.copyfile(blob, target)  # a copy: user code may change it, blobs are shared
        os.chmod(target, int(entry.get("mode", 0o644)) & 0o777)
    log(f"staged {len(plan)} code file(s) into {root}")


def copy_any(source: str, target: str) -> None:
    """Copy a file or merge a folder tree, creating parents."""
    import shutil

    if os.path.isdir(source):
        shutil.copytree(source, target, dirs_exist_ok=True)
    elif os.path.exists(source):
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        shutil.copy2(source, target)
    else:
        raise FileNotFoundError(2, "no such file or folder", source)


def download(url: str, target: str) -> None:
    """Stream a URL to ``target`` in chunks; the file appears only when complete."""
    import shutil
    import urllib.request

    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    part = target + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(part, target)
    finally:
        if os.path.exists(part):
            os.unlink(part)


def stage_input(item: dict[str, Any], log: RuntimeLog) -> None:
    name, action = item.get("name", "?"), item.get("action", "none")
    try:
        if action == "copy":
            copy_any(str(item["source"]), str(item["target"]))
        elif action == "download_url":
            download(str(item["source"]), str(item["target"]))
        elif action != "none":
            raise ValueError(f"unknown action {action!r}")
    except Exception as exc:
        raise StagingError(f"could not stage input {name!r}: {describe(exc)}") from exc
    if action != "none":
        log(f"input {name!r}: {action} {item['source']} -> {item['target']}")


def prepare_outputs(plan: dict[str, Any], working_dir: str) -> None:
    for folder in ("outputs", "logs"):
        os.makedirs(os.path.join(working_dir, folder), exist_ok=True)
    for out in plan.get("outputs") or []:
        path = str(out["local_path"])
        try:
            os.makedirs(
                os.path.dirname(path) if out.get("type") == "uri_file" else path, 0o777, True
            )
        except OSError as exc:
            name = out.get("name")
            raise StagingError(f"could not prepare output {name!r}: {describe(exc)}") from exc


def save_outputs(plan: dict[str, Any], log: RuntimeLog) -> list[str]:
    """Copy ./outputs, ./logs and the upload outputs; returns the problems met (best effort)."""
    problems: list[str] = []
    working_dir, artifacts_dir = str(plan["working_dir"]), str(plan["artifacts_dir"])
    for folder in ("outputs", "logs"):
        source = os.path.join(working_dir, folder)
        try:
            if os.path.isdir(source):
                copy_any(source, os.path.join(artifacts_dir, folder))
        except Exception as exc:
            problems.append(f"could not save ./{folder}: {describe(exc)}")
    for out in plan.get("outputs") or []:
        if out.get("mode") != "upload" or out["local_path"] == out["destination"]:
            continue
        source, target = str(out["local_path"]), str(out["destination"])
        try:
            if os.path.exists(source):
                copy_any(source, target)
                log(f"output {out['name']!r}: uploaded {source} -> {target}")
            elif out.get("type") != "uri_file":
                os.makedirs(target, exist_ok=True)  # an empty folder is still an output
            else:
                log(f"output {out['name']!r}: the job wrote nothing at {source}")
        except Exception as exc:
            problems.append(f"could not upload output {out['name']!r}: {describe(exc)}")
    return problems


# -- the job --------------------------------------------------------------------------


def exit_status(code: int) -> int:
    """Popen's -N (killed by signal N) as a shell reports it, 128 + N."""
    return code if code >= 0 else 128 - code


class Job:
    """Runs the plan's phases and turns whatever happens into exactly one result."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.run_dir = str(plan["run_dir"])
        self.working_dir = str(plan["working_dir"])
        self.artifacts_dir = str(plan["artifacts_dir"])
        grace = plan.get("cancel_grace_seconds")
        self.grace = 10.0 if grace is None else float(grace)
        self.canceled = False
        self._started: list[UserProcess] = []
        # Signals (SIGCHLD, SIGTERM) and the staging thread write a byte here to wake
        # the main loop at once instead of it polling.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        os.makedirs(self.run_dir, exist_ok=True)
        for folder in ("user_logs", "system_logs"):
            os.makedirs(os.path.join(self.artifacts_dir, folder), exist_ok=True)
        self.log = RuntimeLog(os.path.join(self.artifacts_dir, "system_logs", "runtime.txt"))
        callback = plan.get("callback")
        self.sender = EventSender(callback, self.log) if callback else None
        self.reporter = Reporter(self.run_dir, self.sender, self.log)

    def run(self) -> int:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_cancel)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only so exits reach the wake pipe
        name, pid, version = self.plan.get("job_name"), os.getpid(), sys.version.split()[0]
        self.log(f"job {name}: bootstrap pid {pid}, python {version} ({sys.executable})")
        try:
            status, exit_code, reason = self._phases()
        except Exception as exc:  # a bug here, or a broken disk: still leave a result
            import traceback

            self.log("runtime error:\n" + traceback.format_exc())
            status, exit_code, reason = FAILED, None, f"mill runtime error: {describe(exc)}"
        result = {"status": status, "exit_code": exit_code, "reason": reason, "at": now()}
        write_json_atomic(os.path.join(self.run_dir, "result.json"), result)
        self.reporter.transition(status, exit_code, reason)
        if self.sender is not None:
            self.sender.close(FLUSH_SECONDS)
        return 0 if status == COMPLETED else 1

    def _on_cancel(self, signum: int, frame: Any) -> None:
        self.canceled = True  # only a flag: the main loop acts on it (and logs it)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:  # the pipe is full: the loop is awake anyway
            pass

    def _wait(self, timeout: float) -> None:
        select.select([self._wake_r], [], [], max(0.0, timeout))
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _phases(self) -> tuple[str, int | None, str | None]:
        self.reporter.transition("Preparing")
        failure = self._prepare()
        if failure is not None:
            return failure
        try:
            procs = self._start()
        except OSError as exc:
            self._stop(self._started)
            return FAILED, None, f"could not start the user command: {describe(exc)}"
        self.reporter.transition("Running")
        if self.sender is not None:
            self.sender.go()
        status, exit_code, reason = self._supervise(procs)
        self.reporter.transition("Finalizing")
        problems = save_outputs(self.plan, self.log)
        if problems:
            status = FAILED if status == COMPLETED else status
            reason = "; ".join(([reason] if reason else []) + problems)
        return status, exit_code, reason

    def _prepare(self) -> tuple[str, int | None, str | None] | None:
        """Stage in a thread, so a cancel is answered even in the middle of a download."""
        errors: list[BaseException] = []
        done = threading.Event()  # not thread.is_alive(): it may still be in its last line

        def work() -> None:
            try:
                os.makedirs(self.working_dir, exist_ok=True)
                if self.plan.get("code"):
                    stage_code(self.plan["code"], self.working_dir, self.log)
                for item in self.plan.get("inputs") or []:
                    stage_input(item, self.log)
                prepare_outputs(self.plan, self.working_dir)
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()
                self._wake()

        threading.Thread(target=work, name="mill-staging", daemon=True).start()
        while not done.is_set() and not self.canceled:
            self._wait(1.0)
        if self.canceled:
            self.log("canceled while preparing; the user command was not started")
            return CANCELED, None, "canceled by user"
        if errors and isinstance(errors[0], StagingError):
            return FAILED, None, str(errors[0])
        if errors:
            raise errors[0]
        return None

    def _start(self) -> list[UserProcess]:
        """One process per plan entry, each in its own session so it can be stopped whole."""
        plan = self.plan
        argv = [str(plan.get("shell") or "/bin/bash"), "-c", str(plan["command"])]
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in (plan.get("env") or {}).items()})
        specs = plan.get("processes") or [{"rank": 0, "env": {}}]
        user_logs = os.path.join(self.artifacts_dir, "user_logs")
        combined_path = os.path.join(user_logs, "std_log.txt")
        combined, lock = None, threading.Lock()
        if len(specs) > 1:
            combined = open(combined_path, "ab", buffering=0)  # noqa: SIM115
        for spec in specs:
            rank = int(spec.get("rank", len(self._started)))
            proc_env = {**env, **{str(k): str(v) for k, v in (spec.get("env") or {}).items()}}
            if combined is None:
                # One process writes straight into the log: live, with no copying.
                with open(combined_path, "ab") as out:
                    popen = self._spawn(argv, proc_env, out.fileno())
                proc = UserProcess(rank, popen, combined_path)
            else:
                read_end, write_end = os.pipe()
                try:
                    popen = self._spawn(argv, proc_env, write_end)
                except OSError:
                    os.close(read_end)
                    raise
                finally:
                    os.close(write_end)
                own = os.path.join(user_logs, f"std_log_process_{rank}.txt")
                proc = UserProcess(rank, popen, own)
                tee_args = (read_end, rank, own, combined, lock)
                proc.tee = threading.Thread(target=tee_lines, args=tee_args, daemon=True)
                proc.tee.start()
            self._started.append(proc)
            self.log(f"rank {rank}: started pid {popen.pid}: {argv}")
        return self._started

    def _spawn(self, argv: list[str], env: dict[str, str], out: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            cwd=self.working_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _supervise(self, procs: list[UserProcess]) -> tuple[str, int | None, str | None]:
        """Wait for the processes; a failure, a cancel or the timeout stops them all."""
        limit = self.plan.get("timeout_seconds")
        seconds = float(limit) if limit else None
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            for proc in procs:
                proc.popen.poll()
            failed = [p for p in procs if p.popen.returncode]  # on their own, before any stop
            if failed:
                proc = min(failed, key=lambda p: p.rank)
                code = exit_status(proc.popen.returncode)
                self.log(f"rank {proc.rank} exited with code {code}; stopping the rest")
                self._stop(procs)
                return FAILED, code, self._failure_reason(proc, proc.popen.returncode)
            if all(p.popen.returncode is not None for p in procs):
                self.log("every process exited with code 0")
                self._stop(procs)  # whatever they left running in the background
                return COMPLETED, 0, None
            if self.canceled:
                self.log("cancel requested: stopping the user processes")
                self._stop(procs)
                return CANCELED, None, "canceled by user"
            if deadline is not None and time.monotonic() >= deadline:
                self.log(f"timeout of {seconds:g} s reached: stopping the user processes")
                self._stop(procs)
                return FAILED, None, f"job exceeded limits.timeout of {seconds:g} s and was stopped"
            self._wait(1.0 if deadline is None else min(1.0, deadline - time.monotonic()))

    def _failure_reason(self, proc: UserProcess, code: int) -> str:
        where = os.path.relpath(proc.log_path, self.artifacts_dir)
        what = f"exited with code {code}"
        if code < 0:
            try:
                what = f"was killed by {signal.Signals(-code).name} (exit code {128 - code})"
            except ValueError:
                what = f"was killed by signal {-code}"
        last = last_line(proc.log_path)
        text = f"user command {what} (rank {proc.rank}); see {where}"
        return f"{text}. Last line: {last}" if last else text

    def _stop(self, procs: list[UserProcess]) -> None:
        """SIGTERM every process group (and descendants that left it); SIGKILL after grace.

        Descendants are collected while their parents live, since an orphan can no longer
        be traced back to us by its parent pid."""
        pgids, pids = {p.popen.pid for p in procs}, set()
        table = scan_proc()
        if table is not None:
            children: dict[int, list[int]] = {}
            for pid, (_, ppid, _) in table.items():
                children.setdefault(ppid, []).append(pid)
            todo = [p.popen.pid for p in procs]
            while todo:
                for child in children.get(todo.pop(), []):
                    if child not in pids:
                        pids.add(child)
                        pgids.add(table[child][2])
                        todo.append(child)
        pgids -= {0, 1, os.getpgrp()}
        pids.discard(os.getpid())
        if self._alive(procs, pgids, pids):
            self._signal(pgids, pids, signal.SIGTERM)
            deadline = time.monotonic() + self.grace
            while self._alive(procs, pgids, pids) and time.monotonic() < deadline:
                self._wait(0.05)
            if self._alive(procs, pgids, pids):
                self.log(f"processes still running after {self.grace:g} s: SIGKILL")
                self._signal(pgids, pids, signal.SIGKILL)
        for proc in procs:
            try:
                proc.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.log(f"rank {proc.rank} (pid {proc.popen.pid}) would not die")
            if proc.tee is not None:
                proc.tee.join(5)  # a daemon that kept the pipe open must not hold us

    @staticmethod
    def _alive(procs: list[UserProcess], pgids: set[int], pids: set[int]) -> bool:
        for proc in procs:
            proc.popen.poll()  # reap our children, so they do not linger as zombies
        table = scan_proc()
        if table is None:
            alive = 0
            for pgid in pgids:
                try:
                    os.killpg(pgid, 0)
                    alive += 1
                except OSError:
                    pass
            return alive > 0
        # Zombies do not count: orphans are reaped by init, maybe not at once.
        return any(
            state not in ("Z", "X") and (pid in pids or pgrp in pgids)
            for pid, (state, _, pgrp) in table.items()
        )

    @staticmethod
    def _signal(pgids: set[int], pids: set[int], sig: int) -> None:
        for pgid in pgids:
            try:
                os.killpg(pgid, sig)
            except OSError:
                pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass


def forget_script_dir() -> None:
    """Run as a file, Python puts this folder first on sys.path, where a sibling module (a
    future ``runtime/http.py``, say) would shadow the standard library we import lazily."""
    if __package__:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -S bootstrap.py <launch.json>", file=sys.stderr)
        return 2
    forget_script_dir()
    plan: Any = None
    try:
        with open(args[0], encoding="utf-8") as f:
            plan = json.load(f)
        if plan.get("version") != PLAN_VERSION:
            raise ValueError(f"version {plan.get('version')!r} is not {PLAN_VERSION}")
        missing = [
            k for k in ("run_dir", "working_dir", "artifacts_dir", "command") if not plan.get(k)
        ]
        if missing:
            raise ValueError("missing " + ", ".join(missing))
        job = Job(plan)
    except Exception as exc:
        reason = f"invalid launch plan {args[0]}: {describe(exc)}"
        print(f"mill bootstrap: {reason}", file=sys.stderr)
        run_dir = plan.get("run_dir") if isinstance(plan, dict) else None
        if run_dir and os.path.isdir(run_dir):
            result = {"status": FAILED, "exit_code": None, "reason": reason, "at": now()}
            write_json_atomic(os.path.join(run_dir, "result.json"), result)
        return 2
    return job.run()


if __name__ == "__main__":
    sys.exit(main())
