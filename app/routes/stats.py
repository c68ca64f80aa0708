"""`/api/stats`: how this worker process is doing: trace cache, model queue, refusals, memory."""

from __future__ import annotations

import os
import resource
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

router = APIRouter()


class CacheCounts(BaseModel):
    """What every cache reports (see `counts`); each kind says what its hits and misses are."""

    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    hit_rate: float = Field(description="hits / (hits + misses); 0 before the first lookup")


class CacheStats(CacheCounts):
    hits: int = Field(description="trace lookups answered from the cache (or by a run already under way)")
    misses: int = Field(description="trace lookups that ran the model")


class QueueOut(BaseModel):
    running: int
    waiting: int
    max_running: int
    queue_size: int
    runs: int = Field(description="model runs finished")
    texts: int = Field(
        description="texts those runs traced: more than runs when students waiting at once shared a run"
    )
    refused: int = Field(description="answered 503: the queue was full")
    timed_out: int = Field(description="answered 503: waited longer than queue_timeout")
    mean_run_ms: float = Field(description="moving average of one model run")
    run_cpu_s: float = Field(
        description="CPU seconds the model runs took on the threads that ran them (all of it with threads=1; "
        "with more, onnxruntime's own threads are not counted)"
    )


class PageCacheStats(CacheCounts):
    hits: int = Field(description="pages answered with stored bytes")
    misses: int = Field(description="pages drawn")


class PieceCacheStats(CacheCounts):
    hits: int = Field(description="pages that reused drawn parts (tokens, overview, panel, lens)")
    misses: int = Field(description="pages whose parts were drawn")


class LineOut(BaseModel):
    busy: int = Field(description="requests being worked on")
    waiting: int = Field(description="requests waiting for their turn")
    concurrency: int
    refused: int = Field(description="answered 503: the line was full or the wait too long")


class SweepStats(CacheCounts):
    computed: int = Field(description="sweeps computed (each many model runs)")
    refused: int = Field(description="sweeps left out of a page: no turn in time, or the run queue full")


class Stats(BaseModel):
    model: str
    pid: int = Field(description="this worker process (each worker has its own caches and queue)")
    cache: CacheStats
    pages: PageCacheStats | None = Field(description="the finished-page cache; null when it is off")
    pieces: PieceCacheStats | None = Field(description="the cache of drawn page parts; null when it is off")
    queue: QueueOut
    line: LineOut
    lanes: dict[str, LineOut] = Field(
        description="every lane of requests: the line, the biggest answers (heavy), the downloads (exports), "
        "the views that sweep many runs (sweeps)"
    )
    exports: CacheCounts | None = Field(description="finished downloads kept; null when off")
    sweeps: SweepStats | None = Field(description="sweeps (which heads matter, patching grids); null loading")
    rate_limited: int = Field(description="requests answered 429 (0 when the rate limit is off)")
    rss_mb: float = Field(description="this worker process's resident memory now")
    peak_rss_mb: float = Field(description="its highest resident memory so far")


def memory_mb() -> tuple[float, float]:
    """Resident memory of this process now and at its peak, in MB (VmRSS and VmHWM on Linux)."""
    status = Path("/proc/self/status")
    if status.is_file():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        kb = [int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")]
        return kb[0] / 1024, kb[1] / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return peak, peak


def rate(hits: int, misses: int) -> float:
    return round(hits / (hits + misses), 4) if hits + misses else 0.0


def counts(cache: Any) -> dict[str, Any]:
    """What every cache reports: its size, its bound and how often it answered."""
    hits, misses = cache.hits, cache.misses
    sizes = {"entries": len(cache), "bytes": cache.nbytes, "max_bytes": cache.max_bytes}
    return {**sizes, "hits": hits, "misses": misses, "hit_rate": rate(hits, misses)}


def lane_out(lane: Any) -> LineOut:
    return LineOut(
        busy=lane.busy, waiting=len(lane.waiting), concurrency=lane.concurrency, refused=lane.refused
    )


def sweep_stats(sweeps: Any) -> SweepStats:
    return SweepStats(**counts(sweeps.cache), computed=sweeps.computed, refused=sweeps.refused)


@router.get("/api/stats", response_model=Stats, tags=["health"])
def stats(request: Request) -> Stats:
    """How this worker is doing: trace cache hit rate, model queue, refusals and memory."""
    serving = getattr(request.app.state, "serving", None)
    if serving is None:
        raise HTTPException(503, "the model is still loading")
    cache = serving.gpt2.cache
    limiter = request.app.state.rate_limiter
    rss, peak = memory_mb()
    pages = getattr(request.app.state, "page_cache", None)
    site = getattr(request.app.state, "site", None)
    pieces = site.pieces if site is not None else None
    line = request.app.state.work_line
    return Stats(
        model=serving.gpt2.name,
        pid=os.getpid(),
        cache=CacheStats(**counts(cache)),
        pages=None if pages is None else PageCacheStats(**counts(pages)),
        pieces=None if pieces is None else PieceCacheStats(**counts(pieces)),
        queue=QueueOut(**asdict(request.app.state.run_queue.stats()), texts=serving.gpt2.texts),
        line=lane_out(line),
        lanes={name: lane_out(lane) for name, lane in request.app.state.lanes.items()},
        exports=None if site is None or site.exports is None else CacheCounts(**counts(site.exports)),
        sweeps=None if site is None else sweep_stats(site.sweeps),
        rate_limited=limiter.refused if limiter is not None else 0,
        rss_mb=round(rss, 1),
        peak_rss_mb=round(peak, 1),
    )
