"""Datastore I/O: Mill's DatastoreFS.put/get vs plain fsspec put/get, same servers, one run.

Makes a folder of --files files (varied sizes, random bytes) totalling --total-mb, starts
moto's S3 server and Azurite as the tests do (tests/storage_servers.py), and for each
backend (s3, azure_blob, local) times, --runs times in alternating order:
  * plain fsspec: ``fs.put(folder, target, recursive=True)`` /
    ``fs.get(target, out, recursive=True)``
    (s3fs / adlfs / LocalFileSystem with their defaults);
  * Mill: ``DatastoreFS.put(folder, target)`` / ``DatastoreFS.get(target, out)``;
  * Mill through its API (``--api``), the path ``mill data create`` / ``mill data download``
    take: the client streams each file to a real ``mill server`` subprocess, which streams
    it to the datastore (and back), so the bytes cross loopback HTTP twice.
Each transfer runs in a fresh child process, which reports its wall time for the transfer
alone and its peak RSS (VmHWM), so Mill's memory is measured apart from the benchmark's;
with --api the server's peak RSS over all its transfers is reported too.
Targets: Mill/fsspec median ratio <= 1.10, Mill's peak RSS < 200 MB.

Run: .venv/bin/python bench/datastore_io.py [--files 1000] [--total-mb 1024] [--runs 3] [--api]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def make_folder(root: Path, files: int, total_bytes: int, seed: int = 7) -> None:
    """``files`` files in nested folders, log-normal sizes scaled to ``total_bytes``."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0, 1) for _ in range(files)]
    scale = total_bytes / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] += total_bytes - sum(sizes)
    for i, size in enumerate(sizes):
        path = root / f"part-{i % 10}" / f"sub-{i % 7}" / f"file-{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left > 0:
                chunk = min(left, 4 << 20)
                f.write(os.urandom(chunk))
                left -= chunk


# --------------------------------------------------------------------- child side


def plain_fs(backend: str, server: dict[str, Any]) -> tuple[Any, str]:
    if backend == "s3":
        from s3fs import S3FileSystem

        fs = S3FileSystem(
            key=server["access_key_id"],
            secret=server["secret_access_key"],
            endpoint_url=server["endpoint_url"],
            skip_instance_cache=True,
        )
        return fs, server["bucket"]
    if backend == "azure_blob":
        from adlfs import AzureBlobFileSystem

        fs = AzureBlobFileSystem(
            connection_string=server["connection_string"], skip_instance_cache=True
        )
        return fs, server["container"]
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem(auto_mkdir=True), server["root"]


def mill_fs(backend: str, server: dict[str, Any]) -> Any:
    from mill.storage.filesystems import DatastoreFS

    if backend == "s3":
        return DatastoreFS(
            "bench_s3",
            "s3",
            {"bucket": server["bucket"], "endpoint_url": server["endpoint_url"]},
            {
                "access_key_id": server["access_key_id"],
                "secret_access_key": server["secret_access_key"],
            },
        )
    if backend == "azure_blob":
        return DatastoreFS(
            "bench_blob",
            "azure_blob",
            {
                "account_name": server["account_name"],
                "container_name": server["container"],
                "account_url": server["account_url"],
            },
            {"account_key": server["account_key"]},
        )
    return DatastoreFS("bench_local", "local", {"path": server["root"]}, None)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(task: dict[str, Any]) -> dict[str, float]:
    backend, who, op = task["backend"], task["who"], task["op"]
    folder, out, target = Path(task["folder"]), Path(task["out"]), task["target"]
    if who == "fsspec":
        fs, base = plain_fs(backend, task["server"])
        remote = f"{base.rstrip('/')}/{target}"
        start = time.perf_counter()
        if op == "put":
            fs.put(str(folder), remote, recursive=True)
        else:
            fs.get(remote, str(out), recursive=True)
    elif who == "api":
        from mill.client.http import MillClient
        from mill.client.transfer import download_uri, upload_path

        client = MillClient(task["url"])
        uri = f"azureml://datastores/bench/paths/{target}"
        start = time.perf_counter()
        if op == "put":
            upload_path(client, folder, uri)
        else:
            download_uri(client, uri, out)
    else:
        ds = mill_fs(backend, task["server"])
        start = time.perf_counter()
        if op == "put":
            ds.put(folder, target)
        else:
            ds.get(target, out)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


# --------------------------------------------------------------------- parent side


