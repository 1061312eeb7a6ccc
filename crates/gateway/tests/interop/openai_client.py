"""An OpenAI API client built on the official OpenAI Python SDK, for zt4ai's interop tests.

It talks to the gateway's OpenAI-compatible API the way a Python agent would:
`openai.OpenAI` with the delegated token as its API key (sent as
`Authorization: Bearer`), no retries, a 30 s timeout per request.

    openai_client.py --base-url URL --token TOKEN [--models]
                     [--chat MODEL JSON_MESSAGES]... [--stream MODEL JSON_MESSAGES]...

--models lists the models first; then each --chat (a non-streaming chat
completion) and --stream (a streaming one, with usage requested) runs in the
order given on the command line. JSON_MESSAGES is the `messages` array as JSON.
It prints one JSON object on stdout:

    {"models": ["gpt-4o", ...] | null (no --models) | {"ok": false, <error>},
     "chats":   [{"ok": true, "model": ..., "content": ..., "finish_reason": ...,
                  "tool_calls": [{"id": ..., "name": ..., "arguments": ...}], "usage": {...} | null},
                 {"ok": false, <error>}],
     "streams": [{"ok": true, "model": ..., "content": ..., "chunks": N, "finish_reason": ...,
                  "tool_calls": [...], "usage": {...} | null},
                 {"ok": false, "content_so_far": ..., "chunks": N, <error>}]}

where <error> is "type" (the exception's class, e.g. AuthenticationError, or
APIError for an SSE event carrying an `error` object), "message", "status" (the
HTTP status, or null when there was none, e.g. a connection error or an error
event mid-stream) and "body" (the error body the SDK parsed, or null).

A failed call is that call's result and the run goes on; the exit code is 0.
A usage error or anything unexpected prints {"error": "..."} (plus whatever was
done until then) and exits 1.

It is written for the SDK version scripts/python-interop pins; run it with the
venv python that script prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import openai

TIMEOUT_SECONDS = 30.0


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error exits with 1 and still prints JSON on stdout."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(json.dumps({"error": f"usage: {message}"}))
        raise SystemExit(f"{self.prog}: error: {message}")


class AppendInOrder(argparse.Action):
    """Like action="append" (nargs=2), and also records the order across --chat and --stream."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(list(values))
        setattr(namespace, self.dest, items)
        order = list(getattr(namespace, "order", None) or [])
        order.append((self.dest, list(values)))
        namespace.order = order


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = ArgumentParser(description="Call an OpenAI-compatible API with the official OpenAI Python SDK.")
    parser.add_argument("--base-url", required=True, help="the API base, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--token", required=True, help="the delegated token, sent as Authorization: Bearer")
    parser.add_argument("--models", action="store_true", help="list the models (GET /models)")
    for flag, what in (("--chat", "a chat completion"), ("--stream", "a streaming chat completion")):
        parser.add_argument(
            flag,
            action=AppendInOrder,
            nargs=2,
            default=[],
            metavar=("MODEL", "JSON_MESSAGES"),
            help=f"{what} with MODEL and the messages JSON_MESSAGES (a JSON array); repeatable",
        )
    args = parser.parse_args(argv)
    order = getattr(args, "order", None) or []

    # Check every call's messages before connecting, so a typo fails fast.
    args.ops = []
    for kind, (model, raw) in order:
        try:
            messages = json.loads(raw)
        except json.JSONDecodeError as e:
            parser.error(f"--{kind} {model}: JSON_MESSAGES is not valid JSON: {e}")
        args.ops.append((kind, model, messages))
    return args


def jsonable(value: Any) -> Any:
    """value as plain JSON data (an SDK model becomes a dict; anything odd becomes a string)."""
    if value is None:
        return None
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return json.loads(json.dumps(value, default=str))


def error_fields(e: Exception) -> dict[str, Any]:
    return {
        "ok": False,
        "type": type(e).__name__,
        "message": str(e),
        "status": getattr(e, "status_code", None),
        "body": jsonable(getattr(e, "body", None)),
    }


def list_models(client: openai.OpenAI) -> Any:
    try:
        return [model.id for model in client.models.list()]
    except openai.OpenAIError as e:
        return error_fields(e)


def chat(client: openai.OpenAI, model: str, messages: Any) -> dict[str, Any]:
    try:
        completion = client.chat.completions.create(model=model, messages=messages)
    except openai.OpenAIError as e:
        return error_fields(e)
    choice = completion.choices[0] if completion.choices else None
    message = choice.message if choice else None
    tool_calls = []
    for call in (message.tool_calls if message else None) or []:
        function = getattr(call, "function", None)
        tool_calls.append(
            {
                "id": call.id,
                "name": getattr(function, "name", None),
                "arguments": getattr(function, "arguments", None),
            }
        )
    return {
        "ok": True,
        "model": completion.model,
        "content": message.content if message else None,
        "finish_reason": choice.finish_reason if choice else None,
        "tool_calls": tool_calls,
        "usage": jsonable(completion.usage),
    }


def stream(client: openai.OpenAI, model: str, messages: Any) -> dict[str, Any]:
    content: list[str] = []
    chunks = 0
    finish_reason = None
    usage = None
    response_model = None
    calls: dict[int, dict[str, Any]] = {}  # tool calls assembled from deltas, by index
    try:
        response = client.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in response:
            chunks += 1
            response_model = chunk.model or response_model
            if chunk.usage is not None:
                usage = jsonable(chunk.usage)
            for choice in chunk.choices:
                if choice.index != 0:
                    continue
                if choice.finish_reason is not None:
                    finish_reason = choice.finish_reason
                delta = choice.delta
                if delta is None:
                    continue
                if delta.content:
                    content.append(delta.content)
                for tc in delta.tool_calls or []:
                    call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                    if tc.id:
                        call["id"] = tc.id
                    if tc.function is not None:
                        if tc.function.name:
                            call["name"] = (call["name"] or "") + tc.function.name
                        if tc.function.arguments:
                            call["arguments"] += tc.function.arguments
    except openai.OpenAIError as e:
        return {**error_fields(e), "content_so_far": "".join(content), "chunks": chunks}
    return {
        "ok": True,
        "model": response_model,
        "content": "".join(content),
        "chunks": chunks,
        "finish_reason": finish_reason,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "usage": usage,
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {"models": None, "chats": [], "streams": []}
    try:
        client = openai.OpenAI(
            base_url=args.base_url,
            api_key=args.token,
            max_retries=0,
            timeout=TIMEOUT_SECONDS,
        )
        if args.models:
            report["models"] = list_models(client)
        for kind, model, messages in args.ops:
            if kind == "chat":
                report["chats"].append(chat(client, model, messages))
            else:
                report["streams"].append(stream(client, model, messages))
    except Exception as e:
        report["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(report))
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
