"""An MCP client built on the official MCP Python SDK, for zt4ai's interop tests.

It talks to the gateway the way a Python agent would: the SDK's Streamable HTTP
transport and its ClientSession, with the delegated token as a Bearer header.

    mcp_client.py --url URL [--token TOKEN] [--call NAME JSON_ARGS]... [--timeout SECONDS]

In one MCP session it initializes, lists the tools, then makes each --call in
order, and prints one JSON object on stdout:

    {"protocol_version": "...", "server_name": "...", "tools": ["crm.query", ...],
     "calls": [{"name": ..., "ok": true, "is_error": false, "text": "..."},
               {"name": ..., "ok": false, "code": -32001, "message": "...", "data": {...}}]}

A JSON-RPC error answering a call is that call's result; the run goes on. If the
server answers any request with HTTP 401 (no token, or a bad one, or a token
refused mid-session, as after a quarantine) it prints {"http_status": 401,
"error": "...", "www_authenticate": "...", "before": {...}} and exits 0, where
"before" holds whatever the session had done (the fields above) until then.
Anything else is a failure: a message on stderr and exit code 1.

It is written for the SDK version scripts/python-interop pins (mcp 2.x, whose
HTTP library is httpx2); run it with the venv python that script prints.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

DEFAULT_TIMEOUT_SECONDS = 20.0

# How the client introduces itself in `initialize`, so the gateway's logs can tell it apart.
CLIENT_INFO = types.Implementation(name="zt4ai-interop-python", version=importlib.metadata.version("mcp"))


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error exits with 1 like every other failure."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise SystemExit(f"{self.prog}: error: {message}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = ArgumentParser(description="Call tools through an MCP server with the official Python SDK.")
    parser.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
    parser.add_argument("--token", help="the delegated token, sent as Authorization: Bearer")
    parser.add_argument(
        "--call",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "JSON_ARGS"),
        help="call tool NAME with the arguments JSON_ARGS (a JSON object); repeatable, run in order",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"give up after this many seconds in all (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    args = parser.parse_args(argv)

    # Check every call's arguments before connecting, so a typo fails fast.
    calls = []
    for name, raw in args.call:
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError as e:
            parser.error(f"--call {name}: JSON_ARGS is not valid JSON: {e}")
        if not isinstance(arguments, dict):
            parser.error(f"--call {name}: JSON_ARGS must be a JSON object")
        calls.append((name, arguments))
    args.calls = calls
    return args


class UnauthorizedWatch:
    """Notices an HTTP 401 from the server and ends the session at once.

    The SDK turns an HTTP error status without a JSON-RPC body into a generic
    JSON-RPC error (-32603, "Server returned an error response"), so the status
    itself is not visible from the session. An httpx response hook sees every
    HTTP response the transport gets, so it records the 401 and its
    WWW-Authenticate challenge and cancels the session's scope: nothing waits
    for an answer that will not come. No OAuth provider is ever given to the SDK, so it cannot start an
    interactive authorization flow of its own.
    """

    def __init__(self) -> None:
        self.challenge: str | None = None
        self.seen = False
        self.scope: anyio.CancelScope | None = None
        # What the session did before a 401, if one comes.
        self.progress: dict[str, Any] = {}

    async def on_response(self, response: httpx2.Response) -> None:
        if response.status_code == 401 and not self.seen:
            self.seen = True
            self.challenge = response.headers.get("www-authenticate")
            if self.scope is not None:
                self.scope.cancel()

    def report(self) -> dict[str, Any]:
        """The JSON printed for a 401: the challenge's error_description when there is one."""
        error = "HTTP 401 Unauthorized"
        if self.challenge:
            match = re.search(r'error_description="((?:[^"\\]|\\.)*)"', self.challenge)
            error = match.group(1) if match else self.challenge
        return {"http_status": 401, "error": error, "www_authenticate": self.challenge, "before": self.progress}


async def list_all_tools(session: ClientSession) -> list[str]:
    """Every tool name the server lists, following pagination cursors."""
    names: list[str] = []
    cursor: str | None = None
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        names.extend(tool.name for tool in page.tools)
        cursor = page.next_cursor
        if not cursor:
            return sorted(names)


async def call_one(session: ClientSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One tools/call; a JSON-RPC error is recorded as the call's outcome, not raised."""
    try:
        result = await session.call_tool(name, arguments)
    except MCPError as e:
        return {"name": name, "ok": False, "code": e.error.code, "message": e.error.message, "data": e.error.data}
    text = "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")
    return {"name": name, "ok": True, "is_error": bool(result.is_error), "text": text}


async def run_session(args: argparse.Namespace, watch: UnauthorizedWatch) -> dict[str, Any]:
    """Initialize, list the tools and make the calls, all in one MCP session."""
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    # The overall deadline is enforced outside; this only bounds single HTTP operations.
    http_client = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(args.timeout),
        event_hooks={"response": [watch.on_response]},
    )
    async with http_client, streamable_http_client(args.url, http_client=http_client) as streams:
        read_stream, write_stream = streams
        async with ClientSession(read_stream, write_stream, client_info=CLIENT_INFO) as session:
            init = await session.initialize()
            progress = watch.progress
            progress["protocol_version"] = init.protocol_version
            progress["server_name"] = init.server_info.name
            progress["tools"] = await list_all_tools(session)
            progress["calls"] = []
            for name, arguments in args.calls:
                progress["calls"].append(await call_one(session, name, arguments))
    return dict(progress)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    watch = UnauthorizedWatch()
    outcome: dict[str, Any] | None = None
    error: BaseException | None = None
    with anyio.fail_after(args.timeout):
        with anyio.CancelScope() as scope:
            watch.scope = scope
            try:
                outcome = await run_session(args, watch)
            except Exception as e:  # judged below, once we know whether a 401 caused it
                error = e
    if watch.seen:
        return watch.report()
    if error is not None:
        raise error
    if outcome is None:  # cancelled without a 401: cannot happen, but never print nothing
        raise RuntimeError("the session ended without a result")
    return outcome


def describe(error: BaseException) -> str:
    """A one-line description, unwrapping the exception groups anyio task groups raise."""
    while isinstance(getattr(error, "exceptions", None), tuple) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, MCPError):
        return f"JSON-RPC error {error.error.code}: {error.error.message}"
    return f"{type(error).__name__}: {error}"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        outcome = anyio.run(main_async, args)
    except Exception as e:
        print(f"mcp_client: {args.url}: {describe(e)}", file=sys.stderr)
        return 1
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
