"""The official OpenAI and Anthropic Python SDKs on what issue 15 asks serve to pass back:
every choice of `n`, `logprobs` (plain and streamed), embeddings (the SDK asks for base64 by
default), `models.retrieve`, legacy completions and Anthropic's token counting.

Run by tests/it/serve/sdk.rs: `python3 tests/sdk/parity_rows.py BASE_URL KEY`, with a server
whose group `fast` answers two choices ("Hello", "Bonjour", each token with logprobs), `emb`
an OpenAI-compatible embedding model answering [0.5, -0.5] per input, and `emb-mock` a
`mock/` embedding model. Prints one `ok NAME` line per check; exits 1 at the first failure.
"""

import math
import sys

import anthropic
import openai

BASE, KEY = sys.argv[1], sys.argv[2]
MESSAGES = [{"role": "user", "content": "hi"}]


def check(name, got, want):
    if got != want:
        print(f"FAIL {name}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok {name}")


oa = openai.OpenAI(base_url=f"{BASE}/v1", api_key=KEY, max_retries=0, timeout=20)

completion = oa.chat.completions.create(
    model="fast", messages=MESSAGES, n=2, logprobs=True, top_logprobs=1
)
check("openai n=2 choices", [c.message.content for c in completion.choices], ["Hello", "Bonjour"])
check("openai n=2 indexes", [c.index for c in completion.choices], [0, 1])
check(
    "openai logprobs",
    [c.logprobs.content[0].token for c in completion.choices],
    ["Hello", "Bonjour"],
)
check("openai system_fingerprint", completion.system_fingerprint, "fp_up")

texts, tokens = {}, {}
for chunk in oa.chat.completions.create(
    model="fast", messages=MESSAGES, n=2, logprobs=True, stream=True
):
    for c in chunk.choices:
        texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
        if c.logprobs and c.logprobs.content:
            tokens.setdefault(c.index, []).extend(t.token for t in c.logprobs.content)
check("openai stream n=2 choices", texts, {0: "Hello", 1: "Bonjour"})
check("openai stream logprobs", tokens, {0: ["Hel", "lo"], 1: ["Bon", "jour"]})

emb = oa.embeddings.create(model="emb", input=["a", "b"])
check("openai embeddings count", len(emb.data), 2)
check("openai embeddings vector", [round(x, 3) for x in emb.data[1].embedding], [0.5, -0.5])
check("openai embeddings model", emb.model, "emb")
check("openai embeddings usage", emb.usage.prompt_tokens, 3)

mock = oa.embeddings.create(model="emb-mock", input="hello", dimensions=8)
vector = mock.data[0].embedding
check("openai embeddings base64 from llmux", len(vector), 8)
check("openai embeddings unit length", round(math.sqrt(sum(x * x for x in vector)), 3), 1.0)
floats = oa.embeddings.create(model="emb-mock", input="hello", dimensions=8, encoding_format="float")
check(
    "openai embeddings float = base64",
    [round(x, 5) for x in floats.data[0].embedding],
    [round(x, 5) for x in vector],
)

check("openai models.retrieve", oa.models.retrieve("fast").id, "fast")
try:
    oa.models.retrieve("no-such-model")
    print("FAIL openai models.retrieve unknown: no error")
    sys.exit(1)
except openai.NotFoundError:
    print("ok openai models.retrieve unknown (NotFoundError)")

legacy = oa.completions.create(model="fast", prompt="hi", n=2, logprobs=1)
check("openai legacy completions", [c.text for c in legacy.choices], ["Hello", "Bonjour"])
check("openai legacy logprobs", legacy.choices[1].logprobs.tokens, ["Bonjour"])

an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0, timeout=20)
count = an.messages.count_tokens(model="fast", messages=MESSAGES)
check("anthropic count_tokens", count.input_tokens > 0, True)
print("all ok")
