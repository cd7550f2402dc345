"""Shared pieces of the study tests: a pairs file and a live server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

from harness_ext.study.server import StudyServer, make_server
from harness_ext.study.store import open_study


def write_pairs(path: Path, n: int = 4) -> Path:
    rows = [{"id": f"p{i}", "instruction": f"Instruction number {i}: explain topic {i}.",
             "response_a": f"LONG answer {i} from the long model, with detail.", "model_a": "long-1k",
             "response_b": f"short answer {i}", "model_b": "alpaca-52k"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@contextlib.contextmanager
def running_server(db: Path, pairs: Path | None, seed: int = 0) -> Iterator[StudyServer]:
    store = open_study(db, pairs)
    server = make_server(store, "127.0.0.1", 0, seed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        store.close()
        thread.join(timeout=5)
