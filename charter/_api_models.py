"""What the read API (/api/v1) sends, as pydantic models shared by the server and the client.

One definition on both sides: the web app builds these and FastAPI publishes their schema;
`charter.client` validates what it receives against the same models. Only pydantic and the
pure domain are imported here, so the client stays light.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from principles import Constitution, Principle, Revision, render_seed


class PublishedPrinciple(BaseModel):
    """One principle of a published constitution, at the version that revision holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    title: str
    text: str
    entrenched: bool
    version: int = Field(ge=1, description="the principle's version number")
    hash: str = Field(description="the version's content hash (chained to its parent)")


class PublishedConstitution(BaseModel):
    """A constitution as of one revision. `hash` is the revision's hash: the ETag."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    revision: int = Field(ge=1)
    hash: str
    label: str | None = Field(None, description="the label asked for, if one was")
    created_at: AwareDatetime
    principles: tuple[PublishedPrinciple, ...]

    @classmethod
    def of(
        cls, constitution: Constitution, revision: Revision, label: str | None = None
    ) -> PublishedConstitution:
        return cls(
            name=constitution.name,
            revision=constitution.revision,
            hash=revision.hash,
            label=label,
            created_at=constitution.created_at,
            principles=tuple(
                PublishedPrinciple(
                    id=p.principle_id,
                    title=p.title,
                    text=p.text,
                    entrenched=p.entrenched,
                    version=p.number,
                    hash=p.hash,
                )
                for p in constitution.principles
            ),
        )

    def markdown(self) -> str:
        """The Markdown seed file, exactly as `charter constitution show --format md` and
        `?format=markdown` give it: paste it into a system prompt or load it elsewhere."""
        return render_seed(
            self.name,
            [
                Principle(id=p.id, title=p.title, text=p.text, entrenched=p.entrenched)
                for p in self.principles
            ],
            "md",
            description=f"revision {self.revision}",
        )


class ConstitutionSummary(BaseModel):
    """A constitution's head revision and where its labels point."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    head: int
    hash: str = Field(description="the head revision's hash")
    labels: dict[str, int] = Field(description="label name -> revision number")


class RevisionSummary(BaseModel):
    """One revision without its principles."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    number: int
    parent: int | None
    hash: str
    author: str
    message: str
    created_at: AwareDatetime


class ApiError(BaseModel):
    """Every error of the API: one line, and a stable code."""

    error: str
    code: str
