"""A run on a constitution other than `default` reads that constitution's head, never the
default's, in every step (issue 8, item 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import loop_backend, start_run
from agent._progress import NoProgress
from agent._steps import AGENT, Loop, iteration_aggregate, step_critique
from principles import SYSTEM, Change, Principle, RunConfig, Seed, default_seed
from store import Store

OTHER = Seed(
    name="other",
    principles=(
        Principle(id="brevity", title="Be brief", text="Keep answers as short as the task allows."),
        Principle(id="candour", title="Be candid", text="Say plainly what you do not know."),
        Principle(id="care", title="Take care", text="Point people in danger to help."),
    ),
)
IDS = {p.id for p in OTHER.principles}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """`default` at revision 3 and `other` at revision 1 in one database."""
    with Store(str(tmp_path / "c.db")) as s:
        s.init(default_seed())
        clarity = s.constitution().get("clarity")
        assert clarity is not None
        for n in (1, 2):
            changed = clarity.as_principle().model_copy(update={"text": f"Be clear, take {n}."})
            s.commit([Change(principle_id="clarity", principle=changed)], SYSTEM, f"edit {n}")
        s.init(OTHER)
        assert s.resolve("head") == 3 and s.resolve("head", "other") == 1
        yield s


def config(**kw: object) -> RunConfig:
    base: dict[str, object] = dict(
        model="scripted:loop",
        iterations=1,
        tasks_limit=12,
        train_per_iteration=3,
        heldout_size=2,
        seed=3,
        max_proposals=0,
    )
    return RunConfig.model_validate({**base, **kw})


def test_a_run_on_another_constitution_critiques_and_aggregates_its_principles(
    store: Store,
) -> None:
    run = start_run(store, loop_backend(), config(), constitution="other")
    assert run.status == "completed" and run.constitution == "other"
    answers = store.outputs(run.id, iteration=1, purpose="answer")
    assert answers and {o.revision for o in answers} == {1}
    critiques = store.critiques(run.id, output_ids=[o.id for o in answers])
    assert {c.principle_id for c in critiques} == IDS
    assert len(critiques) == len(answers) * len(IDS)
    assert store.step_result(run.id, 1, "critique")["revision"] == 1
    aggregate = store.step_result(run.id, 1, "aggregate")["aggregate"]
    assert set(aggregate["per_principle"]) == IDS
    assert store.constitution().revision == 3  # the default constitution was never touched


def test_steps_without_answers_fall_back_to_the_runs_own_head(store: Store) -> None:
    run = store.create_run(config(), [], AGENT, "other")
    loop = Loop(store, loop_backend(), run, NoProgress())
    assert set(iteration_aggregate(loop, 1).per_principle) == IDS
    step_critique(loop, 1)
    result = store.step_result(run.id, 1, "critique")
    assert result["revision"] == 1 and result["pairs"] == 0
