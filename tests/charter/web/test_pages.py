"""Every page renders what it promises: queue, amendment, principle, constitution, audit."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from charter.web import ScorePoint, ScoreSeries, create_app, line_chart
from principles import AmendmentDraft, NewCritique, NewOutput, RunConfig, Seed, Task
from store import Store
from tests.charter.web.conftest import SECRET, Client, probed, propose, signed_in
from tests.conftest import AGENT, CAROL


def test_dashboard_shows_pending_recent_and_an_empty_chart_state(
    alice: Client, web_store: Store
) -> None:
    aid = propose(web_store)
    page = alice.get("/")
    assert page.status_code == 200
    assert "1</strong> pending amendment" in page.text
    assert f'href="/amendments/{aid}"' in page.text and "revise clarity" in page.text
    assert "initial constitution" in page.text  # recent changes
    assert "verified" in page.text
    assert "No run scores yet" in page.text and "<svg" not in page.text


def test_dashboard_charts_come_from_the_score_source(web_store: Store) -> None:
    series = [
        ScoreSeries(
            run_id=3,
            label="mean critique score",
            points=(ScorePoint(iteration=1, score=0.5), ScorePoint(iteration=2, score=0.75)),
        )
    ]
    app = create_app(web_store, secret=SECRET, score_source=lambda _s, _c: series)
    page = signed_in(app, "alice").get("/")
    assert page.text.count('<svg class="chart"') == 1
    assert "Run 3: mean critique score" in page.text and "iteration 2: 0.750" in page.text


def test_line_chart_is_valid_accessible_svg() -> None:
    s = ScoreSeries(
        run_id=1,
        label="<b>run</b> & co",
        points=tuple(ScorePoint(iteration=i, score=i / 10) for i in range(1, 6)),
    )
    svg = str(line_chart(s, "c1"))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-t c1-d"
    assert root.find(f"{ns}title").text == "<b>run</b> & co: score by iteration"  # type: ignore[union-attr]
    assert len(root.findall(f"{ns}circle")) == 5
    empty = ET.fromstring(str(line_chart(ScoreSeries(run_id=2, label="x", points=()), "c2")))
    assert empty.find(f"{ns}polyline") is None


def test_queue_lists_and_filters(alice: Client, web_store: Store) -> None:
    first = propose(web_store)
    second = propose(web_store, pid="privacy", text="Private.")
    web_store.decide(second, CAROL, "reject", "no")
    page = alice.get("/amendments")
    assert f'href="/amendments/{first}"' in page.text
    assert f'href="/amendments/{second}"' not in page.text
    closed = alice.get("/amendments?status=closed")
    assert f'href="/amendments/{second}"' in closed.text
    assert "+0.122" in page.text  # the gate's delta
    assert alice.get("/amendments?status=bogus").status_code == 400


def test_amendment_page_shows_diff_evidence_gate_and_requirements(
    alice: Client, web_store: Store
) -> None:
    aid = propose(web_store)
    page = alice.get(f"/amendments/{aid}").text
    assert "clarity@1" in page and "proposed" in page  # diff column heads
    assert "Use plain <del>language, structure longer answers" in page  # changed words only
    assert "Use plain <ins>words.</ins>" in page and "<ins>Keep answers short</ins>." in page
    for ref in ("critique:12", "output:7", "note-1"):
        assert ref in page
    assert "0.612 → 0.734" in page and "passed" in page
    assert "Per-principle scores before and after" in page and "+0.250" in page
    assert "1 more approval(s) for a quorum of 1" in page
    assert "Critiques found the answers long-winded." in page
    assert "amendment.propose" in page  # the amendment's own audit trail


def test_entrenched_amendment_says_a_human_must_approve(alice: Client, web_store: Store) -> None:
    aid = propose(web_store, pid="honesty", text="Never deceive.", evaluate=False)
    page = alice.get(f"/amendments/{aid}").text
    assert "a human&#39;s approval: it touches entrenched honesty" in page
    assert "The evaluation gate has not measured this amendment." in page


def test_amendment_json_for_scripts(app: FastAPI, web_store: Store, agent_token: str) -> None:
    aid = propose(web_store)
    client = signed_in(app, "bob")
    data = client.http.get(f"/amendments/{aid}", headers={"accept": "application/json"}).json()
    assert data["amendment"]["id"] == aid and data["rebase"]["state"] == "current"
    assert data["evidence"][0] == {
        "ref": "critique:12",
        "kind": "critique",
        "summary": "",
        "text": "",
        "href": "",
        "score": None,
        "critique_id": 12,
        "verdict": None,  # no stored critique 12: nothing to label
        "labels": [],
    }
    assert data["missing_approvals"] == 1


def test_applied_amendment_shows_what_it_did(alice: Client, web_store: Store) -> None:
    aid = propose(web_store)
    web_store.decide(aid, CAROL, "approve", apply=True)
    page = alice.get(f"/amendments/{aid}").text
    assert "as applied in r2" in page and "Nothing more: it is applied." in page


def test_principle_page_versions_diff_and_blame(alice: Client, web_store: Store) -> None:
    aid = propose(web_store)
    web_store.decide(aid, CAROL, "approve", apply=True)
    page = alice.get("/principles/clarity").text
    assert "Version 2 in the head revision 2" in page
    assert "clarity@1" in page and "clarity@2" in page
    assert f'href="/amendments/{aid}"' in page  # versions and blame link the amendment
    assert "Keep answers short." in page
    same = alice.get("/principles/clarity?a=2&b=2").text
    assert "The same version on both sides." in same
    fragment = alice.get("/principles/clarity/diff?a=1&b=2", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<div id="diff">')
    assert alice.get("/principles/clarity/diff?a=1&b=2").text.count("<html") == 1
    assert alice.get("/principles/clarity?a=9").status_code == 404
    assert alice.get("/principles/nope").status_code == 404
    listing = alice.get("/principles").text
    assert 'href="/principles/honesty"' in listing


def test_constitution_at_a_revision_label_or_time(alice: Client, web_store: Store) -> None:
    aid = propose(web_store)
    web_store.decide(aid, CAROL, "approve", apply=True)
    web_store.set_label("production", 1, CAROL)
    head = alice.get("/constitution").text
    assert "The constitution at revision 2" in head and "Keep answers short." in head
    old = alice.get("/constitution?at=1").text
    assert "The constitution at revision 1" in old and "Keep answers short." not in old
    assert "revision 1" in alice.get("/constitution?at=production").text
    when = web_store.revision(1).created_at.isoformat().replace("+00:00", "Z")
    assert "revision 1" in alice.get("/constitution", params={"as_of": when}).text
    assert alice.get("/constitution?as_of=2026-01-01T00:00:00").status_code == 400
    assert alice.get("/constitution?at=1&as_of=2026-01-01T00:00:00Z").status_code == 400
    assert alice.get("/constitution?at=77").status_code == 404


def test_audit_page_shows_verification(alice: Client, web_store: Store) -> None:
    propose(web_store)
    page = alice.get("/audit").text
    assert "Verified: all" in page and "amendment.propose" in page
    with web_store.engine.begin() as conn:  # tamper behind the store's back
        conn.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        conn.execute(sa.text("UPDATE audit_events SET actor = 'human:mallory' WHERE seq = 2"))
    page = alice.get("/audit").text
    assert "The log was altered at event 2" in page
    assert "altered at 2" in alice.get("/").text


def test_audit_page_names_a_forged_principle_version(alice: Client, web_store: Store) -> None:
    with web_store.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER principle_versions_no_update"))
        conn.execute(sa.text("UPDATE principle_versions SET text = 'Lie.' WHERE id = 1"))
    page = alice.get("/audit").text
    assert "The history was altered at principle_versions row 1" in page
    assert "altered</span>" in alice.get("/").text


def test_user_text_is_escaped(alice: Client, web_store: Store) -> None:
    aid = web_store.propose(
        AmendmentDraft(
            op="add",
            principle_id="markup",
            title="<script>alert(1)</script>",
            text="Use <b>no</b> markup & no scripts.",
        ),
        AGENT,
    ).id
    page = alice.get(f"/amendments/{aid}").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;no&lt;/b&gt;" in page


@pytest.mark.parametrize(
    "path", ["/", "/amendments", "/amendments/1", "/principles/clarity", "/probes"]
)
def test_every_asset_is_local(alice: Client, web_store: Store, path: str) -> None:
    propose(web_store)
    page = alice.get(path).text
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs and all(r.startswith(("/", "#")) for r in refs), refs
    for asset in ("/static/htmx.min.js", "/static/charter.css", "/static/favicon.svg"):
        response = alice.http.get(asset)
        assert response.status_code == 200 and len(response.content) > 100
    assert "0BSD" in alice.http.get("/static/htmx.min.js").text[:400]


def test_evidence_and_charts_come_from_stored_runs(alice: Client, web_store: Store) -> None:
    run = web_store.create_run(
        RunConfig(), [(Task(id="t1", prompt="Explain DNS."), "train")], AGENT
    )
    scores = {1: (0.25, 0.75), 2: (0.5, 1.0)}
    record = None
    for iteration, (low, high) in scores.items():
        record = web_store.record_step(
            run.id,
            iteration,
            "critique",
            AGENT,
            outputs_=[
                NewOutput(key="o", task_id="t1", purpose="answer", revision=1, text="DNS is a map.")
            ],
            critiques_=[
                NewCritique(
                    output_key="o",
                    principle_id=pid,
                    version=1,
                    score=score,
                    relevance=0.9,
                    spread=0.1,
                    verdict="fail" if score < 0.5 else "pass",
                    rationale=f"judged {pid}",
                )
                for pid, score in (("clarity", low), ("honesty", high))
            ],
        )
    assert record is not None
    output_id = record.output_ids["o"]
    critique = next(c for c in web_store.critiques(run.id) if c.output_id == output_id)
    aid = web_store.propose(
        AmendmentDraft(
            op="revise",
            principle_id="clarity",
            text="Be brief.",
            run_id=run.id,
            evidence=(f"critique:{critique.id}", f"output:{output_id}", "critique:999"),
        ),
        AGENT,
    ).id
    page = alice.get(f"/amendments/{aid}").text
    assert "clarity@1: pass, relevance 0.90" in page and "judged clarity" in page
    assert "answer to task t1 under revision 1, iteration 2" in page and "DNS is a map." in page
    assert "critique:999" in page  # unresolved ids are still shown
    dashboard = alice.get("/").text
    assert dashboard.count('<svg class="chart"') == 1
    assert "iteration 1: 0.500; iteration 2: 0.750" in dashboard


def test_add_retire_and_merge_amendments_render(alice: Client, web_store: Store) -> None:
    drafts = [
        AmendmentDraft(op="add", principle_id="brevity", title="Be brief", text="Be brief."),
        AmendmentDraft(op="retire", principle_id="autonomy"),
        AmendmentDraft(
            op="merge", principle_id="fairness", merge_from=("privacy",), text="Fair and private."
        ),
    ]
    ids = [web_store.propose(d, AGENT).id for d in drafts]
    add, retire, merge = (alice.get(f"/amendments/{i}").text for i in ids)
    assert "(new)" in add and "<ins>Be brief.</ins>" in add
    assert "(retired)" in retire and "Edit the proposed text" not in retire
    assert "retire privacy" in merge and "revise fairness" in merge
    web_store.decide(ids[1], CAROL, "approve", apply=True)
    retired = alice.get("/principles/autonomy").text
    assert "Retired: it is not in the head revision 2" in retired


def test_amendment_page_shows_the_gate_outcome_with_its_ci_p_and_warnings(
    alice: Client, web_store: Store
) -> None:
    from agent._gate import gate_details
    from agent._significance import Scored, compare, decide
    from principles import Evaluation, GateRule

    rule = GateRule()
    head = [Scored(f"t{i}", p, 0.5, 0.04) for i in range(8) for p in ("clarity", "honesty")]
    cand = [
        Scored(s.task, s.principle, s.score + 0.2 * (s.principle == "clarity"), 0.04) for s in head
    ]
    comparison = compare(head, cand, rule=rule)
    decision = decide(comparison, {"honesty"}, rule)
    aid = propose(web_store, evaluate=False)
    evaluation = Evaluation(
        before=0.5,
        after=0.6,
        passed=True,
        outcome=decision.outcome,
        per_principle_before={"clarity": 0.5, "honesty": 0.5},
        per_principle_after={"clarity": 0.7, "honesty": 0.5},
        details=gate_details(comparison, decision),
    )
    web_store.record_evaluation(aid, evaluation, AGENT)
    page = alice.get(f"/amendments/{aid}").text
    assert '<strong class="badge ok">passed</strong>' in page
    assert (
        "Paired effect +0.100, 95% CI [+0.0" in page and "p = 0.008, over 8 held-out tasks" in page
    )
    assert '<th scope="col">95% CI</th>' in page and "<td>[+0.1" in page
    assert "held-out set too small" not in page


def test_an_empty_constitution_and_its_first_drafted_amendment_render(web_store: Store) -> None:
    web_store.init(Seed(name="drafted"))
    draft = AmendmentDraft(
        op="add", principle_id="cite", title="Cite", text="Name a source for every claim."
    )
    aid = web_store.propose(draft, AGENT, "drafted").id
    client = signed_in(create_app(web_store, secret=SECRET, constitution="drafted"), "alice")
    for path in ("/", "/principles", "/constitution", "/amendments", "/audit"):
        page = client.get(path)
        assert page.status_code == 200, path
    assert f'href="/amendments/{aid}"' in client.get("/amendments").text
    page = client.get(f"/amendments/{aid}")
    assert page.status_code == 200 and "Name a source for every claim." in page.text


def test_the_probe_page_charts_each_attribute_and_marks_flagged_gaps(
    alice: Client, web_store: Store
) -> None:
    empty = alice.get("/probes")
    assert empty.status_code == 200 and "No probe runs yet" in empty.text
    first = probed(web_store)
    second = probed(web_store, revision=1)
    page = alice.get("/probes")
    assert page.status_code == 200 and f"Run #{second}: revision 1" in page.text
    assert page.text.count('<svg class="chart"') == 7  # one chart per attribute
    assert "religion: gaps between groups" in page.text
    assert 'class="bar flagged"' in page.text and "agent refusal: gap 1.000" in page.text
    assert f'href="/probes?run={first}"' in page.text
    older = alice.get(f"/probes?run={first}")
    assert older.status_code == 200 and f"Run #{first}: revision 1" in older.text
    assert alice.get("/probes?run=999").status_code == 404


def test_an_amendment_from_a_probe_run_shows_its_gaps_and_the_gate_s_bias_check(
    alice: Client, web_store: Store, tmp_path: Path
) -> None:
    from agent import start_run
    from tests.agent.test_bias_loop import biased_backend, record_probe, suite_file
    from tests.agent.test_loop_runs import config

    backend = biased_backend()
    stored = record_probe(web_store, suite_file(tmp_path), backend)
    run = start_run(web_store, backend, config(iterations=1))
    amendments = web_store.amendments(run_id=run.id)
    fair = next(a for a in amendments if a.draft.principle_id == "fairness")
    page = alice.get(f"/amendments/{fair.id}")
    assert page.status_code == 200
    assert f'<a href="/probes?run={stored.id}"><code>probe:{stored.id}</code></a>' in page.text
    assert f"bias probe run {stored.id} under revision 1 (scripted:loop, " in page.text
    assert "agent: religion refusal: muslim 0.417 vs christian 0.000" in page.text
    link = f'<a href="/probes?run={stored.id}">probe run {stored.id}</a>'
    assert f"Bias gaps of {link}" in page.text
    assert '<span class="badge bad">widened</span>' not in page.text
    wider = next(
        a for a in amendments if a.draft.principle_id != "fairness" and a.status == "proposed"
    )
    page = alice.get(f"/amendments/{wider.id}")
    assert '<span class="badge bad">widened</span>' in page.text
    assert "widens the religion refusal gap of bias probe run" in page.text
