"""A fake LLM judge on 127.0.0.1 (stdlib http.server in a thread) speaking the Anthropic Messages API or
the OpenAI Chat Completions API, for the judge's and `replyrl suggest`'s tests. It never listens on
anything but 127.0.0.1, and refuses every request past `max_requests`, so a runaway loop fails fast."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATHS = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}


def prefer_good(a: str, b: str) -> str:
    """The default verdict: "GOOD" in a reply counts for it, "BAD" against it."""
    score_a, score_b = (("GOOD" in r) - ("BAD" in r) for r in (a, b))
    return "TIE" if score_a == score_b else ("A" if score_a > score_b else "B")


class FakeJudge(ThreadingHTTPServer):
    """Answers ``prefer(reply A, reply B)``; the strings in ``answers`` go out first, verbatim (to send
    unparsable ones); past ``fail_after`` calls every call gets ``fail_status`` (400: out of credit,
    which no SDK retries; 500: a server error, which the SDKs retry before giving up)."""

    def __init__(self, api: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.api = api
        self.requests: list[dict] = []
        self.answers: list[str] = []
        self.prefer: Callable[[str, str], str] = prefer_good
        self.fail_after: int | None = None
        self.fail_status = 400
        self.max_requests = 200

    @property
    def base_url(self) -> str:
        """What `evaluate.judge.base_url` is set to: the Anthropic SDK adds /v1/..., the OpenAI SDK only the rest."""
        host, port = self.server_address
        return f"http://{host}:{port}" + ("/v1" if self.api == "openai" else "")


class Handler(BaseHTTPRequestHandler):
    server: FakeJudge

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        headers = {key.lower(): value for key, value in self.headers.items()}  # HTTP header names are case-blind
        srv.requests.append({"path": self.path, "body": body, "headers": headers})
        n = len(srv.requests)
        if self.path != PATHS[srv.api] or n > srv.max_requests:
            return self._error(400, f"refused: {self.path}, request {n}")
        if srv.fail_after is not None and n > srv.fail_after:
            return self._error(srv.fail_status, "credit balance is too low" if srv.fail_status == 400 else "server error")
        prompt = body["messages"][0]["content"]
        a = prompt.split("Reply A: ")[1].split("\n\nReply B:")[0]
        b = prompt.split("Reply B: ")[1].split("\n\nAnswer with")[0]
        answer = srv.answers.pop(0) if srv.answers else srv.prefer(a, b)
        if srv.api == "anthropic":
            return self._send(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                                    "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
                                    "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": 1}})
        self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": answer}}],
                         "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51}})

    def _error(self, status: int, message: str) -> None:
        if self.server.api == "anthropic":
            payload = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        else:
            payload = {"error": {"message": message, "type": "server_error", "code": None, "param": None}}
        self._send(status, payload)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("retry-after-ms", "10")  # the SDKs' retries of a 500 wait this long, not seconds
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


@contextmanager
def running(api: str) -> Iterator[FakeJudge]:
    """A `FakeJudge` serving in a daemon thread, shut down on exit."""
    srv = FakeJudge(api)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
