"""Charter's federation relay on Flower: a ServerApp and a ClientApp that carry signed
Charter envelopes between the coordinator's process and each node's process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

TIMEOUT_S = 24 * 3600.0
"""How long a relay waits for its Charter process: a node's local work may take long."""


def post(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST JSON to a Charter process on this machine and return its JSON reply."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        reply: dict[str, Any] = json.loads(response.read().decode() or "{}")
    return reply
