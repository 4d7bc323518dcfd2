"""``HttpGetTool``: HTTP GET to allow-listed hosts, with size and time limits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidToolInput, ToolExecutionFailed, ToolPermissionDenied
from ._schema import ToolSchema

if TYPE_CHECKING:
    import httpx

_MAX_URL = 2_048


def _normalise_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


class HttpGetTool:
    """Fetches a URL with HTTP GET, if its host is allow-listed.

    Hosts match exactly, or as subdomains for ``"*.example.com"`` entries. Redirects are
    followed by hand (at most ``max_redirects``) and every hop is checked against the
    allow-list. The body is read as a stream and cut at ``max_bytes``
    (``"truncated": true``). URLs with credentials or non-HTTP schemes are refused.
    Needs ``httpx`` (the ``http`` extra).

    Returns ``{"url", "status", "content_type", "text", "truncated"}``; non-2xx
    statuses are results too, not errors.

    Args:
        allowed_hosts: Host names (or ``*.domain`` patterns) that may be fetched.
        name: The tool's name.
        max_bytes: Largest body returned, in bytes.
        timeout: httpx timeout in seconds for connecting and each read (the bus's
            deadline bounds the whole call).
        max_redirects: Redirects followed at most.
        transport: An httpx transport to use instead of the network (tests:
            ``httpx.MockTransport``).
        headers: Extra request headers.
        allow_http: Whether plain ``http://`` URLs are allowed (``https`` always is).
    """

    timeout: float | None = None

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        *,
        name: str = "http_get",
        max_bytes: int = 1_048_576,
        timeout: float = 10.0,
        max_redirects: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        allow_http: bool = True,
    ) -> None:
        import httpx  # the optional dependency is only needed when the tool is built

        self._httpx = httpx
        hosts = [_normalise_host(host) for host in allowed_hosts]
        if not hosts or not all(hosts):
            raise ValueError("allowed_hosts must name at least one host")
        if max_bytes < 1 or max_redirects < 0 or not timeout > 0:
            raise ValueError("max_bytes must be >= 1, max_redirects >= 0 and timeout > 0")
        self._exact = {host for host in hosts if not host.startswith("*.")}
        self._suffixes = tuple(host[1:] for host in hosts if host.startswith("*."))
        self.allowed_hosts = tuple(hosts)
        self.name = name
        self.max_bytes = max_bytes
        self.request_timeout = timeout
        self.max_redirects = max_redirects
        self._transport = transport
        self._headers = dict(headers or {})
        self._schemes = ("https", "http") if allow_http else ("https",)
        self.description = (
            f"HTTP GET a URL on an allowed host ({', '.join(hosts)}); returns status, "
            f"content type and up to {max_bytes} bytes of text."
        )
        self.input_schema = ToolSchema.from_properties(
            {
                "url": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": _MAX_URL,
                    "pattern": "^https?://" if allow_http else "^https://",
                    "description": "Absolute http(s) URL to fetch.",
                }
            },
            required=["url"],
        )

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is on the allow-list."""
        host = _normalise_host(host)
        return host in self._exact or any(
            host.endswith(suffix) and len(host) > len(suffix) for suffix in self._suffixes
        )

    def check_url(self, url: httpx.URL) -> None:
        """Refuse ``url`` unless its scheme, credentials and host are acceptable.

        Raises:
            InvalidToolInput: wrong scheme, credentials in the URL, or no host.
            ToolPermissionDenied: host not on the allow-list.
        """
        if url.scheme not in self._schemes:
            raise InvalidToolInput(f"URL scheme {url.scheme!r} is not allowed")
        if url.userinfo:
            raise InvalidToolInput("URLs with credentials are not allowed")
        if not url.host:
            raise InvalidToolInput(f"URL {str(url)[:200]!r} has no host")
        if not self.host_allowed(url.host):
            raise ToolPermissionDenied(f"host {url.host!r} is not on the allow-list")

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """GET ``args["url"]``."""
        httpx = self._httpx
        try:
            url = httpx.URL(str(args["url"]))
        except httpx.InvalidURL as error:
            raise InvalidToolInput(f"invalid URL: {error}") from error
        self.check_url(url)
        async with httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self.request_timeout),
            follow_redirects=False,
            headers=self._headers,
        ) as client:
            for _ in range(self.max_redirects + 1):
                async with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = url.join(response.headers["location"])
                        self.check_url(url)
                        continue
                    body = bytearray()
                    truncated = False
                    async with contextlib.aclosing(response.aiter_bytes()) as chunks:
                        async for chunk in chunks:
                            room = self.max_bytes - len(body)
                            if len(chunk) > room:
                                body += chunk[:room]
                                truncated = True
                                break
                            body += chunk
                    return {
                        "url": str(url),
                        "status": response.status_code,
                        "content_type": response.headers.get("content-type", ""),
                        "text": bytes(body).decode(response.encoding or "utf-8", errors="replace"),
                        "truncated": truncated,
                    }
        raise ToolExecutionFailed(f"more than {self.max_redirects} redirects")