def run_child(task: dict[str, Any]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(task)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def count_files(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def start_mill_server(backend: str, server: dict[str, Any], work: Path) -> dict[str, Any]:
    """A real ``mill server`` in its own home, with the backend registered as ``bench``."""
    from mill.client.http import MillClient

    home = work / f"mill-home-{backend}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILL_")}
    env["MILL_HOME"] = str(home)
    started = subprocess.run(
        [sys.executable, "-m", "mill", "server", "start", "--port", "0", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    info: dict[str, Any] = json.loads(started.stdout)
    info["env"] = env
    ds = mill_fs(backend, server)
    body: dict[str, Any] = {"name": "bench", "type": ds.type, **ds.config}
    if backend == "s3":
        body["credentials"] = {
            "access_key_id": server["access_key_id"],
            "secret_access_key": server["secret_access_key"],
        }
    elif backend == "azure_blob":
        body["credentials"] = {"account_key": server["account_key"]}
    MillClient(info["url"]).create_datastore(body)
    return info


def stop_mill_server(info: dict[str, Any]) -> float:
    """Stop the server; returns its peak RSS in MB (VmHWM) over the whole run."""
    peak = 0.0
    for line in Path(f"/proc/{info['pid']}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    subprocess.run(
        [sys.executable, "-m", "mill", "server", "stop"],
        check=False,
        capture_output=True,
        env=info["env"],
        cwd=REPO,
    )
    return peak


def bench_backend(
    backend: str,
    server: dict[str, Any],
    folder: Path,
    work: Path,
    runs: int,
    expect: tuple[int, int],
    api: bool = False,
) -> dict[str, dict[str, list[float]]]:
    whos = ("fsspec", "mill", "api") if api else ("fsspec", "mill")
    samples: dict[str, dict[str, list[float]]] = {
        f"{who}.{op}": {"seconds": [], "rss": []} for who in whos for op in ("put", "get")
    }
    cleaner = mill_fs(backend, server)
    mill_server = start_mill_server(backend, server, work) if api else None
    for rep in range(runs):
        order = whos if rep % 2 == 0 else tuple(reversed(whos))
        for who in order:
            target = f"bench-{who}-{rep}"
            out = work / f"out-{who}-{rep}"
            for op in ("put", "get"):
                task = {
                    "backend": backend,
                    "who": who,
                    "op": op,
                    "folder": str(folder),
                    "out": str(out),
                    "target": target,
                    "server": server,
                    "url": mill_server["url"] if mill_server else None,
                }
                result = run_child(task)
                samples[f"{who}.{op}"]["seconds"].append(result["seconds"])
                samples[f"{who}.{op}"]["rss"].append(result["peak_rss_mb"])
                print(
                    f"  {backend:10} rep {rep} {who:6} {op}: {result['seconds']:6.2f} s, "
                    f"peak RSS {result['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
            got = count_files(out)
            if got != expect:
                raise SystemExit(f"{backend} {who}: downloaded {got}, expected {expect}")
            shutil.rmtree(out)
            cleaner.delete(target)
    if mill_server is not None:
        samples["server"] = {"seconds": [], "rss": [stop_mill_server(mill_server)]}
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--total-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="s3,azure_blob,local")
    parser.add_argument(
        "--api", action="store_true", help="also through a real mill server (mill data create)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    sys.path.insert(0, str(REPO))
    from tests import storage_servers

    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="mill-bench-io-") as tmp:
        work = Path(tmp)
        folder = work / "data"
        t = time.perf_counter()
        make_folder(folder, args.files, args.total_mb << 20)
        expect = count_files(folder)
        print(
            f"data: {expect[0]} files, {expect[1] / 2**20:.0f} MiB "
            f"({time.perf_counter() - t:.1f} s to write)",
            flush=True,
        )
        servers: list[Any] = []
        results: dict[str, dict[str, dict[str, list[float]]]] = {}
        try:
            for backend in backends:
                if backend == "s3":
                    s3 = storage_servers.start_s3()
                    servers.append(s3)
                    server = {
                        "endpoint_url": s3.endpoint_url,
                        "access_key_id": s3.access_key_id,
                        "secret_access_key": s3.secret_access_key,
                        "bucket": s3.create_bucket(),
                    }
                elif backend == "azure_blob":
                    az = storage_servers.start_azurite(work / "azurite")
                    servers.append(az)
                    server = {
                        "account_url": az.account_url,
                        "account_name": az.account_name,
                        "account_key": az.account_key,
                        "connection_string": az.connection_string,
                        "container": az.create_container(),
                    }
                else:
                    (work / "local").mkdir()
                    server = {"root": str(work / "local")}
                results[backend] = bench_backend(
                    backend, server, folder, work, args.runs, expect, args.api
                )
                for s in servers:
                    s.stop()
                servers.clear()
        finally:
            for s in servers:
                s.stop()
    report(results, args)


def report(results: dict[str, dict[str, dict[str, list[float]]]], args: argparse.Namespace) -> None:
    print()
    print(
        f"{args.files} files, {args.total_mb} MiB, median of {args.runs} "
        "(each transfer in a fresh child process)"
    )
    print(
        f"{'backend':11} {'op':4} {'fsspec s':>9} {'mill s':>8} {'ratio':>6} "
        f"{'fsspec RSS':>11} {'mill RSS':>9}"
    )
    for backend, samples in results.items():
        for op in ("put", "get"):
            plain, mill = samples[f"fsspec.{op}"], samples[f"mill.{op}"]
            p, m = statistics.median(plain["seconds"]), statistics.median(mill["seconds"])
            print(
                f"{backend:11} {op:4} {p:9.2f} {m:8.2f} {m / p:6.2f} "
                f"{max(plain['rss']):9.0f}MB {max(mill['rss']):7.0f}MB"
            )
            if f"api.{op}" in samples:
                via = samples[f"api.{op}"]
                a = statistics.median(via["seconds"])
                print(
                    f"{'  via API':11} {op:4} {'':9} {a:8.2f} {a / p:6.2f} "
                    f"{'':11} {max(via['rss']):7.0f}MB (client)"
                )
        if "server" in samples:
            print(
                f"{'  server':11} peak RSS over all API transfers: "
                f"{samples['server']['rss'][0]:.0f} MB"
            )


if __name__ == "__main__":
    main()
