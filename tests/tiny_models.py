"""Tiny randomly initialised transformers models, built and saved by the tests (nothing downloaded).

They produce gibberish, which is the point: the code paths (loading, chat templates, streaming,
LoRA adapters, cross-encoder scoring) run for real in seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "the",
    "a",
    "an",
    "is",
    "was",
    "of",
    "to",
    "in",
    "and",
    "or",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "it",
    "this",
    "that",
    "be",
    "are",
    "not",
    "no",
    "yes",
    "park",
    "parking",
    "visitors",
    "north",
    "south",
    "car",
    "garage",
    "policy",
    "answer",
    "question",
    "context",
    "passage",
    "could",
    "find",
    "indexed",
    "documents",
    "cite",
    "source",
    "data",
    "ignore",
    "previous",
    "instructions",
    "system",
    "prompt",
]


def _word_tokenizer(path: Path, bert: bool = False):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] if bert else ["<pad>", "<unk>", "<s>", "</s>"]
    chars = [chr(c) for c in range(33, 127)]
    vocab = {t: i for i, t in enumerate(dict.fromkeys([*specials, *WORDS, *chars]))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials[1]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    if bert:
        from tokenizers import processors

        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
        )
    else:
        from tokenizers import decoders

        tok.decoder = decoders.WordPiece(prefix="##")  # joins word tokens with spaces
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
        )
        fast.chat_template = (
            "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
            "{% if add_generation_prompt %}<s> assistant : {% endif %}"
        )
    fast.save_pretrained(str(path))
    return fast


def build_tiny_causal_lm(path: Path, seed: int = 0, token_type_ids: bool = False) -> Path:
    """A 2-layer Llama with a word-level tokenizer and a chat template, saved to ``path``.
    ``token_type_ids``: the tokenizer also returns token_type_ids (as BERT-style tokenizers do)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = _word_tokenizer(path)
    if token_type_ids:
        tok.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
        tok.save_pretrained(str(path))
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(str(path))
    return path


def build_tiny_cross_encoder(path: Path, seed: int = 0) -> Path:
    """A 1-layer BERT sequence classifier (one logit), loadable by sentence-transformers' CrossEncoder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tok = _word_tokenizer(path, bert=True)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=tok.pad_token_id,
    )
    BertForSequenceClassification(cfg).save_pretrained(str(path))
    return path
