"""Tiny, randomly initialised causal LMs built on the spot for tests (no hub access).

`build_tiny_llama(dir)` trains a byte-level BPE tokenizer on a small corpus and saves a 2-layer
LlamaForCausalLM next to it, with a ChatML-style chat template, so every code path that loads
"a Hugging Face model from a path" runs against a real checkpoint in well under a second.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "Write a short poem about the sea and the wind.",
    "Explain how a binary search works, step by step, with an example in Python.",
    "List three ways to save energy at home: turn off lights, insulate walls, use LED bulbs.",
    "Summarize the meeting: the team agreed to ship the release on Friday after testing.",
    "Classify the sentiment of this review as positive or negative. The food was great!",
    "USER: ASSISTANT: A chat between a user and an assistant. ### Instruction: ### Response:",
    "The quick brown fox jumps over the lazy dog. 0123456789 ,.;:!?()[]{}<>-_=+*/'\"",
]


def build_tiny_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_llama(out_dir: str | Path, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Save a tiny Llama checkpoint + tokenizer to `out_dir` and return the path."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tok = build_tiny_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
