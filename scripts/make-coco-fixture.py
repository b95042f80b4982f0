#!/usr/bin/env python3
"""Writes the pycocotools parity fixture in Tests/Fixtures/evaluation/coco-parity/.

The fixture is a small detection split in Roboflow's PaliGemma layout with seeded random
boxes, two prediction files (with and without per-object scores) and expected.json, the
metrics pycocotools computes for them. EvaluationTests checks that `palitrain score` gives
the same numbers to 1e-4.

The split has five classes: four with ground truth and "bicycle", named in every prompt but
never present, so it must be left out of the mean. Predictions include jittered true boxes
(a spread of IoUs), missed objects, duplicates, false positives, confused labels, tied
scores, an image without objects and an image without a prediction line.

Bins map to pixels as in the Swift code (LocBins.pixelBox): pixel = bin * (size / 1023),
and boxes go to pycocotools as [x, y, width, height] with width = x_max - x_min.

Run (needs pycocotools, numpy, pillow from PyPI):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install pycocotools numpy pillow
    /tmp/venv/bin/python scripts/make-coco-fixture.py
"""

import contextlib
import io
import json
import pathlib

import numpy as np
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "evaluation" / "coco-parity"

CLASSES = ["cat", "dog", "person", "traffic light", "bicycle"]
CLASSES_WITH_GT = CLASSES[:4]
PREFIX = "detect " + " ; ".join(CLASSES)
# (width, height, format); varied aspect ratios so x and y scale differently.
SIZES = [(640, 480, "jpg"), (480, 640, "jpg"), (500, 375, "png"), (1024, 768, "jpg"),
         (300, 300, "jpg"), (800, 600, "png"), (333, 500, "jpg"), (640, 427, "jpg")]
IMAGE_COUNT = 18
EMPTY_IMAGE = 5           # no ground-truth objects
UNPREDICTED_IMAGE = 11    # no line in the prediction files


def random_bins(rng):
    """Draws a box as [y_min, x_min, y_max, x_max] bins with sides of 40 to 600 bins."""
    height, width = rng.integers(40, 600, size=2)
    y_min = int(rng.integers(0, 1024 - height))
    x_min = int(rng.integers(0, 1024 - width))
    return [y_min, x_min, y_min + int(height), x_min + int(width)]


def jitter(rng, bins, scale):
    """Moves each edge by up to `scale` of the box side, keeping 0 <= min <= max <= 1023."""
    y_min, x_min, y_max, x_max = bins
    dy, dx = (y_max - y_min) * scale, (x_max - x_min) * scale
    moved = [y_min + rng.uniform(-dy, dy), x_min + rng.uniform(-dx, dx),
             y_max + rng.uniform(-dy, dy), x_max + rng.uniform(-dx, dx)]
    moved = [int(np.clip(round(v), 0, 1023)) for v in moved]
    moved[2] = max(moved[2], moved[0])
    moved[3] = max(moved[3], moved[1])
    return moved


def suffix(objects):
    return " ; ".join("<loc%04d><loc%04d><loc%04d><loc%04d> %s" % (*bins, label) for bins, label in objects)


def coco_box(bins, width, height):
    """[x, y, w, h] in pixels, computed with the same float steps as LocBins.pixelBox."""
    y_min, x_min, y_max, x_max = bins
    scale_x, scale_y = width / 1023, height / 1023
    x1, y1, x2, y2 = x_min * scale_x, y_min * scale_y, x_max * scale_x, y_max * scale_y
    return [x1, y1, x2 - x1, y2 - y1]


def make_split(rng):
    images = []
    for index in range(IMAGE_COUNT):
        width, height, fmt = SIZES[index % len(SIZES)]
        name = "image_%02d.%s" % (index, fmt)
        count = 0 if index == EMPTY_IMAGE else int(rng.integers(1, 6))
        truth = [(random_bins(rng), CLASSES_WITH_GT[int(rng.integers(0, 4))]) for _ in range(count)]
        images.append({"name": name, "width": width, "height": height, "fmt": fmt, "truth": truth})
    return images


