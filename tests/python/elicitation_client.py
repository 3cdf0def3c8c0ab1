"""The person beside the agent, for tests/it/elicitation.rs: the official Python MCP client with an
elicitation_callback, making tool calls to ivcap-mcp and answering every question the server asks.

Environment:
  SERVER  a URL (Streamable HTTP), or a JSON array: the command and its arguments (stdio; run in CWD)
  MODE    "legacy" (initialize, 2025-11-25) or "2026-07-28" (no handshake; input_required rounds)
  ANSWER  "accept" (a yes to a confirmation, or a login address opened), "decline", "cancel", or a
          JSON object: accept with it
  CALLS   a JSON array of [tool, arguments] pairs, called in turn

Prints one JSON object: "asked" (each question: message and requested schema, or URL) and "results"
(each call: is_error, text, structured).
"""

import asyncio
import json
import os

import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters


async def main() -> None:
    answer = os.environ["ANSWER"]
    asked = []

    async def person(context, params):
        if getattr(params, "mode", "form") == "url":
            # Opening the address is the person's part (a test approves the login at the provider).
            asked.append({"message": params.message, "url": params.url})
            return types.ElicitResult(action="decline" if answer in ("decline", "cancel") else "accept")
        schema = params.requested_schema
        if hasattr(schema, "model_dump"):
            schema = schema.model_dump(by_alias=True, exclude_none=True)
        asked.append({"message": params.message, "schema": schema})
        if answer in ("decline", "cancel"):
            return types.ElicitResult(action=answer)
        content = {"confirm": True} if answer == "accept" else json.loads(answer)
        return types.ElicitResult(action="accept", content=content)

    server = os.environ["SERVER"]
    if server.startswith("http"):
        target = server
    else:
        command = json.loads(server)
        target = StdioServerParameters(command=command[0], args=command[1:], cwd=os.environ.get("CWD"),
                                       env=dict(os.environ))
    results = []
    async with Client(target, mode=os.environ["MODE"], elicitation_callback=person) as client:
        for tool, arguments in json.loads(os.environ["CALLS"]):
            result = await client.call_tool(tool, arguments)
            text = "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")
            results.append({"is_error": bool(result.is_error), "text": text, "structured": result.structured_content})
    print(json.dumps({"asked": asked, "results": results}))


asyncio.run(main())
