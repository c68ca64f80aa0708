"""CLI tests run against tmp caches and a loopback hub, never the real one."""

from tests.sources.fakehub import hub, isolated

__all__ = ["hub", "isolated"]