def make_predictions(rng, images):
    """Per image: list of (bins, label, score)."""
    predictions = []
    for image in images:
        predicted = []
        for bins, label in image["truth"]:
            roll = rng.uniform()
            if roll < 0.2:
                continue  # missed object
            predicted_label = label
            if rng.uniform() < 0.1:
                predicted_label = CLASSES_WITH_GT[int(rng.integers(0, 4))]  # possibly confused
            predicted.append((jitter(rng, bins, rng.choice([0.02, 0.1, 0.25])), predicted_label, round(rng.uniform(0.3, 1.0), 3)))
            if rng.uniform() < 0.2:  # duplicate on the same object, usually lower score
                predicted.append((jitter(rng, bins, 0.1), label, round(rng.uniform(0.1, 0.9), 3)))
        for _ in range(int(rng.integers(0, 3))):  # false positives
            predicted.append((random_bins(rng), CLASSES[int(rng.integers(0, 5))], round(rng.uniform(0.05, 0.8), 3)))
        predictions.append(predicted)

    # Exact ties within and across images, so the tie order is exercised.
    tied = [(i, j) for i, p in enumerate(predictions) for j in range(len(p))][::7]
    for i, j in tied:
        bins, label, _ = predictions[i][j]
        predictions[i][j] = (bins, label, 0.5)
    return predictions


def run_cocoeval(images, predictions, use_scores):
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)]
    category_id = {name: k + 1 for k, name in enumerate(CLASSES)}
    gt_annotations = []
    for image_id, image in enumerate(images, start=1):
        for bins, label in image["truth"]:
            box = coco_box(bins, image["width"], image["height"])
            gt_annotations.append({"id": len(gt_annotations) + 1, "image_id": image_id, "category_id": category_id[label],
                                   "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    dataset = {"images": [{"id": i + 1, "width": im["width"], "height": im["height"]} for i, im in enumerate(images)],
               "annotations": gt_annotations, "categories": categories}

    results = []
    for image_id, (image, predicted) in enumerate(zip(images, predictions), start=1):
        if image_id - 1 == UNPREDICTED_IMAGE:
            continue
        for bins, label, score in predicted:
            results.append({"image_id": image_id, "category_id": category_id[label],
                            "bbox": coco_box(bins, image["width"], image["height"]),
                            "score": score if use_scores else 1.0})

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        detections = coco.loadRes(results)
        evaluator = COCOeval(coco, detections, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()

    # precision: [T=10, R=101, K, A=4, M=3]; area "all" is 0, maxDets 100 is 2.
    precision = evaluator.eval["precision"][:, :, :, 0, 2]
    per_class = {}
    for k, name in enumerate(CLASSES):
        values = precision[:, :, k]
        if (values == -1).all():
            per_class[name] = {"ap50": None, "ap75": None, "ap50_95": None}
        else:
            per_class[name] = {"ap50": float(values[0].mean()), "ap75": float(values[5].mean()),
                               "ap50_95": float(values.mean())}
    stats = evaluator.stats
    return {"map50_95": float(stats[0]), "map50": float(stats[1]), "map75": float(stats[2]), "per_class": per_class}


def main():
    rng = np.random.default_rng(20240611)
    images = make_split(rng)
    predictions = make_predictions(rng, images)

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    for index, image in enumerate(images):
        # Solid colours keep the files small; only the header size matters.
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        picture = Image.new("RGB", (image["width"], image["height"]), colour)
        if image["fmt"] == "jpg":
            picture.save(OUT / image["name"], quality=30)
        else:
            picture.save(OUT / image["name"])

    with open(OUT / "_annotations.valid.jsonl", "w") as f:
        for image in images:
            f.write(json.dumps({"image": image["name"], "prefix": PREFIX, "suffix": suffix(image["truth"])}) + "\n")

    for variant, use_scores in (("scored", True), ("unscored", False)):
        with open(OUT / ("predictions-%s.jsonl" % variant), "w") as f:
            for index, (image, predicted) in enumerate(zip(images, predictions)):
                if index == UNPREDICTED_IMAGE:
                    continue
                line = {"image": image["name"], "suffix": suffix([(b, l) for b, l, _ in predicted])}
                if use_scores:
                    line["scores"] = [s for _, _, s in predicted]
                f.write(json.dumps(line) + "\n")

    expected = {variant: run_cocoeval(images, predictions, use_scores)
                for variant, use_scores in (("scored", True), ("unscored", False))}
    with open(OUT / "expected.json", "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps(expected, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
