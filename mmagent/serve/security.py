"""Who may reach the server, and from where.

    binding   loopback by default. Beyond it a server needs an API key (else anyone on the network
              runs the model and the tools), and the key needs TLS (else it crosses the network in
              clear text); `--insecure` says the network is yours and lifts both.
    keys      `Authorization: Bearer <key>` on every /v1/ route when a key is set, compared in
              constant time; the page itself (/, its JS and CSS) holds no secret and is public.
    hosts     a loopback-bound server answers only requests addressed to a loopback name (the
              Host header), so a web page whose DNS name is rebound to 127.0.0.1 cannot drive it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from mmagent.errors import UserError
from mmagent.serve.openai_protocol import ApiError

LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


class BindRefused(ValueError, UserError):
    """A bind address this server refuses (see the module docstring)."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # any other name may resolve anywhere
        return False


def check_bind(host: str, *, api_key: str | None, tls: bool, insecure: bool) -> None:
    """Refuses to serve beyond loopback without a key, or with a key but without TLS, unless `insecure`."""
    if is_loopback(host) or insecure:
        return
    if not api_key:
        raise BindRefused(f"refusing to bind {host} without an API key: anyone who can reach it could run the model and "
                          "the tools. Set --api-key (or MMAGENT_API_KEY), or pass --insecure if this network is yours")
    if not tls:
        raise BindRefused(f"refusing to bind {host} with an API key but without TLS: the key would cross the network in "
                          "clear text. Give --ssl-certfile and --ssl-keyfile, or pass --insecure if this network is yours")


def _host_of(header: str) -> str:
    """The host part of a Host header (`[::1]:8000` -> `::1`, `127.0.0.1:8000` -> `127.0.0.1`)."""
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware applying the Host and API-key rules before any route runs."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, loopback_only: bool) -> None:
        self.app, self.api_key, self.loopback_only = app, api_key, loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.loopback_only and not is_loopback(_host_of(headers.get("host", ""))):
            return await _reject(send, ApiError(403, "this server answers only requests addressed to a loopback name "
                                                "(127.0.0.1, localhost, [::1])", code="host_not_allowed"))
        if self.api_key and scope["path"].startswith("/v1/"):
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.api_key.encode()):
                return await _reject(send, ApiError(401, "missing or wrong API key: send Authorization: Bearer <key>",
                                                    code="invalid_api_key"), {"www-authenticate": "Bearer"})
        await self.app(scope, receive, send)


async def _reject(send: Send, err: ApiError, extra: dict[str, str] | None = None) -> None:
    body = json.dumps(err.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
