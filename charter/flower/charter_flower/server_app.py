"""The ServerApp: asks the coordinator's Charter process (`coordinator-url` in the run
config) what to send, sends it to the named nodes through the SuperLink, and hands back
their replies, until the coordinator says it is done. A node that does not answer within
the coordinator's timeout, or whose ClientApp failed, is reported as no reply. Node names
are learnt from the SuperNodes (a `hello` query) when a message names one not yet known."""

from __future__ import annotations

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from charter_flower import post

app = ServerApp()


def _names(grid: Grid, timeout: float) -> dict[str, int]:
    """Each connected SuperNode's Charter node name (its `charter-node` config)."""
    hello = RecordDict({"charter": ConfigRecord({"hello": "1"})})
    asked = [Message(hello, dst_node_id=n, message_type="query") for n in grid.get_node_ids()]
    names: dict[str, int] = {}
    for reply in grid.send_and_receive(asked, timeout=timeout):
        if not reply.has_error():
            names[str(reply.content["charter"]["node"])] = reply.metadata.src_node_id
    return names


@app.main()
def main(grid: Grid, context: Context) -> None:
    url = str(context.run_config["coordinator-url"])
    step = post(f"{url}/next", {"nodes": [], "replies": None})
    replies: dict[str, str | None] | None = None
    names: dict[str, int] = {}
    while not step.get("done"):
        timeout = float(step.get("timeout", 600))
        sent = step.get("send", {})
        if any(node not in names for node in sent):
            names = _names(grid, min(timeout, 60.0))
        messages = [
            Message(
                RecordDict({"charter": ConfigRecord({"envelope": envelope})}),
                dst_node_id=names[node],
                message_type="query",
            )
            for node, envelope in sent.items()
            if node in names
        ]
        by_id = {v: k for k, v in names.items()}
        replies = {node: None for node in sent}
        for reply in grid.send_and_receive(messages, timeout=timeout):
            if not reply.has_error():
                replies[by_id[reply.metadata.src_node_id]] = str(
                    reply.content["charter"]["envelope"]
                )
        step = post(f"{url}/next", {"nodes": sorted(names), "replies": replies})
