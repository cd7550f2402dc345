"""The OpenAI Batch API behind the same client and cache: half price, answers within 24 hours.

`run_batch` takes the requests a client call has claimed (llm/cache.py) and

1. collects first any batch an earlier, killed run submitted for them (batch ids are stored in the
   cache database the moment a batch is created), so nothing is submitted twice;
2. uploads the rest as JSONL through the files endpoint (`custom_id` = the request's cache key),
   split at the API's per-batch limits (50,000 requests, 200 MB), and creates one batch per file;
3. polls each batch until it is completed, failed, expired or cancelled, then downloads its output
   file (answers land in the cache, priced at batch rates) and its error file;
4. sends the lines that failed or were left unanswered by an expired batch live, through the
   client's ordinary retrying path.

Claims are renewed while batches run, so other processes wait instead of paying again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from harness_ext.core.records import ChatRequest, ChatResult
from harness_ext.llm.ledger import max_completion_tokens, prompt_tokens

OpenAIChatClient = Any  # llm/client.py's client (not imported: client imports this module)

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def batch_line(key: str, req: ChatRequest) -> bytes:
    """One line of a batch input file."""
    body = {**req.params_dict(), "model": req.model,
            "messages": [{"role": t.role, "content": t.content} for t in req.messages]}
    return (json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body},
                       ensure_ascii=False) + "\n").encode("utf-8")


def split_lines(lines: list[tuple[str, bytes]], max_requests: int, max_bytes: int) -> list[list[tuple[str, bytes]]]:
    """Consecutive chunks of at most `max_requests` lines and `max_bytes` bytes each.

    >>> [len(c) for c in split_lines([(str(i), b"x" * 10) for i in range(7)], 3, 25)]
    [2, 2, 2, 1]
    """
    chunks: list[list[tuple[str, bytes]]] = []
    size = 0
    for key, line in lines:
        if not chunks or len(chunks[-1]) >= max_requests or size + len(line) > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append((key, line))
        size += len(line)
    return chunks


def endpoint_id(client: OpenAIChatClient) -> str:
    """Which server a stored batch id belongs to (the base URL without credentials)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(client.base_url or "https://api.openai.com/v1")
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


async def run_batch(client: OpenAIChatClient, sdk: Any, todo: dict[str, ChatRequest],
                    results: dict[str, ChatResult], holder: str) -> None:
    """Answer the claimed `todo` through the Batch API (see module doc); results go to `results` and the cache."""
    cache = client.cache
    assert cache is not None
    where = endpoint_id(client)
    heartbeat = asyncio.ensure_future(client._heartbeat(list(todo), holder))
    try:
        for batch_id, keys, models in cache.open_batches(where):
            if set(keys) & set(todo):
                client.stats["batches_resumed"] += 1
                log.info("collecting batch %s submitted by an earlier run", batch_id)
                await _collect(client, sdk, batch_id, dict(zip(keys, models, strict=True)), todo, results, holder)
        pending = [(k, r) for k, r in todo.items() if k not in results]
        submitted = await _submit(client, sdk, pending, where)
        await asyncio.gather(*(_collect(client, sdk, b, models, todo, results, holder)
                               for b, models in submitted))
    finally:
        heartbeat.cancel()
        await sdk.close()
    left = {k: r for k, r in todo.items() if k not in results}
    if client.budget is not None:  # requests the budget kept out of the batch stay unsent
        kept_out = [k for k in left if k in client._over_budget]
        left = {k: r for k, r in left.items() if k not in client._over_budget}
        for k in kept_out:
            results[k] = ChatResult(text=None, error="not sent: it could exceed --budget")
        cache.release(kept_out, holder)  # another process (with a larger budget) may send them
    if left:
        client.stats["batch_retried_live"] += len(left)
        log.info("%d batch lines failed or expired; sending them live", len(left))
        await client._run(left, results, holder)


async def _submit(client: OpenAIChatClient, sdk: Any, pending: list[tuple[str, ChatRequest]],
                  where: str) -> list[tuple[str, dict[str, str]]]:
    """Upload and create the batches; each id is stored before anything else can fail."""
    o = client.options
    lines = []
    for key, req in pending:
        if client.budget is not None:
            price = client.ledger.prices.price(req.model)
            if price is None or not client.budget.reserve(
                    price.cost(prompt_tokens(req), max_completion_tokens(req), batch=True)):
                client._over_budget.add(key)
                continue
        lines.append((key, batch_line(key, req)))
    model_of = {k: r.model for k, r in pending}
    submitted = []
    for chunk in split_lines(lines, o.batch_max_requests, o.batch_max_bytes):
        data = b"".join(line for _, line in chunk)
        file = await sdk.files.create(file=("harness_ext_batch.jsonl", data), purpose="batch")
        batch = await sdk.batches.create(input_file_id=file.id, endpoint=ENDPOINT, completion_window="24h")
        models = {k: model_of[k] for k, _ in chunk}
        client.cache.add_batch(batch.id, where, list(models), list(models.values()))
        client.stats["batches_submitted"] += 1
        client.stats["batch_requests"] += len(chunk)
        submitted.append((batch.id, models))
    return submitted


async def _collect(client: OpenAIChatClient, sdk: Any, batch_id: str, models: dict[str, str],
                   todo: dict[str, ChatRequest], results: dict[str, ChatResult], holder: str) -> None:
    """Poll one batch to its end, then store every answered line (also lines of keys not asked now)."""
    while True:
        batch = await sdk.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            break
        await asyncio.sleep(client.options.batch_poll_seconds)
    answered = 0
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        content = await sdk.files.content(file_id)
        for raw in content.text.splitlines():
            key, res = _parse_line(raw)
            if key is None or key not in models:
                continue
            if res is None or not res.ok:
                client.stats["batch_failed_lines"] += 1
                continue
            req = todo.get(key) or ChatRequest(models[key], ())
            client._store(key, req, res, holder, "batch")
            if key in todo:
                results[key] = res
            answered += 1
    client.stats[f"batches_{batch.status}"] += 1
    client.cache.close_batch(batch_id, batch.status)
    log.info("batch %s %s: %d of %d lines answered", batch_id, batch.status, answered, len(models))


def _parse_line(raw: str) -> tuple[str | None, ChatResult | None]:
    """(custom_id, result) of one output or error line; result None when the line carries an error."""
    try:
        obj = json.loads(raw)
        key = obj["custom_id"]
    except (ValueError, KeyError, TypeError):
        return None, None
    response = obj.get("response") or {}
    if obj.get("error") or response.get("status_code") != 200:
        return key, None
    body = response.get("body") or {}
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return key, None
    if not isinstance(text, str):
        return key, None
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return key, ChatResult(text=text, prompt_tokens=usage.get("prompt_tokens"),
                           completion_tokens=usage.get("completion_tokens"), finish_reason=choice.get("finish_reason"))
