"""`charter models list | info | pull`: what models are available, cached, and how big.

Thin over `agent.models` (`list_local_models`, `describe_model`, `pull_model`); data goes
to stdout, progress to stderr. Nothing here imports torch at import time: only `pull`
converts a model, and it imports transformers inside the library call.
"""

from __future__ import annotations

import json

import typer

from agent.models import ModelEntry, describe_model, list_local_models, pull_model

app = typer.Typer(name="models", help="Language models: list, describe, and cache them.")


def human_size(size: int) -> str:
    """Bytes as a short human figure (1.2 GB, 540 MB, 0 B)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _entry_lines(entry: ModelEntry) -> list[str]:
    return [
        f"uri:         {entry.uri}",
        f"backend:     {entry.backend}",
        f"description: {entry.description}",
        f"source:      {entry.source or '-'}",
        f"cache dir:   {entry.cache_dir or '-'}",
        f"cached:      {'yes' if entry.cached else 'no'}",
        f"size:        {human_size(entry.size_bytes)}",
    ]


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Models available on this machine: the default model and converted GGUF files."""
    entries = list_local_models()
    if as_json:
        typer.echo(json.dumps([e.model_dump() for e in entries], indent=2))
        return
    width = max(len(e.uri) for e in entries)
    typer.echo(f"{'URI':<{width}}  {'CACHED':<6}  {'SIZE':>9}  DESCRIPTION")
    for e in entries:
        cached = "yes" if e.cached else "no"
        typer.echo(f"{e.uri:<{width}}  {cached:<6}  {human_size(e.size_bytes):>9}  {e.description}")


@app.command("info")
def info_command(
    uri: str = typer.Argument(..., help="A backend URI: default, hf:..., gguf:..., openai:..."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What a model URI refers to, where it is cached and its size (without loading it)."""
    entry = describe_model(uri)
    typer.echo(entry.model_dump_json(indent=2) if as_json else "\n".join(_entry_lines(entry)))


@app.command("pull")
def pull_command(
    uri: str = typer.Argument("default", help="default, or gguf:<file>."),
) -> None:
    """Convert and cache a local model so later loads are fast."""
    typer.echo(f"preparing {uri} ...", err=True)
    entry = pull_model(uri)
    typer.echo("\n".join(_entry_lines(entry)))
