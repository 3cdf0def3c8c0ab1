"""An agent's view of ivcap-mcp: the official Python MCP client (`mcp` on PyPI) over stdio.

Runs the local-mode workflow an agent framework would: list the tools, upload a CSV as text,
read a service's request schema, run it as a job, record the result as an aspect about the
uploaded artifact, find that aspect again with list_aspects and with a Datalog search.

    python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt
    .venv/bin/python examples/python_agent.py [STORE]

STORE defaults to a fresh copy of examples/demo-store (the repository copy is never written).
The server is `ivcap-mcp` from PATH, or the command line in IVCAP_MCP, split as a shell would
(a path, or e.g. `uvx ivcap-mcp`). Any failed call raises, so the exit code tells whether the
whole workflow worked (CI runs this, with the debug build and with the installed wheel).
"""

import asyncio
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

DEMO_STORE = Path(__file__).resolve().parent / "demo-store"
STATS_SCHEMA = "urn:example:schema:column-stats.1"
CSV = "site,depth_m,temperature_c\nA,0.5,14.2\nA,1.0,13.1\nB,0.5,15.0\nB,1.0,13.8\n"


async def call(session: ClientSession, tool: str, arguments: dict) -> dict:
    """Calls a tool; raises with the server's own message on isError."""
    result = await session.call_tool(tool, arguments)
    text = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {text}")
    print(f"{tool}: ok", flush=True)
    return result.structured_content if result.structured_content is not None else json.loads(text)


async def workflow(store: Path) -> None:
    command, *args = shlex.split(os.environ.get("IVCAP_MCP", "ivcap-mcp"))
    server = StdioServerParameters(command=command, args=[*args, "--local", str(store)])
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name for t in (await session.list_tools()).tools}
        missing = {"upload_artifact", "get_service", "submit_job", "add_aspect", "list_aspects", "search"} - tools
        assert not missing, f"tools missing: {missing}"
        print(f"tools/list: {len(tools)} tools", flush=True)

        artifact = await call(session, "upload_artifact", {"content": CSV, "name": "soil-temperature.csv"})
        artifact_id = artifact["id"]
        service = await call(session, "get_service", {"service": "column-stats"})
        assert "artifact_name" in json.dumps(service["request_schema"]), service
        job = await call(
            session,
            "submit_job",
            {"service": "column-stats", "input": {"artifact_name": "soil-temperature.csv"}, "wait_seconds": 30},
        )
        assert job["status"] == "succeeded", job
        stats = job["result"]["columns"]
        assert stats["temperature_c"]["max"] == 15.0, stats

        await call(session, "add_aspect", {"entity": artifact_id, "schema": STATS_SCHEMA, "content": job["result"]})
        aspects = await call(session, "list_aspects", {"entity": artifact_id, "include_content": True})
        assert [a["schema"] for a in aspects["items"]] == [STATS_SCHEMA], aspects
        found = await call(session, "search", {"query": f':- ivcap_aspect(Entity, "{STATS_SCHEMA}", Content).'})
        assert artifact_id in json.dumps(found), found
        print("workflow: upload -> get_service -> submit_job -> add_aspect -> list_aspects -> search: all ok")


def main() -> None:
    if len(sys.argv) > 1:
        asyncio.run(workflow(Path(sys.argv[1]).resolve()))
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "demo-store"
        shutil.copytree(DEMO_STORE, store)
        asyncio.run(workflow(store))


if __name__ == "__main__":
    main()
