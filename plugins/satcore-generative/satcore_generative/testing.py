"""Tiny random CycleGAN checkpoints for offline tests (this package's and users')."""

from __future__ import annotations

from pathlib import Path

#: Architecture of the tiny test model (a few thousand weights).
TINY: dict[str, int] = {"base": 4, "n_res": 1, "se_reduction": 2, "disc_base": 4}


def write_tiny_checkpoint(path: Path | str, seed: int = 0) -> Path:
    """Write a tiny randomly initialised CycleGAN (G, F and both discriminators) to ``path``.

    The file has the layout the generators and ``satcore train cyclegan`` use, so ``model: <path>`` works.
    """
    import torch

    from satcore_generative.cyclegan import CycleGanConfig, build_models, save_checkpoint

    torch.manual_seed(seed)
    cfg = CycleGanConfig(**TINY)
    save_checkpoint(path, cfg, build_models(cfg))
    return Path(path)


def _clip_tokenizer(folder: Path) -> None:
    """A real CLIP BPE tokenizer written offline from open_clip's bundled vocabulary (ids match OpenAI's)."""
    import gzip
    import json

    import open_clip.tokenizer as oct
    from transformers import CLIPTokenizer

    with gzip.open(oct.default_bpe(), "rt", encoding="utf-8") as f:
        merges = f.read().split("\n")[1:49152 - 256 - 2 + 1]
    merges = [m for m in merges if m]
    vocab = list(oct.bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)


def write_tiny_diffusers(path: Path | str, seed: int = 0) -> Path:
    """Write a tiny randomly initialised Stable Diffusion pipeline folder (``save_pretrained`` layout).

    UNet, VAE and CLIP text encoder of a few hundred thousand weights, a real CLIP tokenizer (from
    open_clip's bundled BPE file) and a DDIM scheduler; 64×64 images in a few tenths of a second on a CPU.
    ``model: <path>`` works in ``text-to-image`` and in ``satcore train text-to-image``'s ``base:``.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], sample_size=64)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                        num_hidden_layers=2, vocab_size=49408, max_position_embeddings=77,
                                        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407))
    _clip_tokenizer(path / "_tok")
    tok = CLIPTokenizer.from_pretrained(path / "_tok")
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path)
    import shutil

    shutil.rmtree(path / "_tok")
    return path


def write_tiny_clip(path: Path | str, seed: int = 0) -> Path:
    """Write a tiny random transformers CLIP model and processor (for ``image-quality``'s ``clip_model:``)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
                     "num_hidden_layers": 2, "vocab_size": 49408, "max_position_embeddings": 77,
                     "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
                       "num_hidden_layers": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16)
    CLIPModel(cfg).save_pretrained(path)
    _clip_tokenizer(path / "_tok")
    proc = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                            crop_size={"height": 32, "width": 32}),
                         tokenizer=CLIPTokenizer.from_pretrained(path / "_tok"))
    proc.save_pretrained(path)
    import shutil

    shutil.rmtree(path / "_tok")
    return path
