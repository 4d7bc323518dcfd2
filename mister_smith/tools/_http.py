"""``HttpGetTool``: HTTP GET to allow-listed hosts and ports, public addresses only,
with a decoded-size cap, a compression-bomb guard and time limits."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import InvalidToolInput, ToolExecutionFailed, ToolPermissionDenied
from ._addresses import (
    DEFAULT_PORTS,
    HostAllowList,
    InternalAllowList,
    IPAddress,
    Resolver,
    address_problem,
    normalise_host,
    parse_ip,
    resolve_host,
)
from ._body import DECODABLE_ENCODINGS, BodyLimits, read_decoded_body
from ._schema import ToolSchema

if TYPE_CHECKING:
    import httpx

_MAX_URL = 2_048


@attrs.frozen
class _Hop:
    """One checked request: the URL as named, and the address it will connect to."""

    url: httpx.URL
    host: str
    port: int
    address: IPAddress


def _charset(response: httpx.Response) -> str:
    name = response.charset_encoding or "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        return "utf-8"
    return name


class HttpGetTool:
    """Fetches a URL with HTTP GET, if its host, port and address are allowed.

    Every request (the first and each redirect hop, at most ``max_redirects``) is
    checked in this order:

    1. scheme (``https``, and ``http`` if ``allow_http``) and no credentials in the URL;
    2. ``host:port`` on ``allowed_hosts`` (see :class:`HostAllowList`: an entry without
       a port allows only the scheme's default port);
    3. the host is resolved once and *every* address it resolves to must be public
       (:func:`address_problem`: no loopback, private, link-local, multicast,
       unspecified, reserved, IPv4-mapped forms of those, ...) unless the exact
       ``host:port`` or the address's network is on ``allow_internal``;
    4. the request connects to that checked address: the URL's host is replaced by the
       address, the ``Host`` header and the TLS SNI/certificate check keep the name. No
       second DNS lookup happens between check and connect, so DNS rebinding cannot
       swap the address. Environment proxies are ignored (a proxy would resolve again).

    The body is read raw and decoded by :class:`~mister_smith.tools.BodyDecoder`: at
    most ``max_bytes`` *decoded* bytes (``"truncated": true`` beyond), one
    content-encoding at most (``gzip, gzip`` is refused), and a body decompressing more
    than ``max_decompression_ratio`` times its size is refused as a bomb
    (:class:`~mister_smith.errors.ResponseBodyRejected`). Extra ``headers`` are only
    sent to the first URL's origin, never to a redirect target elsewhere. Needs
    ``httpx`` (the ``http`` extra).

    Returns ``{"url", "status", "content_type", "text", "truncated"}``; non-2xx
    statuses are results too, not errors.

    Args:
        allowed_hosts: Hosts that may be fetched: ``"api.example.com"``,
            ``"*.example.com"``, optionally with ``":port"``.
        name: The tool's name.
        max_bytes: Largest (decoded) body returned, in bytes.
        timeout: httpx timeout in seconds for connecting and each read (the bus's
            deadline bounds the whole call).
        max_redirects: Redirects followed at most.
        transport: An httpx transport to use instead of the network (tests:
            ``httpx.MockTransport``); it receives the address-pinned requests.
        headers: Extra request headers (first origin only).
        allow_http: Whether plain ``http://`` URLs are allowed (``https`` always is).
        allow_internal: Exceptions to "public addresses only": exact ``"host:port"``
            pairs or CIDR networks (see :class:`InternalAllowList`).
        resolver: DNS lookup ``(host, port) -> addresses`` (default: the system's,
            in a worker thread).
        max_decompression_ratio: Decoded bytes per compressed byte before a body is
            refused as a bomb.
    """

    timeout: float | None = None
    idempotent = True
    """A GET is safe to repeat: the bus may retry a transient failure."""

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
        allow_internal: Iterable[str] = (),
        resolver: Resolver | None = None,
        max_decompression_ratio: float = 100.0,
    ) -> None:
        import httpx  # the optional dependency is only needed when the tool is built

        self._httpx = httpx
        if isinstance(allowed_hosts, str) or isinstance(allow_internal, str):
            raise TypeError("allowed_hosts and allow_internal are lists of entries")
        entries = tuple(allowed_hosts)
        if max_bytes < 1 or max_redirects < 0 or not timeout > 0:
            raise ValueError("max_bytes must be >= 1, max_redirects >= 0 and timeout > 0")
        self.hosts = HostAllowList.parse(entries)
        self.internal = InternalAllowList.parse(allow_internal)
        self.body_limits = BodyLimits(max_bytes, max_ratio=max_decompression_ratio)
        self.allowed_hosts = entries
        self.name = name
        self.max_bytes = max_bytes
        self.request_timeout = timeout
        self.max_redirects = max_redirects
        self._transport = transport
        self._headers = dict(headers or {})
        self._resolver = resolver or resolve_host
        self._schemes = ("https", "http") if allow_http else ("https",)
        self.description = (
            f"HTTP GET a URL on an allowed host ({self.hosts.describe()}); returns status, "
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

    def host_allowed(self, host: str, port: int | None = None, scheme: str = "https") -> bool:
        """Whether ``host:port`` is on the allow-list (``None``: the scheme's port)."""
        default = DEFAULT_PORTS.get(scheme, 443)
        return self.hosts.allows(host, default if port is None else port, default)

    def check_url(self, url: httpx.URL) -> tuple[str, int]:
        """Refuse ``url`` unless its scheme, credentials, host and port are acceptable.

        Returns:
            The normalised host and the port the request goes to.

        Raises:
            InvalidToolInput: wrong scheme, credentials in the URL, or no host.
            ToolPermissionDenied: ``host:port`` not on the allow-list.
        """
        if url.scheme not in self._schemes:
            raise InvalidToolInput(f"URL scheme {url.scheme!r} is not allowed")
        if url.userinfo:
            raise InvalidToolInput("URLs with credentials are not allowed")
        if not url.host:
            raise InvalidToolInput(f"URL {str(url)[:200]!r} has no host")
        host = normalise_host(url.host)
        default = DEFAULT_PORTS[url.scheme]
        port = default if url.port is None else url.port
        if not self.hosts.allows(host, port, default):
            raise ToolPermissionDenied(f"host {host!r} port {port} is not on the allow-list")
        return host, port

    async def _check_destination(self, url: httpx.URL) -> _Hop:
        """Check ``url`` (:meth:`check_url`), resolve its host once and check every
        address; the hop connects to the first one.

        Raises:
            ToolPermissionDenied: a host, port or address that is not allowed.
            ToolExecutionFailed: the host does not resolve.
        """
        host, port = self.check_url(url)
        literal = parse_ip(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = await self._resolve(host, port)
        for address in addresses:
            problem = address_problem(address)
            if problem is not None and not self.internal.allows(host, port, address):
                raise ToolPermissionDenied(
                    f"host {host!r} resolves to {address}, a {problem} address; only "
                    "public addresses may be fetched unless allow_internal names "
                    f"'{host}:{port}' or the address's network"
                )
        return _Hop(url, host, port, addresses[0])

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            found: Sequence[str] = await self._resolver(host, port)
        except OSError as exc:
            raise ToolExecutionFailed(f"cannot resolve host {host!r}: {exc}") from exc
        addresses = [parse_ip(text) for text in found]
        valid = [address for address in addresses if address is not None]
        if not valid or len(valid) != len(addresses):
            raise ToolExecutionFailed(
                f"cannot resolve host {host!r}: got {list(found)[:5]!r}, not IP addresses"
            )
        return valid

    @property
    def retry_on(self) -> tuple[type[BaseException], ...]:
        """What counts as transient for the bus's retries: the HTTP client's transport
        errors (connect, read, protocol), never an answer with an error status."""
        import httpx

        return (httpx.TransportError, ConnectionError)

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """GET ``args["url"]``, following redirects that pass the same checks."""
        httpx = self._httpx
        try:
            url = httpx.URL(str(args["url"]))
        except httpx.InvalidURL as error:
            raise InvalidToolInput(f"invalid URL: {error}") from error
        origin = (url.scheme, normalise_host(url.host), url.port)
        async with httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self.request_timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            for _ in range(self.max_redirects + 1):
                hop = await self._check_destination(url)
                same_origin = (url.scheme, hop.host, url.port) == origin
                try:
                    result, location = await self._get(client, hop, same_origin)
                except httpx.HTTPError as exc:
                    raise ToolExecutionFailed(
                        f"GET {str(url)[:200]} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                if location is None:
                    return result
                try:
                    url = url.join(location)
                except httpx.InvalidURL as error:
                    raise ToolExecutionFailed(f"invalid redirect location: {error}") from error
        raise ToolExecutionFailed(f"more than {self.max_redirects} redirects")

    async def _get(
        self, client: httpx.AsyncClient, hop: _Hop, same_origin: bool
    ) -> tuple[dict[str, Any], str | None]:
        """One request to the hop's checked address: the result, or a redirect target."""
        url = hop.url
        headers = dict(self._headers) if same_origin else {}
        headers["host"] = url.netloc.decode("ascii")
        headers["accept-encoding"] = DECODABLE_ENCODINGS
        extensions: dict[str, Any] = {}
        if url.scheme == "https" and parse_ip(hop.host) is None:
            extensions["sni_hostname"] = hop.host
        pinned = url.copy_with(host=str(hop.address))
        async with client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
            if response.is_redirect and "location" in response.headers:
                return {}, response.headers["location"]
            body = await read_decoded_body(response, self.body_limits)
            return {
                "url": str(url),
                "status": response.status_code,
                "content_type": response.headers.get("content-type", ""),
                "text": body.content.decode(_charset(response), errors="replace"),
                "truncated": body.truncated,
            }, None
