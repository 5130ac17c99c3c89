"""Tiny offline models for tests (this plugin's and users'): tokenizers trained in memory, random weights.

Imports transformers and tokenizers when called, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CORPUS = ["a satellite image of a forest", "many buildings and a road", "a river next to green fields",
          "parking lot with cars", "an industrial area with factories"] * 20


def wordpiece_tokenizer() -> Any:
    """A BERT-style WordPiece tokenizer trained in memory on a few sentences."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(  # type: ignore[no-untyped-call]
        vocab_size=120, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


def tiny_bert(folder: Path) -> Path:
    """A 2-layer BERT sequence classifier of width 32 from a config, random weights, WordPiece tokenizer.

    Saved with ``save_pretrained`` into ``folder`` (returned); seeded, so the same every time.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = wordpiece_tokenizer()
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(folder)  # type: ignore[no-untyped-call]
    tok.save_pretrained(folder)
    return folder
