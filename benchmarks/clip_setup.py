"""What a CLIP step costs before its first image: loading a checkpoint and encoding the class prompts.

    python benchmarks/clip_setup.py                        # tiny and ViT-B-32 (random weights, offline)
    python benchmarks/clip_setup.py --arch ViT-L-14 --repeat 2

Side by side in one process, per architecture (a random checkpoint saved as safetensors first):

- ``open_clip build + load``: ``open_clip.create_model`` (which draws random initial weights) then
  ``load_state_dict`` of the checkpoint — what a script does, and what satcore did before;
- ``satcore load_clip``: ``satcore_clip.loader.load_clip`` for a strict alias (the model built without
  drawing the weights it is about to overwrite, the checkpoint's sha256 from the memo);
- ``setup, class embeddings computed`` / ``cached``: the whole ``clip-zeroshot`` ``setup()`` with the
  embedding cache on, the first time for a prompt list (tokenizer built, 32 prompts through the text tower)
  and again.

Each figure is the best of ``--repeat`` after one discarded round. CPU only; the numbers are seconds.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="+", default=["tiny", "ViT-B-32"])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    import clip_throughput as ct
    import open_clip
    import torch
    from safetensors.torch import load_file
    from satcore_clip.extractor import ClipZeroShotExtractor, ClipZeroShotParams
    from satcore_clip.loader import load_clip

    from satcore import registry
    from satcore.components import RunContext

    log = logging.getLogger("clip-setup-bench")
    rows = []
    for arch in a.arch:
        work = Path(tempfile.mkdtemp(prefix="satcore-clip-setup-"))
        try:
            _model, _tok, _pre, _dtype, name = ct.build_model(arch, "cpu", "fp32", work)
            del _model
            ckpt = work / "models" / "bench" / "model.safetensors"
            entry = registry.get_registry(refresh=True).models["bench"]  # the alias build_model wrote

            def plain(name=name, ckpt=ckpt) -> None:
                m = open_clip.create_model(name, pretrained=None)
                m.load_state_dict(load_file(str(ckpt)))

            def satcore_load(entry=entry, ckpt=ckpt) -> None:
                load_clip("bench", dict(entry), ckpt, log, registry.cache_dir())

            cache = work / "cache"

            def setup(fresh: bool, cache=cache) -> None:
                if fresh:
                    shutil.rmtree(cache / "embeddings", ignore_errors=True)
                ext = ClipZeroShotExtractor(
                    ClipZeroShotParams(model="bench"), RunContext(device="cpu"), "probs"
                )
                ext.setup()
                assert ext.text_cached is not fresh
                ext.teardown()

            fns = {
                "open_clip build + load": plain,
                "satcore load_clip": satcore_load,
                "setup, class embeddings computed": lambda: setup(True),
                "setup, class embeddings cached": lambda: setup(False),
            }
            best: dict[str, float] = {}
            for r in range(a.repeat + 1):
                for k, fn in fns.items():
                    t = time.perf_counter()
                    fn()
                    took = time.perf_counter() - t
                    if r:
                        best[k] = min(best.get(k, 1e9), took)
            rows.append((arch, ckpt.stat().st_size / 2**20, best))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {a.repeat}")
    for arch, mib, best in rows:
        print(f"\n{arch} (checkpoint {mib:.0f} MiB)")
        for k, v in best.items():
            print(f"  {k:36s} {v:8.3f} s")


if __name__ == "__main__":
    main()
