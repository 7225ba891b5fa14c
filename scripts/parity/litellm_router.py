#!/usr/bin/env python3
"""LiteLLM's own Router on the parity table's configs, against fake upstreams that count calls.

The numbers this prints are the ones tests/it/parity.rs hard-codes as what LiteLLM does (each
row there names the LiteLLM rule behind it). Rerun it against any LiteLLM version:

    python3 -m venv /tmp/ll && /tmp/ll/bin/pip install 'litellm==1.108.*'
    /tmp/ll/bin/python scripts/parity/litellm_router.py            # every row
    /tmp/ll/bin/python scripts/parity/litellm_router.py lone       # rows whose name has "lone"

Each row is a config (model_list + router_settings, as a proxy config.yaml would give them to
`Router(...)`), a script per fake upstream (one reply per request, the last repeating), and a
number of requests sent one after another to one model group. For each row it prints the calls
every upstream received, each request's outcome (the answer, or the exception's class and
status), and the waits the router asked for between retries. The waits are recorded, not slept
(each is cut to 0.2 s so the router's failure callbacks still run in between); cooldowns run on
the real clock.

What it printed for 1.108.14 and 1.110.2 is kept beside it (litellm-<version>.md).

Our own code: it talks to LiteLLM only through `litellm.Router`, as a proxy would.
"""

import asyncio
import json
import os
import random
import socket
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOG", "ERROR")

import litellm  # noqa: E402
from litellm import Router  # noqa: E402

KEY = "sk-parity-0123456789"
# A retry's wait is recorded, then slept at most this long.
SLEEP_CAP = 0.2


# ---- fake upstreams ---------------------------------------------------------------------------


def ok(text="ok", delay=0.0):
    """A 200 with `text`, sent `delay` seconds after the request arrived."""
    return {"status": 200, "text": text, "delay": delay}


def status(code, headers=None, body=None):
    """A status with `headers` (a value may be a function, called when the reply is sent)."""
    return {"status": code, "headers": headers or {}, "body": body}


def http_date_in(seconds):
    """A header value: the HTTP date `seconds` from when it is sent."""
    return lambda: formatdate(time.time() + seconds, usegmt=True)


