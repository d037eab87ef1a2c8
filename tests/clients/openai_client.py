#!/usr/bin/env python3
"""Drives a running arena controller with the official `openai` Python package.

Environment: ARENA_BASE_URL (e.g. http://127.0.0.1:8080/v1), ARENA_API_KEY, ARENA_MODEL.
Exits non-zero, with the reason on stderr, when anything is off. Run by tests/clients.rs.
"""
import os
import sys

import openai

base_url = os.environ["ARENA_BASE_URL"]
model = os.environ["ARENA_MODEL"]
client = openai.OpenAI(base_url=base_url, api_key=os.environ.get("ARENA_API_KEY", "none"))


def check(cond, what):
    if not cond:
        sys.exit(f"openai client check failed: {what}")


models = [m.id for m in client.models.list().data]
check(model in models, f"{model} in {models}")

messages = [{"role": "user", "content": "hello world"}]
full = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=12)
text = full.choices[0].message.content
check(full.choices[0].finish_reason in ("stop", "length"), f"finish_reason {full.choices[0].finish_reason}")
check(full.usage.completion_tokens >= 1, f"usage {full.usage}")

streamed = client.chat.completions.create(
    model=model, messages=messages, temperature=0, max_tokens=12, stream=True,
    # openai 1.12 predates the stream_options argument; the field goes in the body as is.
    extra_body={"stream_options": {"include_usage": True}},
)
parts, usage = [], None
for chunk in streamed:
    if getattr(chunk, "usage", None) is not None:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            parts.append(c.delta.content)
check("".join(parts) == text, f"streamed {''.join(parts)!r} != {text!r}")
completion_tokens = usage["completion_tokens"] if isinstance(usage, dict) else getattr(usage, "completion_tokens", None)
check(completion_tokens == full.usage.completion_tokens, f"stream usage {usage}")

done = client.completions.create(model=model, prompt="hello world", temperature=0, max_tokens=8)
check(done.object == "text_completion" and done.usage.completion_tokens == 8, f"completion {done}")

try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    check(False, "unknown model accepted")
except openai.NotFoundError as e:
    check("no-such-model" in str(e), f"404 message {e}")

try:
    client.chat.completions.create(model=model, messages=messages, temperature=5)
    check(False, "temperature 5 accepted")
except openai.BadRequestError as e:
    check("temperature" in str(e), f"400 message {e}")

print("openai client: all checks passed")
