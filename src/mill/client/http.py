"""MillClient: a thin, typed wrapper over the REST API. Translates every HTTP failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from mill.errors import MillError, ServerUnavailableError, error_from_envelope

__all__ = ["MillClient"]

_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class MillClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        workspace: str = "default",
        *,
        same_host_transfers: bool = True,
    ) -> None:
        self.same_host_transfers = same_host_transfers
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.workspace = workspace
        self._http = httpx.Client(
            base_url=self.base_url + "/api/v1", headers=headers, timeout=_TIMEOUT
        )

    def close(self) -> None:
        self._http.close()

    # Plumbing -----------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnavailableError(
                f"cannot reach the Mill server at {self.base_url}: {exc}",
                hint="is it running? `mill server status` tells; MILL_URL points at another server",
            ) from exc
        _raise_for(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def ws(self, suffix: str = "") -> str:
        return f"/workspaces/{quote(self.workspace, safe='')}{suffix}"

    # Workspaces ---------------------------------------------------------------------
    def list_workspaces(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/workspaces")
        return result

    def create_workspace(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/workspaces", json=body)
        return result

    def show_workspace(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/workspaces/{quote(name, safe='')}")
        return result

    def delete_workspace(self, name: str) -> None:
        self.request("DELETE", f"/workspaces/{quote(name, safe='')}")

    # Computes -----------------------------------------------------------------------
    def list_computes(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", self.ws("/computes"))
        return result

    def create_compute(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", self.ws("/computes"), json=body)
        return result

    def show_compute(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", self.ws(f"/computes/{quote(name, safe='')}"))
        return result

    def delete_compute(self, name: str) -> None:
        self.request("DELETE", self.ws(f"/computes/{quote(name, safe='')}"))

    # Uploads ------------------------------------------------------------------------
    def missing_blobs(self, digests: list[str]) -> list[str]:
        result = self.request("POST", self.ws("/blobs/missing"), json={"digests": digests})
        return list(result["missing"])

    def put_blob(self, digest: str, chunks: Iterator[bytes]) -> None:
        self.request("PUT", self.ws(f"/blobs/{digest}"), content=chunks)

    def create_snapshot(self, manifest: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", self.ws("/snapshots"), json=manifest)
        return result

    def upload_data(self, manifest: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", self.ws("/uploads"), json=manifest)
        return result

    # Environments -------------------------------------------------------------------
    def create_environment(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", self.ws("/environments"), json=body)
        return result

    def show_environment(self, name: str, version: str | None, label: str | None) -> dict[str, Any]:
        params = {k: v for k, v in (("version", version), ("label", label)) if v}
        url = self.ws(f"/environments/{quote(name, safe='')}")
        result: dict[str, Any] = self.request("GET", url, params=params)
        return result

    def list_environments(self, name: str | None, include_archived: bool) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"include_archived": "true"} if include_archived else {}
        if name:
            params["name"] = name
        result: list[dict[str, Any]] = self.request("GET", self.ws("/environments"), params=params)
        return result

    def update_environment(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.ws(f"/environments/{quote(name, safe='')}/versions/{quote(version, safe='')}")
        result: dict[str, Any] = self.request("PATCH", url, json=body)
        return result

    def environment_action(self, name: str, action: str, **params: Any) -> Any:
        url = self.ws(f"/environments/{quote(name, safe='')}/{action}")
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("POST", url, params=clean, timeout=httpx.Timeout(None, connect=5.0))

    def curated_environments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/registries/azureml/environments")
        return result

    def cached_environments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/environments/cache")
        return result

    def prune_environments(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/environments/cache/prune", json=body)
        return result

    # Datastores and storage ------------------------------------------------------------
    def list_datastores(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", self.ws("/datastores"))
        return result

    def create_datastore(self, body: dict[str, Any], set_default: bool = False) -> dict[str, Any]:
        params = {"set_default": "true"} if set_default else {}
        result: dict[str, Any] = self.request(
            "POST", self.ws("/datastores"), json=body, params=params
        )
        return result

    def update_datastore(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT", self.ws(f"/datastores/{quote(name, safe='')}"), json=body
        )
        return result

    def show_datastore(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", self.ws(f"/datastores/{quote(name, safe='')}"))
        return result

    def set_default_datastore(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", self.ws(f"/datastores/{quote(name, safe='')}/default")
        )
        return result

    def delete_datastore(self, name: str) -> None:
        self.request("DELETE", self.ws(f"/datastores/{quote(name, safe='')}"))

    @property
    def is_loopback(self) -> bool:
        """Whether the server is addressed on this machine (so it may share our disk)."""
        local = urlsplit(self.base_url).hostname in ("127.0.0.1", "::1", "localhost")
        return local and self.same_host_transfers

    def post_stream(self, path: str, body: dict[str, Any]) -> Iterator[bytes]:
        """POST a JSON body and stream the answer (no read timeout: it may take a while)."""
        yield from self._stream("POST", path, json=body, timeout=httpx.Timeout(None, connect=5.0))

    def read_storage(self, uri: str) -> Iterator[bytes]:
        """The bytes of the file at a storage URI, streamed."""
        url = self.ws("/storage/file") + "?uri=" + quote(uri, safe="")
        yield from self._stream("GET", url, timeout=httpx.Timeout(None, connect=5.0))

    # Models ---------------------------------------------------------------------------
    def create_model(self, body: dict[str, Any], validate_only: bool = False) -> dict[str, Any]:
        params = {"validate_only": "true"} if validate_only else {}
        result: dict[str, Any] = self.request("POST", self.ws("/models"), json=body, params=params)
        return result

    def new_model_upload(self, filename: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", self.ws("/models/uploads"), json={"filename": filename}
        )
        return result

    def show_model(self, name: str, version: str | None, label: str | None) -> dict[str, Any]:
        params = {k: v for k, v in (("version", version), ("label", label)) if v is not None}
        result: dict[str, Any] = self.request(
            "GET", self.ws(f"/models/{quote(name, safe='')}"), params=params
        )
        return result

    def list_models(self, name: str | None, include_archived: bool) -> list[dict[str, Any]]:
        params: dict[str, str] = {"include_archived": "true" if include_archived else "false"}
        if name:
            params["name"] = name
        result: list[dict[str, Any]] = self.request("GET", self.ws("/models"), params=params)
        return result

    def update_model(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PATCH",
            self.ws(f"/models/{quote(name, safe='')}/versions/{quote(version, safe='')}"),
            json=body,
        )
        return result

    def archive_model(self, name: str, version: str | None, restore: bool) -> list[dict[str, Any]]:
        params = {"restore": "true" if restore else "false"}
        if version:
            params["version"] = version
        result: list[dict[str, Any]] = self.request(
            "POST", self.ws(f"/models/{quote(name, safe='')}/archive"), params=params
        )
        return result

    # Data assets ----------------------------------------------------------------------
    def create_data(self, body: dict[str, Any], validate_only: bool = False) -> dict[str, Any]:
        params = {"validate_only": "true"} if validate_only else {}
        result: dict[str, Any] = self.request("POST", self.ws("/data"), json=body, params=params)
        return result

    def new_data_upload(self, filename: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", self.ws("/data/uploads"), json={"filename": filename}
        )
        return result

    def show_data(self, name: str, version: str | None, label: str | None) -> dict[str, Any]:
        params = {k: v for k, v in (("version", version), ("label", label)) if v is not None}
        result: dict[str, Any] = self.request(
            "GET", self.ws(f"/data/{quote(name, safe='')}"), params=params
        )
        return result

    def list_data(self, name: str | None, include_archived: bool) -> list[dict[str, Any]]:
        params: dict[str, str] = {"include_archived": "true" if include_archived else "false"}
        if name:
            params["name"] = name
        result: list[dict[str, Any]] = self.request("GET", self.ws("/data"), params=params)
        return result

    def update_data(self, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PATCH",
            self.ws(f"/data/{quote(name, safe='')}/versions/{quote(version, safe='')}"),
            json=body,
        )
        return result

    def archive_data(self, name: str, version: str | None, restore: bool) -> list[dict[str, Any]]:
        params = {"restore": "true" if restore else "false"}
        if version:
            params["version"] = version
        result: list[dict[str, Any]] = self.request(
            "POST", self.ws(f"/data/{quote(name, safe='')}/archive"), params=params
        )
        return result

    def data_files(self, name: str, version: str | None, label: str | None) -> dict[str, Any]:
        params = {k: v for k, v in (("version", version), ("label", label)) if v is not None}
        result: dict[str, Any] = self.request(
            "GET", self.ws(f"/data/{quote(name, safe='')}/files"), params=params
        )
        return result

    # Jobs ---------------------------------------------------------------------------
    def create_job(self, spec: dict[str, Any], validate_only: bool = False) -> dict[str, Any]:
        params = {"validate_only": "true"} if validate_only else None
        result: dict[str, Any] = self.request("POST", self.ws("/jobs"), json=spec, params=params)
        return result

    def show_job(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", self.ws(f"/jobs/{quote(name, safe='')}"))
        return result

    def list_jobs(self, **params: Any) -> list[dict[str, Any]]:
        clean = {k: v for k, v in params.items() if v not in (None, False, [])}
        result: list[dict[str, Any]] = self.request("GET", self.ws("/jobs"), params=clean)
        return result

    def job_metrics(self, name: str, history: str | None = None) -> dict[str, Any]:
        params = {"history": history} if history else None
        url = self.ws(f"/jobs/{quote(name, safe='')}/metrics")
        result: dict[str, Any] = self.request("GET", url, params=params)
        return result

    def compare_jobs(self, names: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", self.ws("/jobs/compare"), json={"names": names}
        )
        return result

    def list_experiments(self, include_archived: bool = False) -> list[dict[str, Any]]:
        params = {"include_archived": "true"} if include_archived else None
        result: list[dict[str, Any]] = self.request("GET", self.ws("/experiments"), params=params)
        return result

    def show_experiment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", self.ws(f"/experiments/{quote(name, safe='')}")
        )
        return result

    def experiment_action(self, name: str, action: str) -> None:
        self.request("POST", self.ws(f"/experiments/{quote(name, safe='')}/{action}"))

    def job_action(self, name: str, action: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", self.ws(f"/jobs/{quote(name, safe='')}/{action}")
        )
        return result

    def stream_logs(
        self,
        name: str,
        file: str,
        offset: int = 0,
        follow: bool = True,
        until_started: bool = False,
    ) -> Iterator[bytes]:
        """Log bytes from ``offset``; with ``follow`` until the job ends (or has started)."""
        params = {
            "file": file,
            "offset": offset,
            "follow": "true" if follow else "false",
            "until_started": "true" if until_started else "false",
        }
        url = self.ws(f"/jobs/{quote(name, safe='')}/logs")
        yield from self._stream("GET", url, params=params, timeout=httpx.Timeout(None, connect=5.0))

    def download_output(self, name: str, output: str) -> Iterator[bytes]:
        url = self.ws(f"/jobs/{quote(name, safe='')}/outputs/{quote(output, safe='')}/archive")
        yield from self._stream("GET", url, timeout=httpx.Timeout(None, connect=5.0))

    def _stream(self, method: str, url: str, **kwargs: Any) -> Iterator[bytes]:
        try:
            with self._http.stream(method, url, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise ServerUnavailableError(f"lost the connection to {self.base_url}: {exc}") from exc


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        envelope = response.json()
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and "code" in envelope:
        raise error_from_envelope(envelope, response.status_code)
    raise MillError(f"server answered HTTP {response.status_code}: {response.text[:200]}")
