"""Charter's shell: the `charter` CLI (and, later, the review web UI). Wires the layers below."""

__all__: list[str] = []
