"""Tiny offline models for tests (this plugin's and users'): tokenizers trained in memory, random weights.

Imports transformers and tokenizers when called, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CORPUS = ["a satellite image of a forest", "many buildings and a road", "a river next to green fields",
          "parking lot with cars", "an industrial area with factories"] * 20


def wordpiece_tokenizer() -> Any:
    """A BERT-style WordPiece tokenizer built in memory from a few sentences (the same in every process)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # The vocabulary is made here, not by tokenizers' WordPieceTrainer: the trainer breaks frequency ties in
    # hash order, which Rust randomises per process, so the tokens it learnt (and the tiny models built on
    # them) differed from run to run. Whole words of the corpus, then every character alone and as a suffix.
    import re

    words = sorted({w for s in CORPUS for w in re.findall(r"\w+|[^\w\s]", s.lower())})
    chars = sorted({c for w in words for c in w})
    vocab = specials + words + [c for c in chars if c not in words] + [f"##{c}" for c in chars]
    tok.model = models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]")
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


def tiny_blip(folder: Path) -> Path:
    """A tiny random BLIP captioner (32×32 images, width 32) on :func:`wordpiece_tokenizer`, seeded.

    ``BlipForConditionalGeneration`` + ``BlipProcessor`` saved with ``save_pretrained`` into ``folder``
    (returned).
    """
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    ft = wordpiece_tokenizer()
    cfg = BlipConfig(
        text_config=dict(vocab_size=len(ft), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64, bos_token_id=ft.cls_token_id,
                         pad_token_id=ft.pad_token_id, sep_token_id=ft.sep_token_id,
                         eos_token_id=ft.sep_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=32)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(cfg).eval()  # type: ignore[no-untyped-call]
    proc = BlipProcessor(  # type: ignore[no-untyped-call]
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=ft)
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


def tiny_clip(folder: Path) -> Path:
    """A tiny random CLIP (32×32 images, width 32) with a byte-level BPE tokenizer trained in memory.

    ``CLIPModel`` + ``CLIPProcessor`` saved with ``save_pretrained`` into ``folder`` (returned); seeded.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (  # type: ignore[attr-defined]
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizerFast,
    )

    specials = ["<|startoftext|>", "<|endoftext|>"]
    tok = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(  # type: ignore[no-untyped-call]
        vocab_size=200, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[(s, tok.token_to_id(s)) for s in specials])
    ft = CLIPTokenizerFast(tokenizer_object=tok, bos_token=specials[0], eos_token=specials[1],
                           unk_token=specials[1], pad_token=specials[1])
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(ft), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=ft.bos_token_id,
                         eos_token_id=ft.eos_token_id, pad_token_id=ft.pad_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},  # type: ignore[no-untyped-call]
                                                     crop_size={"height": 32, "width": 32}),
                  tokenizer=ft).save_pretrained(folder)
    return folder
