"""Tiny transformers models for the checkpoint tests (export, load, qrecipe quantize).

Built from configs with a fixed seed; sizes are the smallest that every export scheme accepts: INT4 blocks of 128 need input axes
that are multiples of 128.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

VOCAB = 256


def tiny_llama(dtype: torch.dtype = torch.float32, seed: int = 0) -> PreTrainedModel:
    """A two-layer Llama-style decoder (grouped-query attention, gated MLP)."""
    config = AutoConfig.for_model(
        "llama",
        vocab_size=VOCAB,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def tiny_moe(dtype: torch.dtype = torch.float32, seed: int = 0) -> PreTrainedModel:
    """A two-layer Qwen3-MoE decoder: four fused experts per layer, two per token."""
    config = AutoConfig.for_model(
        "qwen3_moe",
        vocab_size=VOCAB,
        hidden_size=128,
        intermediate_size=256,
        moe_intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        num_experts=4,
        num_experts_per_tok=2,
        architectures=["Qwen3MoeForCausalLM"],
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def tiny_mixtral(dtype: torch.dtype = torch.float32, seed: int = 0) -> PreTrainedModel:
    """A two-layer Mixtral: four fused experts per layer, two per token. Its published
    checkpoints name the experts ``block_sparse_moe.experts.<i>.w1/w2/w3``."""
    config = AutoConfig.for_model(
        "mixtral",
        vocab_size=VOCAB,
        hidden_size=128,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        num_local_experts=4,
        num_experts_per_tok=2,
        architectures=["MixtralForCausalLM"],
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


MODELS = {"llama": tiny_llama, "moe": tiny_moe, "mixtral": tiny_mixtral}


def tokens(batch: int = 4, length: int = 16, seed: int = 1) -> torch.Tensor:
    """Random token ids (a fixed generator)."""
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "a",
    "recipe",
    "lists",
    "steps",
    "and",
    "ingredients",
    "model",
    "weights",
    "quantization",
    "maps",
    "real",
    "numbers",
    "onto",
    "small",
    "set",
    "of",
    "values",
    "rain",
    "is",
    "expected",
    "this",
    "week",
]


def tiny_tokenizer() -> Any:
    """A word-level tokenizer over a few dozen words (unknown words map to [UNK])."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, "</s>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>"
    )


def save_model_dir(path: Path, kind: str = "llama", dtype: torch.dtype = torch.float32) -> Path:
    """A Hugging Face model directory: config, safetensors, tokenizer and generation config."""
    model = MODELS[kind](dtype)
    model.save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path
