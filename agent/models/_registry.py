"""A string-keyed registry of backends: `load_backend("hf:./my-model")`.

A backend module registers a factory per URI scheme with `@register_backend("scheme")`.
Factories import their heavy libraries (torch, transformers, xgrammar) inside themselves,
so importing this package, listing schemes or parsing a URI never loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from agent.models._errors import UnknownBackend
from agent.models._types import Backend

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
    scheme, _, target = uri.strip().partition(":")
    if scheme not in _FACTORIES:
        raise UnknownBackend(uri, [f"{s}:" if s != "default" else s for s in backend_schemes()])
    return scheme, target


def load_backend(uri: str, **options: Any) -> Backend:
    """Build the backend a URI names; `options` go to its factory (dtype, threads, api_key...)."""
    scheme, target = parse_uri(uri)
    return _FACTORIES[scheme](target, **options)
