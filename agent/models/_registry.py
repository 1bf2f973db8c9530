"""A string-keyed registry of backends: `load_backend("hf:./my-model")`.

A backend module registers a factory per URI scheme with `@register_backend("scheme")`.
Factories import their heavy libraries (torch, transformers, xgrammar) inside themselves,
so importing this package, listing schemes or parsing a URI never loads them.

A URI may end with options, as a query: `default?score_dtype=bfloat16&threads=1`. They go
to the factory with the keyword options `load_backend` is given (those win), their values
read as booleans (`true`, `false`), integers, decimals or else text; they stay part of the
backend's URI, the name its calibrations and measurements are kept under.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

from agent.models._errors import UnknownBackend
from agent.models._types import Backend
from principles import InvalidInput

BackendFactory = Callable[..., Backend]
"""`factory(target, **options)` where `target` is the URI after `scheme:`."""

F = TypeVar("F", bound=BackendFactory)

_FACTORIES: dict[str, BackendFactory] = {}


def register_backend(scheme: str) -> Callable[[F], F]:
    """Register `factory` for URIs `scheme:<target>` (or the bare word `scheme`)."""
    if not scheme.isidentifier():
        raise ValueError(f"backend scheme must be a word, got {scheme!r}")

    def decorator(factory: F) -> F:
        _FACTORIES[scheme] = factory
        return factory

    return decorator


def backend_schemes() -> list[str]:
    """The registered schemes, sorted."""
    return sorted(_FACTORIES)


def parse_uri(uri: str) -> tuple[str, str]:
    """Split a backend URI into (scheme, target); raise `UnknownBackend` for a foreign scheme.

    `default` and `scripted` need no target; `openai:http://host:8000/v1#model` keeps
    everything after the first colon as its target.
    """
    body, _ = split_options(uri)
    scheme, _, target = body.partition(":")
    if scheme not in _FACTORIES:
        raise UnknownBackend(uri, [f"{s}:" if s != "default" else s for s in backend_schemes()])
    return scheme, target


_OPTIONS = re.compile(r"[A-Za-z_]\w*=[^&=?#]*(&[A-Za-z_]\w*=[^&=?#]*)*")


def split_options(uri: str) -> tuple[str, dict[str, Any]]:
    """The URI without its options, and the options (see the module docstring). Only a
    last `?` followed by `name=value` pairs starts options, so a server URL keeps its own."""
    uri = uri.strip()
    body, sep, query = uri.rpartition("?")
    if not sep or not _OPTIONS.fullmatch(query):
        return uri, {}
    options = dict(pair.split("=", 1) for pair in query.split("&"))
    return body, {name: _value(text) for name, text in options.items()}


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_options(
    options: dict[str, Any], accepts: Callable[..., Any], uri: str, internal: tuple[str, ...] = ()
) -> None:
    """Raise `InvalidInput` naming the options that `accepts` (a backend class) does not take
    as keywords, and those it offers (all but the `internal` ones, set by code, not URIs)."""
    params = inspect.signature(accepts).parameters
    accepted = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n != "uri"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        offered = ", ".join(sorted(accepted - set(internal)))
        raise InvalidInput(f"{uri}: unknown option {', '.join(unknown)} (options: {offered})")


def load_backend(uri: str, **options: Any) -> Backend:
    """Build the backend a URI names; `options` (dtype, threads, api_key...) go to its
    factory after the URI's own options, which stay in the backend's URI."""
    scheme, target = parse_uri(uri)
    body, given = split_options(uri)
    if "api_key" in given:
        raise InvalidInput(
            "an API key does not go in a model URI (URIs are stored and shown): "
            "set $CHARTER_OPENAI_API_KEY"
        )
    backend = _FACTORIES[scheme](target, **{**given, **options})
    if given:
        backend.uri = f"{backend.uri}?{uri.strip()[len(body) + 1 :]}"
    return backend
