#!/usr/bin/env python3
"""Regenerates the data llmux takes from LiteLLM (https://github.com/BerriAI/litellm, MIT,
Copyright (c) 2023 Berri AI; the notice is in src/metrics/prices.LICENSE):

  src/metrics/prices.json           prices and context windows of every chat and embedding
                                    model of the providers llmux speaks, in LiteLLM's
                                    model_prices_and_context_window.json format, cut to the
                                    fields llmux reads
  src/config/litellm_providers.txt  LiteLLM's provider names (its model prefixes), one a line,
                                    so that a deployment of a provider llmux does not speak is
                                    told apart from a typo

Usage: scripts/litellm-data.py [LITELLM_PACKAGE_DIR]

LITELLM_PACKAGE_DIR is the `litellm` directory of an installed package (its
model_prices_and_context_window_backup.json and types/utils.py are read; nothing is imported).
Without it, the package importable by this python3 is used. After a run, `git diff --stat`
shows what changed; `cargo test --test it metrics::prices` checks the result.
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRICES_OUT = ROOT / "src/metrics/prices.json"
PROVIDERS_OUT = ROOT / "src/config/litellm_providers.txt"
FAMILIES_SRC = ROOT / "src/config/providers.rs"
PRICES_SRC = ROOT / "src/metrics/prices.rs"

# The model kinds llmux calls.
MODES = {"chat", "embedding"}
# The fields llmux reads (src/metrics/prices.rs), in the order they are written.
FIELDS = [
    "litellm_provider",
    "mode",
    "max_input_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
    "tiered_pricing",
]
# Fields that make an entry worth keeping.
FACTS = FIELDS[2:]


def package_dir():
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        sys.exit("litellm is not importable here; give its package directory as the argument")
    return Path(spec.origin).parent


def llmux_families():
    """The provider family names of src/config/providers.rs (`family("name", ...)` and
    `name: "name"`), read from the source so the two never disagree."""
    text = FAMILIES_SRC.read_text()
    names = re.findall(r'family\(\s*"([a-z0-9_]+)"', text)
    names += re.findall(r'\bname:\s*"([a-z0-9_]+)"', text)
    if not names:
        sys.exit(f"no provider families found in {FAMILIES_SRC}")
    # The LiteLLM providers whose entries price one of llmux's own (`PRICED_AS` in
    # src/metrics/prices.rs: zhipu is priced as bigmodel).
    priced_as = re.search(r"const PRICED_AS: [^=]+= &\[(.*?)\];", PRICES_SRC.read_text(), re.S)
    if priced_as is None:
        sys.exit(f"PRICED_AS not found in {PRICES_SRC}")
    names += re.findall(r'\(\s*"[a-z0-9_]+",\s*"([a-z0-9_]+)"\s*\)', priced_as.group(1))
    return set(names)


def spoken(provider, families):
    # LiteLLM files some models under `<provider>-<kind>` (fireworks_ai-embedding-models) and
    # matches them to `<provider>` deployments.
    return provider in families or any(provider.startswith(f + "-") for f in families)


def prices(pkg, families):
    table = json.loads((pkg / "model_prices_and_context_window_backup.json").read_text())
    out = {}
    for name, entry in sorted(table.items()):
        if not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        if not spoken(str(entry.get("litellm_provider")), families):
            continue
        kept = {f: entry[f] for f in FIELDS if f in entry}
        if any(f in kept for f in FACTS):
            out[name] = kept
    return out


def providers(pkg):
    source = (pkg / "types/utils.py").read_text()
    body = source.split("class LlmProviders(str, Enum):", 1)
    if len(body) != 2:
        sys.exit("LlmProviders not found in litellm/types/utils.py")
    names = []
    for line in body[1].splitlines()[1:]:
        m = re.match(r'\s+[A-Z0-9_]+\s*=\s*"([^"]+)"', line)
        if m:
            names.append(m.group(1))
        elif line.strip() and not line.strip().startswith("#"):
            break
    if not names:
        sys.exit("no providers read from LlmProviders")
    return sorted(set(names))


def version(pkg):
    for dist in pkg.parent.glob("litellm-*.dist-info"):
        return dist.name.removeprefix("litellm-").removesuffix(".dist-info")
    return "unknown"


def main():
    pkg = package_dir()
    families = llmux_families()
    table = prices(pkg, families)
    # One model a line: a regenerated table reads as a diff of the models that changed.
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in table.items()]
    PRICES_OUT.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    names = providers(pkg)
    PROVIDERS_OUT.write_text("\n".join(names) + "\n")
    print(
        f"litellm {version(pkg)}: {len(table)} models → {PRICES_OUT.relative_to(ROOT)}, "
        f"{len(names)} providers → {PROVIDERS_OUT.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
