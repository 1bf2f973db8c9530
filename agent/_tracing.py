"""Traces of runs: a `Tracer` seam passed explicitly, OpenTelemetry behind it when asked for.

Guarantees:
- Off unless asked for: `tracing_from_env` returns a `NoTracer` (which imports nothing and
  records nothing) unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, and also when the `otel` extra is not
  installed or `OTEL_SDK_DISABLED=true`. Charter never touches OpenTelemetry's global
  tracer provider: spans go only to the provider a `Tracer` was given.
- No text unless asked for: prompt and reply text (and exception messages, which can quote
  either) reach a span only with content capture, which is off by default and switched on
  by `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` (the variable the GenAI
  instrumentations read) or by the caller (`charter run --trace-content`).
- A span that an exception leaves has status ERROR, naming the exception's type.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from principles import Run

Value = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]
Attributes = Mapping[str, Value]

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
CAPTURE_VAR = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = {"true", "1", "yes", "span_only", "event_only", "span_and_event"}


class Span(Protocol):
    """The open span a `Tracer.span` block yields."""

    def set(self, attributes: Attributes) -> None:
        """Add attributes to the span."""
        ...

    def event(self, name: str, attributes: Attributes) -> None:
        """Add a timestamped event to the span."""
        ...


class Tracer(Protocol):
    """Where a run's spans go. Spans opened inside another's block are its children."""

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded at all (callers skip work that only feeds spans)."""
        ...

    @property
    def capture_content(self) -> bool:
        """Whether prompt and reply text may be recorded."""
        ...

    def span(
        self, name: str, attributes: Attributes | None = None
    ) -> contextlib.AbstractContextManager[Span]:
        """A span around the block; ERROR if an exception leaves it."""
        ...

    def close(self) -> None:
        """Send what is buffered and release the exporter (a no-op for a borrowed provider)."""
        ...


class _NoSpan:
    def set(self, attributes: Attributes) -> None:
        return None

    def event(self, name: str, attributes: Attributes) -> None:
        return None


class NoTracer:
    """Records nothing and imports nothing: the default everywhere."""

    enabled = False
    capture_content = False

    def span(
        self, name: str, attributes: Attributes | None = None
    ) -> contextlib.AbstractContextManager[Span]:
        return contextlib.nullcontext(_NoSpan())

    def close(self) -> None:
        return None


class _OtelSpan:
    def __init__(self, span: Any) -> None:
        self._span = span

    def set(self, attributes: Attributes) -> None:
        self._span.set_attributes(dict(attributes))

    def event(self, name: str, attributes: Attributes) -> None:
        self._span.add_event(name, dict(attributes))


class OtelTracer:
    """Spans on an OpenTelemetry SDK `TracerProvider` (tests pass one with an in-memory
    exporter). With `owns_provider`, `close` shuts the provider down, flushing its exporter."""

    def __init__(
        self, provider: Any, *, capture_content: bool = False, owns_provider: bool = False
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            release: str | None = version("charter")
        except PackageNotFoundError:
            release = None
        self._provider = provider
        self._tracer = provider.get_tracer("charter", release)
        self._owns = owns_provider
        self.capture_content = capture_content
        self.enabled = True

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes | None = None) -> Iterator[Span]:
        from opentelemetry.trace import Status, StatusCode

        with self._tracer.start_as_current_span(
            name,
            attributes=dict(attributes or {}),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield _OtelSpan(span)
            except BaseException as exc:
                kind = type(exc).__name__
                if self.capture_content:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, f"{kind}: {exc}"))
                else:  # the message may quote a prompt or a reply
                    span.add_event("exception", {"exception.type": kind})
                    span.set_status(Status(StatusCode.ERROR, kind))
                raise

    def close(self) -> None:
        if self._owns:
            self._provider.shutdown()


def capture_requested(environ: Mapping[str, str]) -> bool:
    """Whether the environment switches content capture on."""
    return environ.get(CAPTURE_VAR, "").strip().lower() in _CAPTURE_ON


def tracing_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    capture_content: bool | None = None,
    warn: Callable[[str], None] = lambda _text: None,
) -> Tracer:
    """An OTLP-exporting tracer when an OTLP endpoint is set, else a `NoTracer`.

    The exporter (OTLP over HTTP/protobuf) reads the standard `OTEL_EXPORTER_OTLP_*`
    variables itself; `OTEL_SERVICE_NAME` names the service (default `charter`).
    `capture_content` overrides the environment's choice when given. `warn` hears why
    tracing stays off although an endpoint is set.
    """
    env = os.environ if environ is None else environ
    if not any(env.get(var) for var in ENDPOINT_VARS):
        if capture_content:
            warn("content capture asked for, but no OTLP endpoint is set: no traces")
        return NoTracer()
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return NoTracer()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        warn(
            "an OTLP endpoint is set but OpenTelemetry is not installed "
            "(pip install 'charter[otel]'): no traces"
        )
        return NoTracer()
    named = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "charter"}
    provider = TracerProvider(resource=Resource.create(named))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    capture = capture_requested(env) if capture_content is None else capture_content
    return OtelTracer(provider, capture_content=capture, owns_provider=True)


def run_attributes(run: Run) -> dict[str, Value]:
    """What a run span says about its run: never a prompt or a reply."""
    return {
        "charter.run.id": run.id,
        "charter.constitution": run.constitution,
        "charter.run.mode": run.config.mode,
        "charter.run.model": run.config.model,
        "charter.run.seed": run.config.seed,
        "charter.run.iterations": run.config.iterations,
        "charter.run.resumed": bool(run.steps_done),
    }


def step_attributes(result: Mapping[str, Any]) -> dict[str, Value]:
    """A step's recorded result as counts: numbers as they are, lists as their length
    (`<key>.count`); strings and nested objects are left out (they can hold drafted text)."""
    found: dict[str, Value] = {}
    for key, value in result.items():
        if isinstance(value, bool | int | float):
            found[f"charter.step.{key}"] = value
        elif isinstance(value, list | tuple):
            found[f"charter.step.{key}.count"] = len(value)
    return found
