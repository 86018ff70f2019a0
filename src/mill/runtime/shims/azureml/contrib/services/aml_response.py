"""``AMLResponse``: a scoring script's raw HTTP answer (standard library only).

``AMLResponse(message, status_code, response_headers=None, json_str=False)`` as in Azure's
inference server: ``json_str`` sends ``message`` as JSON; otherwise ``str``/``bytes`` are
sent as they are (``text/html; charset=utf-8`` unless a ``Content-Type`` header or
``.mimetype`` says otherwise); ``None`` sends ``{}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["AMLResponse"]

__mill_shim__ = True
_DEFAULT_TYPE = "text/html; charset=utf-8"


class AMLResponse:
    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        self.status_code = int(status_code)
        self.headers: dict[str, str] = {}
        if message is None or json_str:
            self._body = json.dumps({} if message is None else message).encode()
            self.content_type = "application/json"
        elif isinstance(message, (bytes, bytearray)):
            self._body = bytes(message)
            self.content_type = _DEFAULT_TYPE
        elif isinstance(message, str):
            self._body = message.encode()
            self.content_type = _DEFAULT_TYPE
        else:  # a dict or list without json_str: sent as JSON rather than its repr
            self._body = json.dumps(message).encode()
            self.content_type = "application/json"
        if run_function_failed:
            self.headers["x-ms-run-function-failed"] = "True"
        for name, value in (response_headers or {}).items():
            if name.lower() == "content-type":
                self.content_type = str(value)
            else:
                self.headers[name] = str(value)

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers["Content-Type"] = value

    @property
    def mimetype(self) -> str:
        return self.content_type.split(";")[0].strip()

    @mimetype.setter
    def mimetype(self, value: str) -> None:
        # Flask adds the charset to text types only.
        self.content_type = f"{value}; charset=utf-8" if value.startswith("text/") else value

    @property
    def status(self) -> str:
        return str(self.status_code)

    @property
    def data(self) -> bytes:
        return self._body

    @data.setter
    def data(self, value: bytes | str) -> None:
        self._body = value.encode() if isinstance(value, str) else bytes(value)

    def get_data(self, as_text: bool = False) -> Any:
        return self._body.decode("utf-8", errors="replace") if as_text else self._body

    def set_data(self, value: bytes | str) -> None:
        self.data = value

    def __repr__(self) -> str:
        return f"<AMLResponse {self.status_code} {self.mimetype}>"
