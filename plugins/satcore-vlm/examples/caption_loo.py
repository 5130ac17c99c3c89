"""Leave-one-out caption metrics on human reference captions (text only): how well people agree.

Each image has 5 reference captions. For each k = 1..5, caption k of every image is scored as if it were a
model's caption against the other four, with the core's ``captions`` block (BLEU-1..4, METEOR, ROUGE-L,
CIDEr-D: ``satcore.evaluate.blocks``, the same code that writes ``metrics.json``); the table shows the mean
over the five rotations, a human reference point for the captioners' scores.

Datasets (``../shared/data`` beside the repository): RSICD and RSITMD test captions
(``rsicd-rsitmd-captions``, AMFMN's ``test_caps.txt``/``test_filename.txt``: 5 lines per image) and the
LEVIR-CC change captions (``levir-cc-captions``, LEVIR-MCI token files).

Run from the repository root::

    python plugins/satcore-vlm/examples/caption_loo.py [--data ../shared/data] [--json out.json]

METEOR needs Java (otherwise its column is empty and the reason is printed).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from satcore.evaluate.blocks import CaptionsBlock, captions_record

KEYS = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d"]


def amfmn(folder: Path) -> dict[str, list[str]]:
    """Image file name → its captions, from AMFMN's aligned ``test_caps.txt`` and ``test_filename.txt``."""
    caps = (folder / "test_caps.txt").read_text(encoding="utf-8").splitlines()
    names = (folder / "test_filename.txt").read_text(encoding="utf-8").splitlines()
    out: dict[str, list[str]] = defaultdict(list)
    for name, cap in zip(names, caps, strict=True):
        out[name.strip()].append(cap.strip())
    return dict(out)


def levir_cc(folder: Path) -> dict[str, list[str]]:
    """Pair id → its change captions, from LEVIR-MCI token files (``<START>``/``<END>`` dropped)."""
    out = {}
    for f in sorted(folder.glob("*.txt")):
        toks = json.loads(f.read_text(encoding="utf-8"))
        out[f.stem] = [" ".join(t for t in sent if t not in ("<START>", "<END>")) for sent in toks]
    return out


def leave_one_out(captions: dict[str, list[str]]) -> dict[str, Any]:
    """The mean over k of the captions block with caption k as the hypothesis and the rest as references."""
    n = min(len(c) for c in captions.values())
    runs = []
    for k in range(n):
        block = CaptionsBlock()
        for item, caps in sorted(captions.items()):
            rec = captions_record(caps[:k] + caps[k + 1:], caps[k])
            if rec is not None:
                block.add(item, rec)
        runs.append(block.result())
    out: dict[str, Any] = {"images": len(captions), "rotations": n}
    for key in KEYS:
        vals = [r[key] for r in runs if r.get(key) is not None]
        out[key] = sum(vals) / len(vals) if len(vals) == len(runs) else None
        if out[key] is None:
            out[f"{key}_reason"] = next((r.get(f"{key}_reason") for r in runs if r.get(key) is None), None)
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Compute and print the table; returns it (dataset → metrics)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    ap.add_argument("--json", type=Path, help="also write the table here")
    args = ap.parse_args(argv)
    base = args.data / "rsicd-rsitmd-captions" / "AMFMN" / "data"
    sets = {
        "RSICD (test)": amfmn(base / "rsicd_precomp"),
        "RSITMD (test)": amfmn(base / "rsitmd_precomp"),
        "LEVIR-CC (3 pairs)": levir_cc(args.data / "levir-cc-captions" / "from_Change-Agent" / "Multi_change"
                                       / "data" / "LEVIR_MCI" / "tokens"),
    }
    table = {name: leave_one_out(caps) for name, caps in sets.items()}
    print("| dataset | images | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for name, row in table.items():
        cells = ["—" if row[k] is None else f"{row[k]:.4f}" for k in KEYS]
        print(f"| {name} | {row['images']} | " + " | ".join(cells) + " |")
    for name, row in table.items():
        for k in KEYS:
            if row[k] is None:
                print(f"{name}: {k} is null: {row.get(f'{k}_reason')}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    return table


if __name__ == "__main__":
    main()
