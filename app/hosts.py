"""Where permalinks point: the address students copy from the share box, and the links inside exports.

A request's Host header is whatever the client sent, so it is never trusted blindly (`Host: evil.example`
must not end up in a link a teacher projects). With `public_url` set (`--public-url https://glassbox.example.edu`)
every permalink starts with it. Without it, the Host header is used only when it names this server: one of
`allowed_hosts`, or by default localhost, this machine's names, the address it listens on and the address the
request arrived at (a laptop's LAN address in a classroom). Any other Host gets relative links ("/?text=…"),
which still work when pasted into the same site.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

from app.settings import Settings

LOCAL = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class PublicAddress:
    public_url: str  # "" when not configured
    allowed: frozenset[str]  # host names (lower case, no port) the Host header may name

    @classmethod
    def from_settings(cls, settings: Settings) -> PublicAddress:
        names = {h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()}
        if not names:
            names = set(LOCAL)
            with contextlib.suppress(OSError):
                names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
            if settings.host not in ("", "0.0.0.0", "::"):
                names.add(settings.host.lower())
        return cls(public_url=settings.public_url.rstrip("/"), allowed=frozenset(names))

    def base(self, scheme: str, host_header: str | None, server: str | None = None) -> str:
        """What permalinks start with for a request: the public URL, the checked Host, or "" (relative).
        `server` is the local address the request arrived at."""
        if self.public_url:
            return self.public_url
        if not host_header:
            return ""
        name = host_header.strip().lower()
        if name.startswith("["):  # [::1]:8000
            name = name[1 : name.find("]")] if "]" in name else ""
        else:
            name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
        if name in self.allowed or "*" in self.allowed or (server is not None and name == server.lower()):
            return f"{scheme}://{host_header.strip()}"
        return ""
