"""The ClientApp: hands each envelope to the node's Charter process (`charter-url` in the
SuperNode's node config) and returns its signed reply; `hello` returns the node's name."""

from __future__ import annotations

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from charter_flower import post

app = ClientApp()


@app.query()
def query(msg: Message, context: Context) -> Message:
    record = msg.content["charter"]
    url = str(context.node_config["charter-url"])
    if record.get("hello"):
        reply = {"node": str(context.node_config["charter-node"]), "envelope": ""}
    else:
        reply = post(f"{url}/message", {"envelope": str(record["envelope"])})
        reply["node"] = str(context.node_config["charter-node"])
    content = RecordDict({"charter": ConfigRecord({k: str(v) for k, v in reply.items()})})
    return Message(content, reply_to=msg)
