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


# ---------------------------------------------------------------- the authors' runs

def _uniform_draw(seed, shape):
    """The U(-1, 1) tensor the first uniform_ call after torch.manual_seed(seed) draws for `shape`."""
    torch.manual_seed(seed)
    return torch.empty(shape, dtype=torch.float32).uniform_(-1.0, 1.0)


def _per_token_magnitude(noise, draw):
    """Noise / draw on elements where the draw is not tiny, checked constant over the width: [B, T]."""
    keep = draw.abs() > 0.05
    ratio = torch.where(keep, noise / draw, torch.nan)
    mag = ratio.nanmedian(dim=-1).values
    spread = (ratio - mag.unsqueeze(-1)).abs().nan_to_num(0.0).amax(dim=-1)
    assert bool((spread <= 1e-3 * mag.abs().clamp(min=1e-12)).all())  # one magnitude per token
    return mag


@pytest.mark.parametrize("preset", ["llama2-7b-alpaca-1k-longest-neftune", "llama2-13b-alpaca-1k-longest-neftune",
                                    "llama2-7b-alpaca-1k-longest-neftune-alpha15"])
def test_paper_preset_noise_equals_the_authors_padded_runs(model, preset):
    """The authors padded every example to model_max_length (FastChat preprocess: padding="max_length")
    and let transformers' NEFTune hook scale by that padded length. Our paper presets pad a batch only
    to its longest example, yet every real token must get the magnitude the authors' token got."""
    from transformers.integrations.neftune import activate_neftune, deactivate_neftune

    from harness_ext.train import load_preset
    from harness_ext.train.neftune import from_config

    max_length = 48
    cfg = load_preset(preset, max_length=max_length)
    lengths = [5, 17, 9, 30]  # mixed; the longest is below max_length, so our batch is 30 wide, theirs 48
    ids = torch.randint(5, model.config.vocab_size, (len(lengths), max_length))
    theirs_mask = torch.zeros(len(lengths), max_length, dtype=torch.long)
    for i, n in enumerate(lengths):
        theirs_mask[i, :n] = 1
    ids = ids * theirs_mask  # pad id 0 after each example, as FastChat's right padding
    model.train()
    d = model.config.hidden_size

    # the authors: transformers' own hook on the batch padded to max_length
    handle = activate_neftune(model, cfg.neftune_alpha)
    try:
        torch.manual_seed(11)
        theirs = _embedding_noise(model, None, ids, theirs_mask)
    finally:
        deactivate_neftune(model, handle)
    theirs_mag = _per_token_magnitude(theirs, _uniform_draw(11, theirs.shape))

    # ours: the preset's hook on the batch padded to its longest example
    width = max(lengths)
    hook = from_config(cfg).attach(model)
    try:
        torch.manual_seed(12)
        ours = _embedding_noise(model, hook, ids[:, :width], theirs_mask[:, :width])
    finally:
        hook.detach()
    draw = _uniform_draw(12, ours.shape)
    for i, n in enumerate(lengths):
        assert torch.count_nonzero(ours[i, n:]) == 0  # padding is masked anyway; we leave it clean
        mine = _per_token_magnitude(ours[i:i + 1, :n], draw[i:i + 1, :n])
        assert torch.allclose(mine, theirs_mag[i:i + 1, :n], rtol=1e-4), (preset, n)
    # and that magnitude is alpha / sqrt(max_length * d) for every token, whatever its example's length
    assert torch.allclose(theirs_mag, torch.full_like(theirs_mag, cfg.neftune_alpha / math.sqrt(max_length * d)),
                          rtol=1e-4)


def test_other_scalings_differ_from_the_authors_on_mixed_lengths(model):
    """The check above can fail: per-example and per-batch scalings give short examples more noise."""
    from harness_ext.train.neftune import noise_scale

    mask = torch.zeros(2, 30, dtype=torch.long)
    mask[0, :5] = 1
    mask[1, :30] = 1
    d, alpha, max_length = model.config.hidden_size, 5.0, 48
    padded = noise_scale("padded", alpha, mask, None, d, max_length)
    assert padded[0, 0].item() == pytest.approx(alpha / math.sqrt(max_length * d))
    for scaling in ("reference", "hf"):
        other = noise_scale(scaling, alpha, mask, None, d)
        assert other[0, 0].item() > padded[0, 0].item() * 1.2, scaling
