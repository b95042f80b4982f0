#!/usr/bin/env python3
"""Build the small test tokenizer and the id fixture that Tests/DatasetTests compare against.

Writes into Tests/Fixtures/dataset/tokenizer/:
  corpus.txt          the training text (generated here from fixed word lists and a seed)
  test-tokenizer.model  trained with the spm_train CLI (Debian package `sentencepiece`)
  encodings.json      ids from the `sentencepiece` Python package for a few hundred strings

The model imitates the layout of PaliGemma's tokenizer at a small size: BPE, byte fallback,
split digits, no dummy prefix, identity normalisation, ids 0..3 = <pad> <eos> <bos> <unk>,
then the 1024 <locNNNN> and 128 <segNNN> pieces as user-defined symbols (so they come right
after the special ids here, not at 256000 as in the real model).

Requires: spm_train on PATH; `pip install sentencepiece` (the fixture was made with 0.1.99,
Debian's library is 0.1.97).
Run from the repository root: python3 scripts/make-tokenizer-fixture.py
"""

import json
import os
import random
import subprocess
import sys
import tempfile

import sentencepiece

OUT = os.path.join("Tests", "Fixtures", "dataset", "tokenizer")

CLASSES = [
    "fracture", "bone", "cat", "dog", "person", "car", "bus", "bicycle", "traffic light",
    "stop sign", "bird", "horse", "sheep", "cow", "elephant", "giraffe", "umbrella", "handbag",
    "tie", "suitcase", "kite", "bottle", "cup", "fork", "knife", "spoon", "bowl", "banana",
    "apple", "sandwich", "orange", "broccoli", "carrot", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "laptop", "mouse", "keyboard",
    "cell phone", "microwave", "oven", "sink", "book", "clock", "vase", "scissors",
    "teddy bear", "toothbrush", "implant", "screw", "plate", "cast", "nodule", "lesion",
    "tumor", "stent", "catheter", "pneumothorax", "effusion", "wrist", "elbow", "ankle", "knee",
]

WORDS = (
    "the a an of in on at with and or to from by for is are was were be this that these those "
    "image picture photo scan radiograph x-ray shows contains left right upper lower middle small "
    "large red blue green white black yellow dark bright near far above below behind next front "
    "where what which how many there here one two three four five six seven eight nine ten "
    "patient doctor hospital street road house table window door tree grass sky water river "
    "answer question caption describe detect segment count find locate label object objects "
    "standing sitting running walking lying holding eating looking"
).split()

SENTENCES = [
    "Where is the cow standing?",
    "The cat is sitting on the red chair.",
    "A radiograph of the left wrist shows a small fracture of the distal radius.",
    "There are two dogs and one person on the beach.",
    "Describe the image in one sentence.",
    "The X-ray shows a healed fracture with a metal plate and six screws.",
    "How many cars are on the road?",
    "Numbers like 1024, 2048 and 3.14159 are split into digits.",
    "Café, naïve, résumé and Zürich use accented letters.",
    "Tabs\tand  double  spaces stay as they are.",
]


def make_corpus(rng):
    lines = []
    for _ in range(600):
        kind = rng.random()
        if kind < 0.35:
            names = rng.sample(CLASSES, rng.randint(1, 4))
            lines.append("detect " + " ; ".join(names))
        elif kind < 0.55:
            name = rng.choice(CLASSES)
            lines.append(f"{rng.choice(['caption en', 'answer en', 'segment', 'count'])} {name}")
        elif kind < 0.9:
            words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
            lines.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", ""]))
        else:
            lines.append(rng.choice(SENTENCES))
    lines.extend(SENTENCES)
    lines.extend(CLASSES)
    return lines


def special_symbols():
    return [f"<loc{i:04d}>" for i in range(1024)] + [f"<seg{i:03d}>" for i in range(128)]


def loc(rng):
    return f"<loc{rng.randint(0, 1023):04d}>"


