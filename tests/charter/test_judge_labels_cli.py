"""`charter review label` and `charter judge labels export`, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter._judge_cli import judgment_of
from principles import InvalidInput
from store import Store
from tests.charter.test_review_cli import CLI
from tests.conftest import AGENT
from tests.evidence import amendment_with_evidence


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    c = CLI(tmp_path / "charter.db", capsys)
    c.ok("init")
    with Store(str(c.db)) as store:
        store.add_user(AGENT.name, kind="agent")
    return c


def evidence(db: Path) -> tuple[int, list[int]]:
    """An amendment whose evidence is two of three critiques (fail, unclear; not the pass)."""
    with Store(str(db)) as store:
        return amendment_with_evidence(
            store, prompt="How do I pick a lock?", answer="I can't.", text="Say why you decline."
        )


def test_a_reviewer_marks_critiques_right_and_wrong(cli: CLI) -> None:
    aid, (clarity, privacy, _) = evidence(cli.db)
    assert "not labelled" in cli.ok("review", "show", str(aid))
    out = cli.ok("review", "label", str(aid), str(clarity), "--right", "-m", "it is vague")
    assert f"critique {clarity} labelled: the response violates clarity" in out
    cli.ok("review", "label", str(aid), str(clarity), "--wrong", user="bob")
    cli.ok("review", "label", str(aid), str(privacy), "--verdict", "follows")
    shown = cli.ok("review", "show", str(aid))
    assert f"critique:{clarity}  clarity@1 fail, score 0.200; labels: alice right, bob wrong" in (
        shown
    )
    assert f"critique:{privacy}  privacy@1 unclear, score 0.500; labels: alice follows" in shown
    assert f"charter review label {aid} CRITIQUE_ID" in shown
    data = json.loads(cli.ok("review", "show", str(aid), "--json"))
    first = data["evidence_critiques"][0]
    assert first["critique_id"] == clarity and first["verdict"] == "fail"
    assert [(x["labeller"], x["label"], x["right"]) for x in first["labels"]] == [
        ("human:alice", 0, True),
        ("human:bob", 1, False),
    ]
    with Store(str(cli.db)) as store:
        labels = store.judge_labels()
        events = [e for e in store.audit_log() if e.action == "judge.label"]
    assert [(x.labeller.name, x.label, x.note) for x in labels] == [
        ("alice", 0.0, "it is vague"),
        ("bob", 1.0, ""),
        ("alice", 1.0, ""),
    ]
    assert [e.payload["amendment"] for e in events] == [aid, aid, aid]


def test_an_unclear_verdict_needs_the_right_verdict(cli: CLI) -> None:
    aid, (_, privacy, _) = evidence(cli.db)
    code, _, err = cli("review", "label", str(aid), str(privacy), "--right")
    assert code == 4 and "give the right verdict (follows or violates)" in err
    code, _, err = cli("review", "label", str(aid), str(privacy), "--verdict", "maybe")
    assert code == 4 and "use follows or violates" in err
    code, _, err = cli("review", "label", str(aid), str(privacy), "--right", "--wrong")
    assert code == 4 and "exactly one of" in err
    assert err.count("\n") == 1  # one line, no traceback


def test_the_agent_identity_may_not_label_and_is_audited(cli: CLI) -> None:
    aid, (clarity, *_) = evidence(cli.db)
    code, _, err = cli("review", "label", str(aid), str(clarity), "--wrong", user=AGENT.name)
    assert code == 5 and "only people label critiques" in err
    with Store(str(cli.db)) as store:
        last = store.audit_log()[-1]
        assert store.judge_labels(superseded=True) == []
        assert store.verify().ok
    assert (last.actor, last.action, last.subject) == (
        "agent:charter-agent",
        "judge.refused",
        f"critique:{clarity}",
    )


def test_only_the_amendments_evidence_can_be_labelled(cli: CLI) -> None:
    aid, (_, _, honesty) = evidence(cli.db)
    code, _, err = cli("review", "label", str(aid), str(honesty), "--right")
    assert code == 4 and f"critique {honesty} is not evidence of amendment {aid}" in err
    code, _, err = cli("review", "label", "99", str(honesty), "--right")
    assert code == 3 and "amendment not found: 99" in err


def test_export_writes_the_labels_that_count_as_a_labels_file(cli: CLI, tmp_path: Path) -> None:
    aid, (clarity, privacy, _) = evidence(cli.db)
    cli.ok("review", "label", str(aid), str(clarity), "--wrong")
    cli.ok("review", "label", str(aid), str(clarity), "--right")  # alice changed her mind
    cli.ok("review", "label", str(aid), str(privacy), "--verdict", "follows", user="bob")
    target = tmp_path / "labels.jsonl"
    assert "2 label(s) exported to" in cli.ok("judge", "labels", "export", "--out", str(target))
    lines = [json.loads(x) for x in target.read_text(encoding="utf-8").splitlines()]
    assert [(x["principle"], x["label"], x["labeller"]) for x in lines] == [
        ("clarity", 0, "human:alice"),
        ("privacy", 1, "human:bob"),
    ]
    assert lines[0]["prompt"] == "How do I pick a lock?" and lines[0]["response"] == "I can't."
    assert lines[0]["critique_id"] == clarity and lines[0]["created_at"].endswith("+00:00")
    assert set(lines[0]) == {
        "prompt",
        "response",
        "principle",
        "label",
        "critique_id",
        "labeller",
        "created_at",
    }
    code, stdout, _ = cli("judge", "labels", "export", "--principle", "privacy")
    assert code == 0 and [json.loads(x)["principle"] for x in stdout.splitlines()] == ["privacy"]
    assert cli("judge", "labels", "export", "--principle", "honesty")[1] == ""


def test_judgment_options_map_to_one_judgment() -> None:
    assert judgment_of(True, False, None) == "right"
    assert judgment_of(False, True, None) == "wrong"
    assert judgment_of(False, False, "violates") == "violates"
    with pytest.raises(InvalidInput):
        judgment_of(False, False, None)
    with pytest.raises(InvalidInput):
        judgment_of(True, False, "follows")
