"""The answer parser on messy, real-style answers for each preset; vocabularies; the prompts verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from satcore_vlm.vocab import load_vocabulary, parse_answer, presets, unify_labels

from satcore.errors import SpecError

THESIS = Path(__file__).resolve().parents[4] / "shared" / "seeds" / "000_287796fb87615bb6.txt"

# (preset, answer, expected labels in order, expected unmatched)
CASES = [
    # prompt 1 (MAI): quoted, comma-separated, several labels
    ("mai", '"parking lot, residential, storage tanks"', ["parking lot", "residential", "storage tanks"], []),
    ("mai", '"Residential", "Parking Lot", "Woodland"', ["residential", "parking lot", "woodland"], []),
    ("mai", "Storage Tank, tennis courts and a Golf-Course.",
     ["storage tanks", "tennis court", "golf course"], []),
    ("mai", '"residential, parking lot, residential"', ["residential", "parking lot"], []),
    ("mai", '"farmland, highway, river"', ["farmland", "river"], ["highway"]),
    ("mai", "The identified categories are: \"sea\", \"beach\" and \"port\".",
     ["sea", "beach", "port"], []),
    ("mai", "Categories: \"works\", \"cranes\"", ["works"], ["cranes"]),
    ("mai", "forest; railway station", ["woodland", "train station"], []),
    ("mai", "", [], []),
    # prompt 2 (RSICD): one word, but models add punctuation, case, articles
    ("rsicd", "Airport.", ["airport"], []),
    ("rsicd", "  DENSE RESIDENTIAL ", ["dense residential"], []),
    ("rsicd", "bareland", ["bare land"], []),
    ("rsicd", "The image shows a railway station.", ["railway station"], []),
    ("rsicd", "storage tank", ["storage tanks"], []),
    ("rsicd", "Playgrounds", ["playground"], []),
    ("rsicd", "harbour", [], ["harbour"]),
    ("rsicd", "Viaduct, river", ["viaduct"], []),  # single-label preset: the first named label
    # prompt 3 (RSSCN7): the prompt's own words map to the dataset's classes
    ("rsscn7", "Green areas", ["grass"], []),
    ("rsscn7", "river/lake", ["river/lake"], []),
    ("rsscn7", "River / Lake.", ["river/lake"], []),
    ("rsscn7", "Industry", ["industry"], []),
    ("rsscn7", "resident", ["resident"], []),
    ("rsscn7", "'Parking'", ["parking"], []),
    ("rsscn7", "forests", ["forest"], []),
    ("rsscn7", "desert", [], ["desert"]),
    # prompt 4 (merged): one or several, separators vary
    ("merged", "residential, parking, football field", ["residential", "parking", "football field"], []),
    ("merged", "Soccer field and playground", ["football field"], []),
    ("merged", "bareland, sparse shrub", ["bare land", "sparse shrub"], []),
    ("merged", "1. Airport\n2. Apron\n3. Runway", ["airport", "apron", "runway"], []),
    ("merged", "- lake\n- pond\n- marina", ["lake"], ["marina"]),
]


@pytest.mark.parametrize("preset,answer,labels,unmatched", CASES)
def test_parse_table(preset, answer, labels, unmatched):
    p = presets()[preset]
    parsed = parse_answer(answer, load_vocabulary(p.vocabulary), p.answers)
    got = parsed.labels if p.multi_label else parsed.labels[:1]
    assert got == labels
    assert parsed.unmatched == unmatched


def test_words_outside_the_vocabulary_are_reported_not_dropped():
    v = load_vocabulary("rsscn7")
    parsed = parse_answer("forest with a small helipad and some lake", v)
    assert parsed.labels == ["forest", "river/lake"]
    assert parsed.unmatched == ["small helipad"]


def test_vocabulary_sizes_and_versions():
    sizes = {"mai": 24, "rsicd": 30, "rsscn7": 7, "merged": 37}
    for name, n in sizes.items():
        v = load_vocabulary(name)
        assert len(v.labels) == len(set(v.labels)) == n and v.version == 1


def test_prompt_2_cannot_predict_industrial_or_parking():
    p = presets()["rsicd"]
    listed = p.prompt.split("list:")[1].split(". Do not")[0]
    words = {w.strip() for w in listed.split(",")}
    vocab = load_vocabulary("rsicd")
    assert "industrial" not in words and "parking" not in words
    # every other RSICD class is offered (bareland spelled as one word)
    offered = {"bare land" if w == "bareland" else w for w in words}
    assert set(vocab.labels) - offered == {"industrial", "parking"}


def test_unification_map_and_both_exclusion_statements():
    assert unify_labels(["dense residential", "resident", "pond", "works", "train station"]) == [
        "residential", "lake", "industrial", "railway station"]
    assert unify_labels(["soccer field", "playground", "woodland", "parking lot"]) == [
        "football field", "forest", "parking"]
    assert unify_labels(["grass", "meadow", "river/lake", "beach"]) == ["beach"]  # section 5.2 (default)
    assert unify_labels(["grass", "meadow", "river/lake", "beach"], "section-5.3") == ["meadow", "beach"]
    with pytest.raises(SpecError):
        unify_labels(["beach"], "section-9")


def test_custom_vocabulary_file_and_errors(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text("name: mine\nversion: 3\nlabels: [road, roof]\nsynonyms: {street: road}\n")
    v = load_vocabulary(str(f))
    assert (v.name, v.version) == ("mine", 3)
    assert parse_answer("Streets", v).labels == ["road"]
    f.write_text("labels: [road, roof]\nsynonyms: {street: highway}\n")
    with pytest.raises(SpecError, match="highway"):
        load_vocabulary(str(f))
    with pytest.raises(SpecError, match="neither a bundled"):
        load_vocabulary("nope")


@pytest.mark.skipif(not THESIS.exists(), reason="the thesis text is not beside the repository")
def test_prompts_are_verbatim_from_the_thesis():
    text = re.sub(r"\s+", " ", THESIS.read_text(encoding="utf-8"))
    for name in ("rsicd", "rsscn7", "merged"):
        assert presets()[name].prompt in text, name
    # prompt 1 is split by a page float in the text: check both halves
    p1 = presets()["mai"].prompt
    head, tail = p1.split(" train station, ")
    assert head + " train station," in text and tail in text
