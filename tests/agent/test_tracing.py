"""Runs as OpenTelemetry traces: the span tree, the GenAI attributes, content capture only
when asked for, and nothing at all (not even an import) without an OTLP endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agent import (
    NoTracer,
    OtelTracer,
    TracedBackend,
    loop_backend,
    open_backend,
    start_run,
    tracing_from_env,
)
from agent._traced import DETAILS_EVENT
from agent.models import (
    CachedBackend,
    ChatMessage,
    GenerationParams,
    MemoryCallCache,
    ScriptedBackend,
    exposes_features,
)
from principles import STEPS, ModelError, Run, default_seed
from store import Store
from tests.agent.test_loop_runs import config

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(str(tmp_path / "c.db")) as s:
        s.init(default_seed())
        yield s


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def tracer(exporter: InMemorySpanExporter, *, capture_content: bool = False) -> OtelTracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelTracer(provider, capture_content=capture_content)


def traced_run(
    store: Store, exporter: InMemorySpanExporter, *, capture_content: bool = False
) -> tuple[Run, list[ReadableSpan]]:
    run = start_run(
        store,
        loop_backend(),
        config(iterations=1, tasks_limit=12, train_per_iteration=3),
        tracer=tracer(exporter, capture_content=capture_content),
    )
    return run, list(exporter.get_finished_spans())


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan | None:
    ids = {s.context.span_id: s for s in spans if s.context is not None}
    return ids.get(span.parent.span_id) if span.parent is not None else None


def texts_in(span: ReadableSpan) -> list[str]:
    """Every string a span carries: attributes, event attributes, status description."""
    found = [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        found += [str(v) for v in (event.attributes or {}).values()]
    return [*found, span.status.description or ""]


def model_calls(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name")]


def test_a_traced_run_nests_iterations_steps_and_model_calls_under_the_run(
    store: Store, exporter: InMemorySpanExporter
) -> None:
    run, spans = traced_run(store, exporter)
    [root] = [s for s in spans if s.name == "charter.run"]
    assert root.parent is None and root.status.status_code == StatusCode.UNSET
    expected = {
        "charter.run.id": run.id,
        "charter.constitution": "default",
        "charter.run.mode": "review",
        "charter.run.model": "scripted:loop",
        "charter.run.seed": 7,
        "charter.run.status": "completed",
    }
    assert {k: (root.attributes or {}).get(k) for k in expected} == expected
    [iteration] = [s for s in spans if s.name == "charter.iteration"]
    assert parent_of(iteration, spans) is root
    assert (iteration.attributes or {})["charter.iteration"] == 1
    steps = [s for s in spans if s.name.startswith("charter.step.")]
    assert [s.name for s in steps] == [f"charter.step.{n}" for n in STEPS]
    assert all(parent_of(s, spans) is iteration for s in steps)
    answer = steps[0].attributes or {}
    assert answer["charter.step.tasks.count"] == 3 and answer["charter.step.revision"] == 1
    calls = model_calls(spans)
    assert calls and all(parent_of(c, spans) in steps for c in calls)
    assert len(spans) == 2 + len(steps) + len(calls)
    assert {s.name for s in calls} == {"chat scripted", "score scripted"}


def test_model_call_spans_carry_the_genai_attributes_and_summed_usage(
    store: Store, exporter: InMemorySpanExporter
) -> None:
    _, spans = traced_run(store, exporter)
    calls = model_calls(spans)
    for call in calls:
        attributes = call.attributes or {}
        assert attributes["gen_ai.provider.name"] == "charter.scripted"
        assert attributes["gen_ai.system"] == "charter.scripted"
        assert attributes["gen_ai.request.model"] == "scripted"
        assert attributes["charter.batch_size"] >= 1  # type: ignore[operator]
        assert attributes["gen_ai.usage.input_tokens"] > 0  # type: ignore[operator]
    [answer] = [c for c in calls if parent_of(c, spans).name == "charter.step.answer"]  # type: ignore[union-attr]
    attributes = answer.attributes or {}
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["charter.call"] == "generate" and attributes["charter.batch_size"] == 3
    assert attributes["gen_ai.request.max_tokens"] == 160
    assert attributes["gen_ai.request.temperature"] == 0.0
    assert attributes["gen_ai.usage.output_tokens"] > 0  # type: ignore[operator]
    scores = [c for c in calls if (c.attributes or {})["gen_ai.operation.name"] == "score"]
    assert scores and all("gen_ai.usage.output_tokens" not in (c.attributes or {}) for c in scores)


def test_without_content_capture_no_prompt_or_reply_reaches_a_span(
    store: Store, exporter: InMemorySpanExporter
) -> None:
    run, spans = traced_run(store, exporter)
    replies = [o.text for o in store.outputs(run.id) if len(o.text) > 12]
    prompts = [t.prompt for t, _ in store.run_tasks(run.id)]
    assert replies and prompts
    carried = [text for s in spans for text in texts_in(s)]
    assert not [x for x in replies + prompts if any(x in text for text in carried)]
    assert not [e for s in spans for e in s.events]
    assert not [k for s in spans for k in (s.attributes or {}) if ".messages" in k]


def test_with_content_capture_each_request_and_reply_is_an_event(
    store: Store, exporter: InMemorySpanExporter
) -> None:
    run, spans = traced_run(store, exporter, capture_content=True)
    [answer] = [
        c
        for c in model_calls(spans)
        if parent_of(c, spans).name == "charter.step.answer"  # type: ignore[union-attr]
    ]
    events = [e.attributes or {} for e in answer.events if e.name == DETAILS_EVENT]
    assert [e["charter.batch_index"] for e in events] == [0, 1, 2]
    asked = [json.loads(str(e["gen_ai.input.messages"])) for e in events]
    said = [json.loads(str(e["gen_ai.output.messages"])) for e in events]
    tasks = {t.id: t.prompt for t, _ in store.run_tasks(run.id)}
    answers = store.outputs(run.id, iteration=1, purpose="answer")
    for messages, reply, output in zip(asked, said, answers, strict=True):
        assert messages[0]["role"] == "system"
        assert messages[-1]["parts"][0] == {"type": "text", "content": tasks[output.task_id]}
        [said_reply] = reply
        assert said_reply["role"] == "assistant"
        assert said_reply["parts"][0]["content"].strip() == output.text  # as the model said it
    scored = [
        e.attributes or {}
        for c in model_calls(spans)
        if (c.attributes or {})["gen_ai.operation.name"] == "score"
        for e in c.events
    ]
    assert scored and all(set(json.loads(str(e["charter.scores"]))) for e in scored)


def test_a_failing_run_marks_its_spans_as_errors_without_quoting_the_model(
    store: Store, exporter: InMemorySpanExporter
) -> None:
    silent = ScriptedBackend()  # no replies: the first generation raises ModelError
    with pytest.raises(ModelError, match="no reply for"):
        start_run(store, silent, config(iterations=1, tasks_limit=12), tracer=tracer(exporter))
    spans = list(exporter.get_finished_spans())
    [root] = [s for s in spans if s.name == "charter.run"]
    assert root.status.status_code == StatusCode.ERROR
    assert root.status.description == "ModelError"
    [call] = model_calls(spans)
    assert call.status.status_code == StatusCode.ERROR
    assert parent_of(call, spans).name == "charter.step.answer"  # type: ignore[union-attr]
    assert store.runs()[0].status == "failed"
    prompts = [t.prompt[:20] for t, _ in store.run_tasks(store.runs()[0].id)]
    assert not [p for s in spans for text in texts_in(s) for p in prompts if p in text]


def test_the_traced_backend_passes_features_through_and_traces_them(
    exporter: InMemorySpanExporter,
) -> None:
    traced = TracedBackend(CachedBackend(loop_backend(), MemoryCallCache()), tracer(exporter))
    assert exposes_features(traced)
    turn = [ChatMessage(role="user", content="Is the sky blue today?")]
    [scored] = traced.score_with_features([turn], ["Yes", "No"])
    assert len(scored.logprobs) == 2 and scored.features
    [relevance] = traced.relevance([("Is the sky blue?", "The sky is blue.")])
    assert isinstance(relevance, float)
    calls = [dict(s.attributes or {}) for s in exporter.get_finished_spans()]
    assert [(c["gen_ai.operation.name"], c["charter.call"]) for c in calls] == [
        ("score", "score_with_features"),
        ("score", "relevance"),
    ]
    assert calls[1]["gen_ai.usage.input_tokens"] == 4 + 4  # scripted tokens are words


def test_a_run_backend_traces_only_the_calls_that_reach_the_model(
    store: Store, exporter: InMemorySpanExporter
) -> None:
    backend = open_backend("scripted:loop", store, tracer=tracer(exporter))
    asked = [[ChatMessage(role="user", content="What is the capital of France?")]]
    first = backend.generate(asked, GenerationParams(max_new_tokens=32))
    assert backend.generate(asked, GenerationParams(max_new_tokens=32)) == first  # cached
    [call] = exporter.get_finished_spans()
    assert call.name == "chat scripted"
    assert (call.attributes or {})["gen_ai.request.max_tokens"] == 32


def test_tracing_is_off_without_an_otlp_endpoint_and_on_with_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said: list[str] = []
    assert isinstance(tracing_from_env({}, capture_content=True, warn=said.append), NoTracer)
    assert said == ["content capture asked for, but no OTLP endpoint is set: no traces"]
    assert isinstance(tracing_from_env({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}), NoTracer)
    for env, capture, expected in [
        (ENDPOINT, None, False),
        ({**ENDPOINT, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}, None, True),
        ({**ENDPOINT, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}, False, False),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"}, True, True),
    ]:
        found = tracing_from_env(env, capture_content=capture)
        assert isinstance(found, OtelTracer) and found.capture_content is expected
        found.close()
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # not installed
    said.clear()
    assert isinstance(tracing_from_env(ENDPOINT, warn=said.append), NoTracer)
    assert said and "pip install 'charter[otel]'" in said[0]


def test_a_run_without_an_endpoint_never_imports_opentelemetry(tmp_path: Path) -> None:
    probe = (
        "import os, sys\n"
        "from agent import loop_backend, start_run, tracing_from_env\n"
        "from principles import default_seed\n"
        "from store import Store\n"
        "from tests.agent.test_loop_runs import config\n"
        "for var in list(os.environ):\n"
        "    if var.startswith('OTEL_'):\n"
        "        del os.environ[var]\n"
        f"with Store({str(tmp_path / 'c.db')!r}) as store:\n"
        "    store.init(default_seed())\n"
        "    tracer = tracing_from_env()\n"
        "    run = start_run(store, loop_backend(), config(iterations=1, tasks_limit=12),\n"
        "                    tracer=tracer)\n"
        "    tracer.close()\n"
        "print(run.status, [m for m in sys.modules if m.startswith('opentelemetry')])\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=root,
    )
    assert done.stdout.strip() == "completed []"


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver on the loopback: keeps each request's path and body."""

    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return None


def test_charter_run_exports_its_spans_over_otlp_when_an_endpoint_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from tests.charter.test_cli import CLI

    received: list[tuple[str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        cli = CLI(tmp_path / "charter.db", capsys)
        cli.ok("init")
        args = ["--model", "scripted:loop", "-n", "1", "--tasks-limit", "12"]
        cli.ok("run", *args, "--train-per-iteration", "3", "--trace-content")
    finally:
        server.shutdown()
        server.server_close()
    assert received and {path for path, _ in received} == {"/v1/traces"}
    spans = []
    for _, body in received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            assert service["service.name"] == "charter"
            spans += [s for scope in resource.scope_spans for s in scope.spans]
    names = {s.name for s in spans}
    assert {"charter.run", "charter.iteration", "chat scripted"} <= names
    assert any(e.name == DETAILS_EVENT for s in spans for e in s.events)  # --trace-content
