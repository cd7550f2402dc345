"""NEFTune: noise only while training, none on padding under the reference scaling, and the
per-example magnitude alpha / sqrt(L * d) of the paper (hf scaling: padded length, padding too)."""

from __future__ import annotations

import math

import pytest

from harness_ext.train.neftune import NEFTune, token_lengths
from tests.train_fixtures import one_torch_thread  # noqa: F401  (autouse fixture)

torch = pytest.importorskip("torch")


@pytest.fixture()
def model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir)


def _embedding_noise(model, hook, input_ids, attention_mask, **kw):
    """What the hook added to the embedding output during one forward call."""
    emb = model.get_input_embeddings()
    seen = {}
    handle = emb.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o.detach().clone()))
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, **kw)
    finally:
        handle.remove()
    clean = emb.weight[input_ids].detach()
    return seen["out"] - clean


def _batch(model):
    # row 0: 6 real tokens then 4 padding; row 1: 10 real tokens
    ids = torch.randint(5, model.config.vocab_size, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[0, 6:] = 0
    return ids, mask


def test_reference_noise_magnitude_per_example_and_none_on_padding(model):
    torch.manual_seed(0)
    alpha, d = 5.0, model.config.hidden_size
    hook = NEFTune(alpha, "reference")
    # attached first, so the probe hook registered later sees the noisy output
    hook.attach(model)
    model.train()
    ids, mask = _batch(model)
    noise = _embedding_noise(model, hook, ids, mask)
    assert torch.count_nonzero(noise[0, 6:]) == 0  # padding untouched
    for row, length in ((0, 6), (1, 10)):
        bound = alpha / math.sqrt(length * d)
        real = noise[row, :length]
        assert real.abs().max() <= bound * (1 + 1e-5)
        assert real.abs().max() > 0.9 * bound  # uniform on [-bound, bound]: the max comes close
        # variance of U(-b, b) is b^2 / 3
        assert real.pow(2).mean().item() == pytest.approx(bound**2 / 3, rel=0.15)
    hook.detach()


def test_hf_scaling_uses_padded_length_and_noises_padding(model):
    torch.manual_seed(0)
    alpha, d = 5.0, model.config.hidden_size
    hook = NEFTune(alpha, "hf").attach(model)
    model.train()
    ids, mask = _batch(model)
    noise = _embedding_noise(model, hook, ids, mask)
    bound = alpha / math.sqrt(10 * d)
    assert torch.count_nonzero(noise[0, 6:]) > 0
    assert noise.abs().max() <= bound * (1 + 1e-5)
    assert noise[0, :6].pow(2).mean().item() == pytest.approx(bound**2 / 3, rel=0.2)


def test_no_noise_in_eval_or_generate(model):
    hook = NEFTune(50.0, "reference").attach(model)
    ids, mask = _batch(model)
    model.eval()
    assert torch.count_nonzero(_embedding_noise(model, hook, ids, mask)) == 0
    # generation: greedy output with the hook attached equals the output without it
    prompt = ids[1:, :5]
    with torch.no_grad():
        with_hook = model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
        hook.detach()
        without = model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(with_hook, without)
    # and the same hook does add noise once the model is back in training mode
    hook.attach(model)
    model.train()
    assert torch.count_nonzero(_embedding_noise(model, hook, ids, mask)) > 0


def test_packed_rows_scale_each_sequence_by_its_own_length():
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0]])
    pos = torch.tensor([[0, 1, 0, 1, 2, 3, 4, 0]])  # sequences of 2 and 5 tokens, then padding
    assert token_lengths(mask, pos).tolist() == [[2, 2, 5, 5, 5, 5, 5, 0]]
    assert token_lengths(mask).tolist() == [[7] * 7 + [0]]


def test_packed_forward_gets_per_sequence_noise(model):
    torch.manual_seed(1)
    alpha, d = 4.0, model.config.hidden_size
    hook = NEFTune(alpha).attach(model)
    model.train()
    ids = torch.randint(5, model.config.vocab_size, (1, 12))
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7]])
    noise = _embedding_noise(model, hook, ids, None, position_ids=pos)
    for sl, length in ((slice(0, 4), 4), (slice(4, 12), 8)):
        bound = alpha / math.sqrt(length * d)
        assert noise[0, sl].abs().max() <= bound * (1 + 1e-5)
        assert noise[0, sl].abs().max() > 0.9 * bound
    hook.detach()
