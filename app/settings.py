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
    hub_timeout: float = Field(10.0, gt=0, le=120, description="seconds to wait for the hub before falling back")
    cache_mb: int = Field(512, ge=0, le=65536, description="trace cache size in MB")
    max_tokens: int = Field(256, ge=1, le=1024, description="longest prompt in tokens")
    max_chars: int = Field(4000, ge=1, le=100_000, description="longest prompt in characters")
