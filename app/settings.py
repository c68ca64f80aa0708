"""Server settings: every option is a `glassbox serve` flag and a GLASSBOX_* environment variable."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Read from the environment (GLASSBOX_MODEL, GLASSBOX_PORT, ...); flags override them."""

    model_config = SettingsConfigDict(env_prefix="GLASSBOX_", extra="ignore")

    model: str = Field("gpt2", description="hub name, local directory, 'demo', 'tiny' or 'random-gpt2'")
    fallback: str = Field("demo", description="model served when `model` cannot be had ('' to fail instead)")
    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0 for a classroom)")
    port: int = Field(8000, ge=1, le=65535, description="TCP port")
    workers: int = Field(1, ge=1, le=64, description="server processes; each holds its own copy of the model")
    threads: int = Field(0, ge=0, le=256, description="onnxruntime threads per model run (0: one per core)")
    hub_timeout: float = Field(10.0, gt=0, le=120, description="seconds to wait for the hub, then fall back")
    cache_mb: int = Field(512, ge=0, le=65536, description="trace cache size in MB")
    max_tokens: int = Field(256, ge=1, le=1024, description="longest prompt in tokens")
    max_chars: int = Field(4000, ge=1, le=100_000, description="longest prompt in characters")
    max_trace_mb: int = Field(
        320,
        ge=0,
        le=65536,
        description="largest trace of one text in MB: longer texts are refused (0: no bound)",
    )
    public_url: str = Field(
        "",
        pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$",
        description="the address students use, e.g. https://glassbox.example.edu: every permalink starts "
        "with it (without it, only a Host header naming this server is used; others get relative links)",
    )
    allowed_hosts: str = Field(
        "",
        description="comma-separated host names permalinks may be built from when public_url is unset "
        "(default: localhost and this machine's names; '*' trusts any Host header)",
    )

    # A lecture hall at once (app/admission.py, app/limits.py): back-pressure, limits, an optional rate limit.
    concurrency: int = Field(4, ge=1, le=256, description="requests worked on at once per worker process")
    max_running: int = Field(1, ge=1, le=64, description="model runs at once per worker process")
    queue_size: int = Field(64, ge=0, le=10_000, description="requests that may wait for a turn, then 503")
    queue_timeout: float = Field(15.0, gt=0, le=600, description="seconds a request may wait, then HTTP 503")
    export_concurrency: int = Field(
        1, ge=1, le=64, description="downloads (PNG, SVG, CSV, JSON) worked on at once per worker process"
    )
    export_queue: int = Field(16, ge=0, le=10_000, description="downloads that may wait for a turn, then 503")
    export_cache_mb: int = Field(
        32, ge=0, le=4096, description="finished downloads kept for repeat requests (MB)"
    )
    header_timeout: float = Field(
        10.0, gt=0, le=600, description="seconds a client has to send a request's whole header, then closed"
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, le=600, description="seconds an idle kept-alive connection stays open after an answer"
    )
    max_url: int = Field(8192, ge=256, le=1_000_000, description="longest URL (path + query) in bytes")
    max_body: int = Field(1024, ge=0, le=10_000_000, description="largest request body in bytes")
    rate_limit: float = Field(0.0, ge=0, le=10_000, description="requests/second per client IP (0: off)")
    rate_burst: int = Field(60, ge=1, le=100_000, description="requests a client may send in a burst")
    page_cache_mb: int = Field(32, ge=0, le=4096, description="finished pages kept for repeat requests (MB)")
    piece_cache_mb: int = Field(
        64, ge=0, le=4096, description="drawn parts of pages shared by students on one text and view (MB)"
    )

    # Interventions (app/service/intervene.py): the sweeps of many runs, bounded
    sweep_tokens: int = Field(
        16,
        ge=1,
        le=1024,
        description="longest text (tokens) for which the page sweeps every head, or every patch of a pair",
    )
    sweep_concurrency: int = Field(1, ge=1, le=16, description="sweeps computed at once per worker process")
    sweep_wait: float = Field(
        10.0, gt=0, le=600, description="seconds a page waits for a sweep's turn, then is drawn without it"
    )
    sweep_cache_mb: int = Field(8, ge=0, le=1024, description="finished sweeps kept for repeat requests (MB)")

    # Behind a proxy (deploy/: nginx in front of several replicas)
    trusted_proxies: str = Field(
        "127.0.0.1,::1",
        description="addresses or networks (comma-separated; '*' for any) whose X-Forwarded-For header "
        "names the client, for the rate limit and the logs",
    )
    replica_header: bool = Field(
        False, description="send X-Glassbox-Replica: <host name>:<port> with every answer, to see routing"
    )
