"""The official OpenAI and Anthropic Python SDKs against a running `llmux serve`, unchanged:
plain and streamed answers, usage, models, and the errors each SDK maps to its own exception.

Run by tests/it/serve/sdk.rs: `python3 tests/sdk/official_clients.py BASE_URL KEY`, with a
server whose group `fast` answers "Hello world" (12 prompt tokens, 2 completion tokens).
Prints one `ok NAME` line per check; exits 1 at the first failure, saying what differed.
"""

import sys

import anthropic
import openai

BASE, KEY = sys.argv[1], sys.argv[2]
TEXT = "Hello world"
MESSAGES = [{"role": "user", "content": "hi"}]


def check(name, got, want):
    if got != want:
        print(f"FAIL {name}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok {name}")


def raises(name, error, call):
    try:
        call()
    except error as e:
        print(f"ok {name} ({type(e).__name__} {getattr(e, 'status_code', '')})")
        return
    except Exception as e:  # noqa: BLE001 - any other exception is the failure reported
        print(f"FAIL {name}: raised {type(e).__name__}: {e}, want {error.__name__}")
        sys.exit(1)
    print(f"FAIL {name}: no error, want {error.__name__}")
    sys.exit(1)


oa = openai.OpenAI(base_url=f"{BASE}/v1", api_key=KEY, max_retries=0, timeout=20)

raw = oa.chat.completions.with_raw_response.create(model="fast", messages=MESSAGES)
completion = raw.parse()
check("openai plain text", completion.choices[0].message.content, TEXT)
check("openai plain finish", completion.choices[0].finish_reason, "stop")
check(
    "openai plain usage",
    (completion.usage.prompt_tokens, completion.usage.completion_tokens),
    (12, 2),
)
check("openai x-llmux-deployment", raw.headers.get("x-llmux-deployment"), "dep-a")

chunks = list(
    oa.chat.completions.create(
        model="fast",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("openai stream text", text, TEXT)
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
check("openai stream finish", finishes, ["stop"])
last = chunks[-1]
check("openai stream usage chunk", (last.choices, last.usage.completion_tokens), ([], 2))

check("openai models", "fast" in [m.id for m in oa.models.list()], True)
raises(
    "openai unknown model",
    openai.NotFoundError,
    lambda: oa.chat.completions.create(model="no-such-group", messages=MESSAGES),
)
bad = openai.OpenAI(base_url=f"{BASE}/v1", api_key="sk-wrong", max_retries=0, timeout=20)
raises(
    "openai wrong key",
    openai.AuthenticationError,
    lambda: bad.chat.completions.create(model="fast", messages=MESSAGES),
)

an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0, timeout=20)

message = an.messages.create(model="fast", max_tokens=64, messages=MESSAGES)
check("anthropic plain text", message.content[0].text, TEXT)
check("anthropic plain stop", message.stop_reason, "end_turn")
check(
    "anthropic plain usage",
    (message.usage.input_tokens, message.usage.output_tokens),
    (12, 2),
)

with an.messages.stream(model="fast", max_tokens=64, messages=MESSAGES) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
check("anthropic stream text", text, TEXT)
check("anthropic stream stop", final.stop_reason, "end_turn")
check("anthropic stream usage", final.usage.output_tokens, 2)

raises(
    "anthropic unknown model",
    anthropic.NotFoundError,
    lambda: an.messages.create(model="no-such-group", max_tokens=64, messages=MESSAGES),
)
bad = anthropic.Anthropic(base_url=BASE, api_key="sk-wrong", max_retries=0, timeout=20)
raises(
    "anthropic wrong key",
    anthropic.AuthenticationError,
    lambda: bad.messages.create(model="fast", max_tokens=64, messages=MESSAGES),
)
print("all ok")
