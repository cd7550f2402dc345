"""Diversity: k-center greedy over row embeddings (the coverage idea behind DEITA's representation filter).

k-center greedy (Sener & Savarese 2018) picks a first center, then repeatedly the row farthest (by
cosine distance, i.e. Euclidean distance of L2-normalised vectors) from every center picked so far.
DEITA (Liu et al. 2023, arXiv 2312.15685) instead walks rows in score order and keeps one when its
nearest kept neighbour is farther than a threshold; k-center needs no threshold and fixes k, which is
what an equal-k ablation wants. A quality or length score enters in two ways: it chooses the first
center, and with `oversample` > 1 the greedy picks oversample * k centers and the k best of them by
that score are kept ("longest among diverse").

Embeddings: mean-pooled last hidden states of the IFD scoring model (same forward pass, cached with
the scores), or any sentence-transformers model the user names (optional import, cached per model
and row content).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness_ext.core.errors import require


def k_center_greedy(emb: Any, k: int, first: int = 0) -> list[int]:
    """Indices of k rows chosen greedily: each the farthest (cosine) from those already chosen.

    Ties go to the lower index. `emb` is an (n, d) array; rows need not be normalised.
    """
    import numpy as np

    x = np.asarray(emb, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    k = min(k, n)
    if k <= 0:
        return []
    picked = [first]
    nearest = np.linalg.norm(x - x[first], axis=1)
    nearest[first] = -1.0
    while len(picked) < k:
        nxt = int(np.argmax(nearest))
        picked.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(x - x[nxt], axis=1))
        nearest[picked] = -1.0
    return picked


def sentence_embeddings(model_name: str, texts: Sequence[str], keys: Sequence[str], *,
                        progress: bool = True) -> dict[str, Any]:
    """Embeddings from a sentence-transformers model, through a cache per (model, row content)."""
    import numpy as np

    from harness_ext.core.artifacts import stable_hash
    from harness_ext.core.paths import cache_dir
    from harness_ext.selection.ifd import RowScore, load_shards, write_shard

    folder = cache_dir() / "scores" / f"st-{stable_hash({'model': model_name})[:16]}"
    have = load_shards(folder)
    todo = [(k, t) for k, t in dict(zip(keys, texts, strict=True)).items() if k not in have]
    if todo:
        st = require("sentence_transformers", package="sentence-transformers", extra="select",
                     purpose="embeddings from a sentence-transformers model (embed_model)")
        model = st.SentenceTransformer(model_name)
        for i in range(0, len(todo), 1024):
            part = todo[i: i + 1024]
            vecs = model.encode([t for _, t in part], batch_size=64, show_progress_bar=progress)
            nan = float("nan")
            write_shard(folder, {k: RowScore(nan, nan, nan, np.asarray(v, np.float32))
                                 for (k, _), v in zip(part, vecs, strict=True)})
        have = load_shards(folder)
    return {k: have[k].embedding for k in keys}
