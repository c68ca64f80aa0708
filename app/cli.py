"""The `glassbox` command: serve the web app, trace a text in the terminal, build a graph, fetch a model."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.settings import Settings

# Nothing heavy is imported at the top (no numpy, onnx, onnxruntime, FastAPI): `glassbox --help` answers at
# once, and each worker process of `serve --workers N` (which imports this module first) starts quickly.

TOP = 10  # next-token candidates that `trace` prints
HEALTHCHECK_SECONDS = 30  # uvicorn kills a worker that does not answer its supervisor's ping within this
# What to do when a hub model cannot be had, per command (the error itself says what happened).
ADVICE = {
    "serve": "Start with --model demo (shipped with Glassbox) or --model /path/to/a/model/directory, or "
    "run 'glassbox download gpt2' on a connected machine and copy its Hugging Face cache here.",
    "trace": "Try --model demo (shipped with Glassbox), or run 'glassbox download gpt2' on a connected "
    "machine and copy its Hugging Face cache here.",
    "download": "Run it on a machine that reaches the hub and copy its Hugging Face cache "
    "(~/.cache/huggingface) here; meanwhile 'glassbox serve --model demo' needs no download.",
}
ADVICE["export"] = ADVICE["trace"]


class UsageError(Exception):
    """A mistake in what the user typed: printed as one sentence, exit code 2."""


def _settings(**overrides: Any) -> Settings:
    """Settings from GLASSBOX_* variables, with flags given on the command line taking precedence."""
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise UsageError(f"invalid setting ({problems})") from err


def _check_model(spec: str) -> None:
    from app.loading import check_model_spec

    try:
        check_model_spec(spec)
    except ValueError as err:
        raise UsageError(str(err)) from err


# ---- serve ----


def _env_name(field: str) -> str:
    return f"GLASSBOX_{field.upper()}"


def _export_to_env(settings: Settings) -> None:
    """Hand the settings to the app factory through the environment: every worker process reads them."""
    for field, value in settings.model_dump().items():
        os.environ[_env_name(field)] = str(value)


def _check_port(host: str, port: int) -> None:
    """Fail before loading the model when the address cannot be listened on (another server has it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as err:
            raise UsageError(
                f"cannot listen on {host}:{port} ({err.strerror}); choose another --port"
            ) from err


def serve(args: argparse.Namespace) -> int:
    """Start the web server."""
    fields = Settings.model_fields
    settings = _settings(**{name: getattr(args, name) for name in fields})
    _check_model(settings.model)
    if settings.fallback:
        _check_model(settings.fallback)
    _check_port(settings.host, settings.port)
    _export_to_env(settings)
    fallback = settings.fallback or "none"
    print(
        f"glassbox: starting on {settings.host}:{settings.port} with model {settings.model} (fallback "
        f"{fallback}); loading the model...",
        file=sys.stderr,
        flush=True,
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # The model is loaded (and its check trace run) here, before uvicorn starts: a model that cannot be
    # served stops with one message, not a traceback. One worker gets the loaded model; several workers
    # each load their own, from the graph built and checked here.
    from app.loading import load_for_serving, prepare

    target: Any = "app.main:create_app"
    if settings.workers == 1:
        from app.main import create_app

        target = create_app(settings, load_for_serving(settings))
    else:
        prepare(settings)
    import uvicorn

    from app.logs import logging_config  # uvicorn's, plus Glassbox's loggers; no query strings logged
    from app.server import server_options  # the head's size and time bounds, keep-alive

    uvicorn.run(
        target,
        factory=isinstance(target, str),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=logging_config(),
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        forwarded_allow_ips=settings.trusted_proxies,
        **server_options(settings),
    )
    return 0


# ---- trace ----


def trace(args: argparse.Namespace) -> int:
    """Tokenize a text, run the model once, print the tokens and the most likely next tokens."""
    from app.loading import resolve
    from model import GPT2, sample
    from model.sampling import DEFAULT_TEMPERATURE

    settings = _settings(model=args.model)
    _check_model(settings.model)
    loaded = resolve(settings.model, settings.hub_timeout)
    gpt2 = GPT2(loaded, threads=settings.threads)
    tokens = gpt2.tokenize(args.text)
    if not tokens:
        raise UsageError("the text is empty: give some words to trace")
    if len(tokens) > (most := gpt2.config.n_positions):
        raise UsageError(f"the text is {len(tokens)} tokens; {gpt2.name} reads at most {most}")
    result = sample(gpt2.trace([t.id for t in tokens]).logits, DEFAULT_TEMPERATURE, greedy=True)
    top = [(int(i), gpt2.tokenizer.token(int(i)).label, float(result.probs_all[i])) for i in result.top(TOP)]
    if args.json:
        report = {
            "model": gpt2.name,
            "source": loaded.description,
            "trained": loaded.trained,
            "tokens": [
                {"position": i, "id": t.id, "text": t.text, "label": t.label} for i, t in enumerate(tokens)
            ],
            "predictions": [{"id": i, "label": label, "probability": p} for i, label, p in top],
        }
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"model: {loaded.description}")
    if not loaded.trained:
        print("(untrained weights: the predictions below are noise)")
    print(f"\n{len(tokens)} tokens:\n  {'pos':>4}  {'id':>6}  token")
    for position, t in enumerate(tokens):
        print(f"  {position:>4}  {t.id:>6}  {t.label!r}")
    print(f"\nmost likely next tokens:\n  {'rank':>4}  {'prob':>8}  {'id':>6}  token")
    for rank, (i, label, p) in enumerate(top, 1):
        print(f"  {rank:>4}  {_percent(p):>8}  {i:>6}  {label!r}")
    return 0


def _percent(p: float) -> str:
    """Readable at both ends: 42.1 %, 0.37 %, 0.0021 %."""
    return f"{p:.1%}" if p >= 0.01 else f"{p * 100:.2g}%"


# ---- export ----


def export(args: argparse.Namespace) -> int:
    """Build the model's ONNX graph into the cache (or find it there) and say where it is."""
    from app.loading import resolve
    from model.runtime import ensure_model_graph

    settings = _settings(model=args.model)
    _check_model(settings.model)
    loaded = resolve(settings.model, settings.hub_timeout)
    start = time.perf_counter()
    path, built = ensure_model_graph(loaded)
    seconds = time.perf_counter() - start
    what = f"built in {seconds:.1f} s" if built else "already built (found in the cache)"
    print(f"ONNX graph of {loaded.description}: {what}\n{path}")
    return 0


# ---- download ----


def download(args: argparse.Namespace) -> int:
    """Fetch a hub model into the Hugging Face cache, where `serve`, `trace` and `export` find it."""
    from huggingface_hub import constants

    from model.sources import SYNTHETIC, cached_hub_dir, hub_repo
    from model.sources import download as fetch

    spec = args.model.strip()
    _check_model(spec)
    repo = None if spec in SYNTHETIC or spec == "demo" or Path(spec).expanduser().is_dir() else hub_repo(spec)
    if repo is None:
        print(f"{spec!r} needs no download: it ships with Glassbox or is a local directory.")
        return 0
    if (cached := cached_hub_dir(repo)) is not None:
        print(f"{repo} is already in the Hugging Face cache:\n{cached}")
        return 0
    print(f"downloading {repo} into the Hugging Face cache ({constants.HF_HUB_CACHE})", file=sys.stderr)
    path = fetch(repo, timeout=_settings().hub_timeout)
    print(f"{repo} is in the Hugging Face cache:\n{path}")
    return 0


# ---- the parser ----

SERVE_HELP = """\
Start the web server and print the address to open. Every option is also an environment variable
(GLASSBOX_MODEL, GLASSBOX_PORT, ...); a flag wins over its variable.

The model: a hub model already in the Hugging Face cache is used at once; otherwise it is downloaded.
When the hub cannot be reached (or HF_HUB_OFFLINE=1), the fallback model is served, with a notice on
every page saying so and how to get GPT-2."""

TRACE_HELP = """\
Run the model once on TEXT and print its tokens (ids and labels) and the 10 most likely next tokens.
Example: glassbox trace --model tiny "Data visualization empowers users to" """

EXPORT_HELP = """\
Build the model's ONNX graph (every activation exposed) and cache it, so the first `serve` starts
fast. Prints where the graph is and whether it was built now or found. The cache is $GLASSBOX_CACHE,
else ~/.cache/glassbox."""

DOWNLOAD_HELP = """\
Download a model from the Hugging Face hub into its cache (HF_HOME, ~/.cache/huggingface by default),
with a progress bar. Copy that cache to a machine without internet and Glassbox finds the model there."""

METAVARS = {
    "model": "NAME|PATH",
    "fallback": "NAME",
    "host": "ADDRESS",
    "cache_mb": "MB",
}
MODEL_HELP = "gpt2, distilgpt2, gpt2-medium, a hub owner/name, a model directory, demo, tiny or random-gpt2"


def _metavar(name: str, annotation: Any) -> str:
    if name.endswith("timeout"):
        return "SECONDS"
    return {int: "N", float: "NUMBER"}.get(annotation, name.upper())


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Settings field, help taken from its description; unset flags defer to the environment."""
    types: dict[Any, Callable[[str], Any]] = {int: int, float: float, str: str}
    for name, field in Settings.model_fields.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=types.get(field.annotation, str),
            default=None,
            metavar=METAVARS.get(name, _metavar(name, field.annotation)),
            help=f"{field.description} [env {_env_name(name)}; default {field.default!r}]",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glassbox",
        description="Glassbox shows what GPT-2 computes, number by number, in a web page.",
        epilog="Start with: glassbox serve   (then open the address it prints)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    formatter = argparse.RawDescriptionHelpFormatter

    p = commands.add_parser(
        "serve", help="start the web server", description=SERVE_HELP, formatter_class=formatter
    )
    _add_settings_flags(p)
    p.set_defaults(run=serve)

    p = commands.add_parser(
        "trace", help="trace one text in the terminal", description=TRACE_HELP, formatter_class=formatter
    )
    p.add_argument("text", metavar="TEXT", help="the text to run through the model")
    p.add_argument("--model", default=None, metavar="NAME|PATH", help=f"{MODEL_HELP} [env GLASSBOX_MODEL]")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=trace)

    p = commands.add_parser(
        "export", help="build and cache the ONNX graph", description=EXPORT_HELP, formatter_class=formatter
    )
    p.add_argument("--model", default=None, metavar="NAME|PATH", help=f"{MODEL_HELP} [env GLASSBOX_MODEL]")
    p.set_defaults(run=export)

    p = commands.add_parser(
        "download",
        help="download a model from the Hugging Face hub",
        description=DOWNLOAD_HELP,
        formatter_class=formatter,
    )
    p.add_argument("model", metavar="MODEL", help="gpt2, distilgpt2, gpt2-medium or a hub owner/name")
    p.set_defaults(run=download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `glassbox` console script; returns the exit code."""
    args = build_parser().parse_args(argv)  # --help and usage mistakes end here, before any heavy import
    if args.run is not serve:  # serve sets up its own logging
        logging.basicConfig(
            level=logging.INFO if args.run is not trace else logging.WARNING,
            format="%(message)s",
            stream=sys.stderr,
        )
    from model.sources import BrokenModel, ModelUnavailable

    try:
        return int(args.run(args))
    except UsageError as err:
        print(f"glassbox: {err}", file=sys.stderr)
        return 2
    except BrokenModel as err:  # its message names the file and says what to do
        print(f"glassbox: {err}", file=sys.stderr)
        return 2
    except ModelUnavailable as err:
        print(f"glassbox: {err}. {ADVICE[args.run.__name__]}", file=sys.stderr)
        return 2
    except ValueError as err:  # a model directory that is not GPT-2, a text the model cannot take, ...
        print(f"glassbox: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `glassbox trace ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
