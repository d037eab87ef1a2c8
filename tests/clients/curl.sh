#!/usr/bin/env bash
# Drives a running arena controller with curl: the README's examples, checked.
# Environment: ARENA_BASE_URL (e.g. http://127.0.0.1:8080/v1), ARENA_API_KEY, ARENA_MODEL.
set -euo pipefail
auth=(-H "Authorization: Bearer ${ARENA_API_KEY:-none}")

out=$(curl -sS --fail-with-body "${auth[@]}" "$ARENA_BASE_URL/chat/completions" \
  -H 'Content-Type: application/json' \
  -d "{\"model\": \"$ARENA_MODEL\", \"messages\": [{\"role\": \"user\", \"content\": \"hello\"}], \"temperature\": 0, \"max_tokens\": 8}")
echo "$out" | grep -q '"object":"chat.completion"' || { echo "curl: unexpected body: $out" >&2; exit 1; }

out=$(curl -sS -N --fail-with-body "${auth[@]}" "$ARENA_BASE_URL/chat/completions" \
  -H 'Content-Type: application/json' \
  -d "{\"model\": \"$ARENA_MODEL\", \"messages\": [{\"role\": \"user\", \"content\": \"hello\"}], \"max_tokens\": 8, \"stream\": true}")
echo "$out" | tail -n 3 | grep -q '^data: \[DONE\]' || { echo "curl: stream did not end with [DONE]: $out" >&2; exit 1; }

code=$(curl -sS -o /dev/null -w '%{http_code}' "$ARENA_BASE_URL/models")
[ "$code" = 401 ] || { echo "curl: expected 401 without a key, got $code" >&2; exit 1; }
echo "curl: all checks passed"