def make_test_strings(rng):
    fixed = [
        "", " ", "  ", "\n", "\t", "\r\n", "detect fracture", "detect fracture ; bone",
        "detect cat ; dog ; person", "caption en", "answer en Where is the cow standing?",
        "<loc0000>", "<loc1023>", "<seg000>", "<seg127>", "<loc0100><loc0200><loc0300><loc0400> fracture",
        "<loc0654><loc0239><loc0708><loc0336> fracture ; <loc0678><loc0396><loc0730><loc0499> fracture",
        "blah<loc0000>", "<loc0001>blah", "<loc10000>", "<loc1024>", "<loc", "loc0001>", "<LOC0001>",
        "<loc0012><seg005><seg006>", " leading space", "trailing space ", "two  spaces",
        "Fracture", "FRACTURE", "fracture\n", "\nfracture", "a\nb", "12345", "3.14159", "0007",
        "Café naïve résumé Zürich", "日本語のテキスト", "🦴 bone emoji 🦴", "ﬁ ligature", "Ａ full width",
        "zero\u200bwidth", "x-ray", "X-Ray", "don't", "e.g.", "detect traffic light ; stop sign",
        "segment knee", "detect " + " ; ".join(CLASSES[:20]),
    ]
    generated = []
    for _ in range(180):
        words = [rng.choice(WORDS + CLASSES) for _ in range(rng.randint(1, 12))]
        generated.append(" ".join(words))
    for _ in range(60):
        objects = []
        for _ in range(rng.randint(1, 4)):
            objects.append(loc(rng) + loc(rng) + loc(rng) + loc(rng) + " " + rng.choice(CLASSES))
        generated.append(" ; ".join(objects))
    for _ in range(20):
        generated.append(rng.choice(SENTENCES) + " " + str(rng.randint(0, 10**6)))
    return fixed + generated


def main():
    if not os.path.isdir("Tests"):
        sys.exit("run this from the repository root")
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(20240601)

    corpus_path = os.path.join(OUT, "corpus.txt")
    with open(corpus_path, "w", encoding="utf-8") as corpus:
        corpus.write("\n".join(make_corpus(rng)) + "\n")

    model_prefix = os.path.join(OUT, "test-tokenizer")
    options = [
        f"--input={corpus_path}", f"--model_prefix={model_prefix}", "--model_type=bpe",
        "--vocab_size=1900", "--hard_vocab_limit=false", "--character_coverage=1.0",
        "--pad_id=0", "--eos_id=1", "--bos_id=2", "--unk_id=3",
        "--pad_piece=<pad>", "--eos_piece=<eos>", "--bos_piece=<bos>", "--unk_piece=<unk>",
        "--byte_fallback=true", "--split_digits=true", "--add_dummy_prefix=false",
        "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
        "--num_threads=1", "--minloglevel=1",
        "--user_defined_symbols=" + ",".join(special_symbols()),
    ]
    subprocess.run(["spm_train", *options], check=True)
    os.remove(model_prefix + ".vocab")

    processor = sentencepiece.SentencePieceProcessor(model_file=model_prefix + ".model")
    cases = [{"text": text, "ids": processor.encode(text)} for text in make_test_strings(rng)]
    fixture = {
        "generator": f"sentencepiece (Python) {sentencepiece.__version__}",
        "model": "test-tokenizer.model",
        "piece_count": processor.get_piece_size(),
        "pad_id": processor.pad_id(), "eos_id": processor.eos_id(),
        "bos_id": processor.bos_id(), "unk_id": processor.unk_id(),
        "loc0000_id": processor.piece_to_id("<loc0000>"), "seg000_id": processor.piece_to_id("<seg000>"),
        "newline_ids": processor.encode("\n"),
        "cases": cases,
    }
    with open(os.path.join(OUT, "encodings.json"), "w", encoding="utf-8") as handle:
        json.dump(fixture, handle, ensure_ascii=False, indent=0)
        handle.write("\n")
    print(f"{len(cases)} strings, {fixture['piece_count']} pieces, model "
          f"{os.path.getsize(model_prefix + '.model')} bytes")


if __name__ == "__main__":
    main()
