"""Reduce a trusted training checkpoint to a safe weights file, once, outside any run.

``python -m satcore_clip.extract SRC DST [--key state_dict] [--strip module.]``

Training checkpoints (SkyCLIP's ``epoch_20.pt``) can hold optimizer state that
``torch.load(weights_only=True)``
refuses. This unpickles SRC fully (``weights_only=False``: run it only on files you trust), keeps the model's
state dict, strips the prefix, and writes DST as ``.safetensors`` (or a plain ``.pt`` state dict).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    import torch

    from satcore_clip.loader import extract_state_dict

    ap = argparse.ArgumentParser(prog="python -m satcore_clip.extract", description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument(
        "--key", default=None, help="entry holding the state dict (default: 'state_dict' if present)"
    )
    ap.add_argument(
        "--strip", default=None, help="key prefix to remove (default: 'module.' when every key has it)"
    )
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not a.src.is_file():
        print(f"error: {a.src} is not a file; give the training checkpoint to extract from", file=sys.stderr)
        return 2
    try:
        obj = torch.load(a.src, map_location="cpu", weights_only=False)  # trusted file, by the user's choice
    except Exception as exc:  # noqa: BLE001 - any unreadable file: one line, not a traceback
        print(f"error: {a.src} is not a torch checkpoint ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    sd = extract_state_dict(
        obj, {"state_dict_key": a.key, "strip_prefix": a.strip}, logging.getLogger("extract")
    )
    sd = {k: v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if a.dst.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(a.dst))
    else:
        torch.save(sd, a.dst)
    print(f"wrote {len(sd)} tensors to {a.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