def context_window():
    return status(
        400,
        body={
            "error": {
                "message": "This model's maximum context length is 8192 tokens. However, your "
                "messages resulted in 9000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        },
    )


class Upstream:
    """An OpenAI-compatible server on 127.0.0.1 answering `script` in order (the last repeats)."""

    def __init__(self, script):
        self.script = script
        self.calls = 0
        self.bodies = []
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                with upstream.lock:
                    index = upstream.calls
                    upstream.calls += 1
                    try:
                        upstream.bodies.append(json.loads(raw))
                    except ValueError:
                        upstream.bodies.append(None)
                reply = upstream.script[min(index, len(upstream.script) - 1)]
                if reply.get("delay"):
                    time.sleep(reply["delay"])
                if reply["status"] == 200:
                    body = {
                        "id": "chatcmpl-parity",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "gpt-4o-mini",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply["text"]},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }
                else:
                    body = reply.get("body") or {
                        "error": {
                            "message": f"scripted status {reply['status']}",
                            "type": "scripted_error",
                            "code": reply["status"],
                        }
                    }
                data = json.dumps(body).encode()
                self.send_response(reply["status"])
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in reply.get("headers", {}).items():
                    self.send_header(name, value() if callable(value) else value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def refused_url():
    """A local address where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1"


# ---- recorded retry waits ---------------------------------------------------------------------

WAITS = []
_real_sleep = asyncio.sleep


async def _recording_sleep(delay, *args, **kwargs):
    caller = sys._getframe(1).f_globals.get("__name__", "")
    if caller.startswith("litellm.router") and delay and delay > 0:
        WAITS.append(round(float(delay), 2))
        delay = min(delay, SLEEP_CAP)
    return await _real_sleep(delay, *args, **kwargs)


asyncio.sleep = _recording_sleep


# ---- the rows ---------------------------------------------------------------------------------


def dep(group, id_, upstream, **params):
    """A model_list entry: `upstream` names a fake upstream of the row (or "refused")."""
    return (group, id_, upstream, params)


# name, deployments, router_settings, scripts per upstream, requests[, model[, {"gap": seconds
# between requests}]]
ROWS = [
    # -- lone deployments (a group of one) --
    ("lone 503, num_retries 5", [dep("g", "a1", "A")], {"num_retries": 5}, {"A": [status(503)]}, 1),
    ("lone 503, num_retries unset", [dep("g", "a1", "A")], {}, {"A": [status(503)]}, 1),
    ("lone 503, num_retries 0", [dep("g", "a1", "A")], {"num_retries": 0}, {"A": [status(503)]}, 1),
    (
        "lone 503 x10 requests, num_retries 0 (never cooled)",
        [dep("g", "a1", "A")],
        {"num_retries": 0},
        {"A": [status(503)]},
        10,
    ),
    ("lone 429, num_retries 2", [dep("g", "a1", "A")], {"num_retries": 2}, {"A": [status(429)]}, 1),
    (
        "lone 429 then 200 (Retry-After: 2)",
        [dep("g", "a1", "A")],
        {"num_retries": 2},
        {"A": [status(429, {"retry-after": "2"}), ok()]},
        1,
    ),
    (
        "lone 429 then 200 (retry-after-ms: 2500)",
        [dep("g", "a1", "A")],
        {"num_retries": 2},
        {"A": [status(429, {"retry-after-ms": "2500"}), ok()]},
        1,
    ),
    (
        "lone 429 then 200 (llm_provider-retry-after: 3)",
        [dep("g", "a1", "A")],
        {"num_retries": 2},
        {"A": [status(429, {"llm_provider-retry-after": "3"}), ok()]},
        1,
    ),
    (
        "lone 429 then 200 (llm_provider-retry-after-ms: 1500)",
        [dep("g", "a1", "A")],
        {"num_retries": 2},
        {"A": [status(429, {"llm_provider-retry-after-ms": "1500"}), ok()]},
        1,
    ),
    (
        "lone 429 then 200 (Retry-After: an HTTP date 3 s ahead)",
        [dep("g", "a1", "A")],
        {"num_retries": 2},
        {"A": [status(429, {"retry-after": http_date_in(3)}), ok()]},
        1,
    ),
    ("lone 400, num_retries 2", [dep("g", "a1", "A")], {"num_retries": 2}, {"A": [status(400)]}, 2),
    ("lone 401 x3 requests", [dep("g", "a1", "A")], {"num_retries": 2, "cooldown_time": 30}, {"A": [status(401)]}, 3),
    ("lone 403 x3 requests", [dep("g", "a1", "A")], {"num_retries": 2, "cooldown_time": 30}, {"A": [status(403)]}, 3),
    ("lone 404 x3 requests", [dep("g", "a1", "A")], {"num_retries": 2, "cooldown_time": 30}, {"A": [status(404)]}, 3),
    ("lone 408 x2 requests", [dep("g", "a1", "A")], {"num_retries": 1, "cooldown_time": 30}, {"A": [status(408)]}, 2),
    ("lone refused, num_retries 2", [dep("g", "a1", "refused")], {"num_retries": 2}, {}, 1),
    (
        "lone 503, allowed_fails 1, x4 requests (no fallbacks)",
        [dep("g", "a1", "A")],
        {"num_retries": 0, "allowed_fails": 1, "cooldown_time": 30},
        {"A": [status(503)]},
        4,
    ),
    (
        "lone 503, allowed_fails 1, x4 requests, fallbacks to b",
        [dep("g", "a1", "A"), dep("b", "b1", "B")],
        {"num_retries": 0, "allowed_fails": 1, "cooldown_time": 30, "fallbacks": [{"g": ["b"]}]},
        {"A": [status(503)], "B": [ok("from b")]},
        4,
    ),
    (
        "lone 503 then fallback, num_retries 2",
        [dep("g", "a1", "A"), dep("b", "b1", "B")],
        {"num_retries": 2, "fallbacks": [{"g": ["b"]}]},
        {"A": [status(503)], "B": [ok("from b")]},
        1,
    ),
    (
        "lone 429 then fallback, num_retries 2",
        [dep("g", "a1", "A"), dep("b", "b1", "B")],
        {"num_retries": 2, "fallbacks": [{"g": ["b"]}]},
        {"A": [status(429)], "B": [ok("from b")]},
        1,
    ),
    (
        "lone context window, context_window_fallbacks",
        [dep("g", "a1", "A"), dep("b", "b1", "B")],
        {"num_retries": 2, "context_window_fallbacks": [{"g": ["b"]}]},
        {"A": [context_window()], "B": [ok("from b")]},
        1,
    ),
    # -- pairs: two deployments on one upstream, so the counts do not depend on the pick --
    (
        "pair 429, num_retries 2",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 2, "cooldown_time": 30},
        {"A": [status(429)]},
        2,
    ),
    (
        "pair 503, num_retries 3",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 3, "cooldown_time": 30},
        {"A": [status(503)]},
        1,
    ),
    (
        "pair 503 x12 requests, num_retries 0 (failure rate)",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 0, "cooldown_time": 30},
        {"A": [status(503)]},
        12,
    ),
    (
        "pair 503 x12 requests, num_retries 0, allowed_fails 0",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 0, "allowed_fails": 0, "cooldown_time": 30},
        {"A": [status(503)]},
        12,
    ),
    (
        "pair 503 x12 requests, num_retries 0, allowed_fails 1",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 0, "allowed_fails": 1, "cooldown_time": 30},
        {"A": [status(503)]},
        12,
    ),
    (
        "pair 503 x12 requests, num_retries 0, allowed_fails 3",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 0, "allowed_fails": 3, "cooldown_time": 30},
        {"A": [status(503)]},
        12,
    ),
    (
        "pair 500 x12 requests, allowed_fails_policy InternalServerErrorAllowedFails 1",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 0, "cooldown_time": 30, "allowed_fails_policy": {"InternalServerErrorAllowedFails": 1}},
        {"A": [status(500)]},
        12,
    ),
    (
        "pair 429 x12 requests, allowed_fails_policy RateLimitErrorAllowedFails 2",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 0, "cooldown_time": 30, "allowed_fails_policy": {"RateLimitErrorAllowedFails": 2}},
        {"A": [status(429)]},
        12,
    ),
    (
        "pair 429, disable_cooldowns, num_retries 3",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 3, "disable_cooldowns": True},
        {"A": [status(429)]},
        2,
    ),
    (
        "pair 401 both, num_retries 2",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 2, "cooldown_time": 30},
        {"A": [status(401)]},
        1,
    ),
    (
        "pair 403 both, num_retries 2",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 2, "cooldown_time": 30},
        {"A": [status(403)]},
        2,
    ),
    (
        "pair 400 both, num_retries 2",
        [dep("g", "a1", "A"), dep("g", "a2", "A")],
        {"num_retries": 2, "cooldown_time": 30},
        {"A": [status(400)]},
        1,
    ),
    # -- one bad deployment and one good one: counts over many requests do not depend on picks --
    # (the deployment without its key is on an upstream that refuses: a call to it shows)
    (
        "bad 401 + good, x10 requests",
        [dep("g", "bad", "A"), dep("g", "good", "B")],
        {"num_retries": 2, "cooldown_time": 30},
        {"A": [status(401)], "B": [ok("from good")]},
        10,
    ),
    (
        "bad 403 + good, x10 requests",
        [dep("g", "bad", "A"), dep("g", "good", "B")],
        {"num_retries": 2, "cooldown_time": 30},
        {"A": [status(403)], "B": [ok("from good")]},
        10,
    ),
    (
        "bad 429 + good, x10 requests",
        [dep("g", "bad", "A"), dep("g", "good", "B")],
        {"num_retries": 2, "cooldown_time": 30},
        {"A": [status(429)], "B": [ok("from good")]},
        10,
    ),
    (
        "unset key + good, x10 requests",
        [dep("g", "nokey", "A", api_key="os.environ/LLMUX_PARITY_SURELY_UNSET"), dep("g", "good", "B")],
        {"num_retries": 2, "cooldown_time": 30},
        {"A": [status(401)], "B": [ok("from good")]},
        10,
    ),
    (
        "unset key + good, x10 requests 3 s apart, cooldown_time 2",
        [dep("g", "nokey", "A", api_key="os.environ/LLMUX_PARITY_SURELY_UNSET"), dep("g", "good", "B")],
        {"num_retries": 2, "cooldown_time": 2},
        {"A": [status(401)], "B": [ok("from good")]},
        10,
        "g",
        {"gap": 3},
    ),
    # -- strategies and routing_strategy_args --
    (
        "latency-based-routing, slow A + fast B, x10 requests",
        [dep("g", "a1", "A"), dep("g", "b1", "B")],
        {"routing_strategy": "latency-based-routing"},
        {"A": [ok("from a", delay=0.3)], "B": [ok("from b", delay=0.1)]},
        10,
    ),
    (
        "latency-based-routing, lowest_latency_buffer 3 (slow A within it), x20 requests",
        [dep("g", "a1", "A"), dep("g", "b1", "B")],
        {"routing_strategy": "latency-based-routing", "routing_strategy_args": {"lowest_latency_buffer": 3}},
        {"A": [ok("from a", delay=0.3)], "B": [ok("from b", delay=0.1)]},
        20,
    ),
    # -- order tiers --
    (
        "order 1 503 / order 2 ok, num_retries 0",
        [dep("g", "a1", "A", order=1), dep("g", "a2", "B", order=2)],
        {"num_retries": 0},
        {"A": [status(503)], "B": [ok("from order 2")]},
        1,
    ),
    (
        "order 1 503 / order 2 ok, num_retries 2",
        [dep("g", "a1", "A", order=1), dep("g", "a2", "B", order=2)],
        {"num_retries": 2},
        {"A": [status(503)], "B": [ok("from order 2")]},
        1,
    ),
    (
        "order 1 503 / order 2 503, num_retries 1, fallbacks to b",
        [dep("g", "a1", "A", order=1), dep("g", "a2", "B", order=2), dep("b", "b1", "C")],
        {"num_retries": 1, "fallbacks": [{"g": ["b"]}]},
        {"A": [status(503)], "B": [status(503)], "C": [ok("from b")]},
        1,
    ),
    # -- retry policies --
    (
        "model_group_retry_policy InternalServerErrorRetries 4",
        [dep("g", "a1", "A"), dep("h", "h1", "B")],
        {"num_retries": 1, "model_group_retry_policy": {"g": {"InternalServerErrorRetries": 4}}},
        {"A": [status(500)], "B": [status(500)]},
        1,
        "g",
    ),
    (
        "model_group_retry_policy, another group keeps num_retries",
        [dep("g", "a1", "A"), dep("h", "h1", "B")],
        {"num_retries": 1, "model_group_retry_policy": {"g": {"InternalServerErrorRetries": 4}}},
        {"A": [status(500)], "B": [status(500)]},
        1,
        "h",
    ),
    (
        "retry_policy AuthenticationErrorRetries 2, lone 401",
        [dep("g", "a1", "A")],
        {"num_retries": 0, "retry_policy": {"AuthenticationErrorRetries": 2}},
        {"A": [status(401)]},
        1,
    ),
    (
        "retry_policy BadRequestErrorRetries 1, lone 400",
        [dep("g", "a1", "A")],
        {"num_retries": 0, "retry_policy": {"BadRequestErrorRetries": 1}},
        {"A": [status(400)]},
        1,
    ),
    # -- request defaults --
    (
        "default_litellm_params temperature 0.3 (deployment says 0.9)",
        [dep("g", "a1", "A", temperature=0.9)],
        {"default_litellm_params": {"temperature": 0.3, "max_tokens": 7}},
        {"A": [ok()]},
        1,
    ),
]


def model_list(row_deps, urls):
    out = []
    for group, id_, upstream, params in row_deps:
        litellm_params = {"model": "openai/gpt-4o-mini", "api_base": urls[upstream], "api_key": KEY}
        litellm_params.update(params)
        if isinstance(litellm_params.get("api_key"), str) and litellm_params["api_key"].startswith("os.environ/"):
            litellm_params["api_key"] = os.environ.get(litellm_params["api_key"][len("os.environ/") :])
        out.append({"model_name": group, "litellm_params": litellm_params, "model_info": {"id": id_}})
    return out


def outcome(result):
    if isinstance(result, Exception):
        return f"{type(result).__name__}({getattr(result, 'status_code', '-')})"
    return repr(result.choices[0].message.content)


async def run_row(row):
    name, deps, settings, scripts, requests = row[:5]
    model = row[5] if len(row) > 5 else "g"
    gap = (row[6] if len(row) > 6 else {}).get("gap", 0)
    # The strategies pick with `random`: seeded, a row prints the same figures every run.
    random.seed(7)
    upstreams = {key: Upstream(script) for key, script in scripts.items()}
    urls = {key: up.url for key, up in upstreams.items()}
    urls["refused"] = refused_url()
    router = Router(model_list=model_list(deps, urls), **settings)
    WAITS.clear()
    results = []
    for i in range(requests):
        if i and gap:
            await _real_sleep(gap)
        try:
            results.append(
                await router.acompletion(model=model, messages=[{"role": "user", "content": "what is the fault?"}])
            )
        except Exception as e:  # noqa: BLE001  # the outcome is what is recorded
            results.append(e)
    calls = {key: up.calls for key, up in upstreams.items()}
    bodies = {key: up.bodies[:1] for key, up in upstreams.items() if "default_litellm_params" in settings}
    for up in upstreams.values():
        up.close()
    outcomes = [outcome(r) for r in results]
    # Runs of the same outcome, shortened: ["'ok'", "'ok'", "X"] -> ["2x 'ok'", "X"].
    runs = []
    for o in outcomes:
        if runs and runs[-1][1] == o:
            runs[-1][0] += 1
        else:
            runs.append([1, o])
    shown = ", ".join(o if n == 1 else f"{n}x {o}" for n, o in runs)
    line = f"| {name} | {calls} | {shown} | {list(WAITS)} |"
    if bodies:
        sent = {k: [{p: b.get(p) for p in ("temperature", "max_tokens")} for b in v] for k, v in bodies.items()}
        line += f" sent {sent}"
    print(line, flush=True)


async def main():
    wanted = sys.argv[1:]
    version = getattr(litellm, "version", None) or litellm._version.version  # type: ignore[attr-defined]
    print(f"litellm {version}\n")
    print("| row | calls per upstream | outcome per request | retry waits asked (s) |")
    print("|---|---|---|---|")
    for row in ROWS:
        if wanted and not any(w in row[0] for w in wanted):
            continue
        started = time.monotonic()
        await run_row(row)
        if time.monotonic() - started > 30:
            print(f"  (slow row: {time.monotonic() - started:.0f}s)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
