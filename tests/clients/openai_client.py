#!/usr/bin/env python3
"""Drives a running arena controller with the official `openai` Python package.

Runs under the pinned old client (1.12.0) and the newest one (see scripts/lib.sh); what the old
one lacks (`client.responses`) is skipped there, with a note on stdout.

Environment: ARENA_BASE_URL (e.g. http://127.0.0.1:8080/v1), ARENA_API_KEY, ARENA_MODEL.
Exits non-zero, with the reason on stderr, when anything is off. Run by tests/clients.rs.
"""
import os
import sys

import openai

base_url = os.environ["ARENA_BASE_URL"]
model = os.environ["ARENA_MODEL"]
client = openai.OpenAI(base_url=base_url, api_key=os.environ.get("ARENA_API_KEY", "none"), max_retries=0)
print(f"openai {openai.__version__}")


def check(cond, what):
    if not cond:
        sys.exit(f"openai {openai.__version__} client check failed: {what}")


def refused(param, call):
    """`call` must fail with a 400 whose `param` is `param`."""
    try:
        call()
    except openai.BadRequestError as e:
        check(e.status_code == 400, f"status {e.status_code} for {param}")
        check(getattr(e, "param", None) == param, f"param {getattr(e, 'param', None)!r} != {param!r}: {e}")
        return e
    check(False, f"{param}: accepted")


models = [m.id for m in client.models.list().data]
check(model in models, f"{model} in {models}")

messages = [{"role": "user", "content": "hello world"}]
full = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=12)
text = full.choices[0].message.content
check(full.choices[0].finish_reason in ("stop", "length"), f"finish_reason {full.choices[0].finish_reason}")
check(full.usage.completion_tokens >= 1, f"usage {full.usage}")
check(full.choices[0].logprobs is None, f"logprobs unasked: {full.choices[0].logprobs}")

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

# The developer role is the system role; content may be a list of text parts.
as_system = client.chat.completions.create(
    model=model, temperature=0, max_tokens=8,
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}])
as_developer = client.chat.completions.create(
    model=model, temperature=0, max_tokens=8,
    messages=[{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
              {"role": "user", "content": [{"type": "text", "text": "hello world"}]}])
check(as_developer.choices[0].message.content == as_system.choices[0].message.content,
      f"developer {as_developer.choices[0].message.content!r} != system {as_system.choices[0].message.content!r}")
check(as_developer.usage.prompt_tokens == as_system.usage.prompt_tokens, "developer prompt tokens")
refused("messages[0].content[1].type", lambda: client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]))

# n choices: each its own index, the prompt counted once.
two = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=12, n=2)
check(sorted(c.index for c in two.choices) == [0, 1], f"indices {[c.index for c in two.choices]}")
check(all(c.message.content == text for c in two.choices), "greedy choices equal the single answer")
check(two.usage.prompt_tokens == full.usage.prompt_tokens, f"n=2 prompt tokens {two.usage}")
check(two.usage.completion_tokens == 2 * full.usage.completion_tokens, f"n=2 completion tokens {two.usage}")
by_index = {}
for chunk in client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=12, n=2,
                                            stream=True):
    for c in chunk.choices:
        by_index.setdefault(c.index, []).append(c.delta.content or "")
check({i: "".join(p) for i, p in by_index.items()} == {0: text, 1: text}, f"streamed n=2 {by_index}")

# Log-probabilities: the greedy token is the most likely alternative, with the same value.
lp = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=12,
                                    logprobs=True, top_logprobs=3)
content = lp.choices[0].logprobs.content
check(len(content) == lp.usage.completion_tokens or lp.choices[0].finish_reason == "stop",
      f"{len(content)} logprobs for {lp.usage.completion_tokens} tokens")
check(len(content) >= 1, "no logprobs")
for t in content:
    check(t.logprob <= 0 and len(t.top_logprobs) == 3, f"token {t}")
    check(bytes(t.bytes) == bytes(t.top_logprobs[0].bytes), f"greedy token is the top one: {t}")
    check(abs(t.logprob - t.top_logprobs[0].logprob) < 1e-4, f"same logprob: {t}")
    check(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob, f"sorted {t}")
streamed_lp = []
for chunk in client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=12,
                                            logprobs=True, stream=True):
    for c in chunk.choices:
        if c.logprobs is not None and c.logprobs.content:
            streamed_lp.extend(t.logprob for t in c.logprobs.content)
check(len(streamed_lp) == len(content), f"streamed logprobs {len(streamed_lp)} != {len(content)}")
refused("top_logprobs", lambda: client.chat.completions.create(
    model=model, messages=messages, logprobs=True, top_logprobs=21))

done = client.completions.create(model=model, prompt="hello world", temperature=0, max_tokens=8, logprobs=2)
check(done.object == "text_completion" and done.usage.completion_tokens == 8, f"completion {done}")
check(len(done.choices[0].logprobs.tokens) == 8 and len(done.choices[0].logprobs.top_logprobs) == 8,
      f"completion logprobs {done.choices[0].logprobs}")

# Unsupported parameters and errors name the client's field.
refused("tools", lambda: client.chat.completions.create(model=model, messages=messages, tools=[
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]))
refused("response_format", lambda: client.chat.completions.create(
    model=model, messages=messages, response_format={"type": "json_object"}))
refused("made_up_field", lambda: client.chat.completions.create(
    model=model, messages=messages, extra_body={"made_up_field": 1}))
e = refused("max_tokens", lambda: client.chat.completions.create(model=model, messages=messages, max_tokens=100000))
check("max_new_tokens" not in str(e), f"worker's name leaked: {e}")

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

if hasattr(client, "responses"):
    short = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=8)
    r = client.responses.create(model=model, input="hello world", temperature=0, max_output_tokens=8)
    check(r.output_text == short.choices[0].message.content, f"responses {r.output_text!r}")
    check(r.usage.input_tokens == short.usage.prompt_tokens, f"responses usage {r.usage}")
    check(r.usage.output_tokens == short.usage.completion_tokens, f"responses usage {r.usage}")
    check(r.status in ("completed", "incomplete"), f"status {r.status}")
    deltas, last = [], None
    for event in client.responses.create(model=model, input=[{"role": "user", "content": "hello world"}],
                                         temperature=0, max_output_tokens=8, stream=True):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        last = event
    check("".join(deltas) == r.output_text, f"streamed response {''.join(deltas)!r}")
    check(last.type in ("response.completed", "response.incomplete"), f"last event {last.type}")
    check(last.response.output_text == r.output_text, "final response text")
    refused("tools", lambda: client.responses.create(model=model, input="hi", tools=[{"type": "web_search"}]))
    refused("max_output_tokens", lambda: client.responses.create(model=model, input="hi", max_output_tokens=100000))
else:
    print("note: this client has no responses API; /v1/responses is checked with the newer one")

print(f"openai {openai.__version__} client: all checks passed")
