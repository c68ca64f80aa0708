"""Logging that keeps what students type private: access lines name the path, never the query string.

Every control (the text included) travels in the URL, and uvicorn's access log writes the whole URL. The
`HideQuery` filter cuts it at the `?`. `create_app` puts it on the `uvicorn.access` logger itself, so any
way of starting the server is covered; `logging_config()` is uvicorn's own configuration with that filter
and Glassbox's loggers, for `uvicorn.run(..., log_config=logging_config())`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

ACCESS_LOGGER = "uvicorn.access"


class HideQuery(logging.Filter):
    """Drop the query string from uvicorn's access lines: `GET /?text=secret` is logged as `GET /`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn logs: '%s - "%s %s HTTP/%s" %d' % (client, method, path with query, version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(path := args[2], str):
            record.args = (*args[:2], path.split("?", 1)[0], *args[3:])
        return True


def hide_queries() -> None:
    """Put HideQuery on uvicorn's access logger (once), whatever configured the logging."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, HideQuery) for f in logger.filters):
        logger.addFilter(HideQuery())


def logging_config() -> dict[str, Any]:
    """uvicorn's logging configuration, with HideQuery on the access log and Glassbox's loggers added."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_query"] = {"()": HideQuery}
    config["loggers"][ACCESS_LOGGER]["filters"] = ["hide_query"]
    for name in ("app", "model"):
        config["loggers"][name] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
