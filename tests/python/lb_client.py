"""Load for the load-balancer test (tests/it/load_balancer.rs): the official Python MCP client
making tool calls through HAProxy to ivcap-mcp replicas, from WORKERS concurrent sessions, until
STOP_FILE exists and at least MIN_CALLS calls were made.

    python lb_client.py URL STOP_FILE MIN_CALLS WORKERS

Prints one JSON object per call on stdout: tool, start and end (Unix seconds), ok, error. A
call fails when it raises or answers isError; after a failure the worker opens a new session.
"""

import asyncio
import json
import os
import sys
import time

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

URL, STOP_FILE, MIN_CALLS, WORKERS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

# Quick reads, and a job submit that waits for the job (the stand-in runs it for a while).
CALLS = [
    ("list_services", {}),
    ("get_service", {"service": "alpha"}),
    ("submit_job", {"service": "alpha", "input": {"n": 1}, "wait_seconds": 20}),
    ("list_services", {"limit": 5}),
]

made = 0


def done() -> bool:
    return made >= MIN_CALLS and os.path.exists(STOP_FILE)


def record(tool: str, start: float, error: str | None) -> None:
    global made
    made += 1
    print(json.dumps({"tool": tool, "start": start, "end": time.time(), "ok": error is None, "error": error}),
          flush=True)


async def worker(index: int) -> None:
    turn = index
    while not done():
        try:
            async with streamable_http_client(URL) as (read, write), ClientSession(read, write) as session:
                start = time.time()
                try:
                    await session.initialize()
                except Exception as e:  # noqa: BLE001 - a session that cannot start counts as a failed call
                    record("initialize", start, f"{type(e).__name__}: {e}")
                    continue
                while not done():
                    tool, args = CALLS[turn % len(CALLS)]
                    turn += 1
                    start = time.time()
                    try:
                        result = await session.call_tool(tool, args)
                        error = "\n".join(c.text for c in result.content if c.type == "text") if result.is_error else None
                    except Exception as e:  # noqa: BLE001 - every failure is counted, whatever its kind
                        error = f"{type(e).__name__}: {e}"
                    record(tool, start, error)
                    if error is not None:
                        break
        except Exception:  # noqa: BLE001 - closing a session after a failure recorded above
            await asyncio.sleep(0.1)


async def main() -> None:
    await asyncio.gather(*(worker(i) for i in range(WORKERS)))


asyncio.run(main())
