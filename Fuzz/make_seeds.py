#!/usr/bin/env python3
"""Writes the seed corpora in Tests/Fixtures/fuzz-corpus/, one folder per fuzz target.

usage: Fuzz/make_seeds.py [TARGET ...]   (default: all)

Seeds are small valid inputs that cover each format feature the parser handles, so the
fuzzer starts from deep inside the format instead of from random bytes. The NPY seeds come
from numpy itself. The NPZ seeds come from numpy's savez and from a ZIP writer below that can
force ZIP64 records, data descriptors and extra-field padding, which numpy does not write for
small files. The image seeds are the small test images in Tests/Fixtures/dataset/images.
The frame seeds are encoded here the way Comm's FrameCodec encodes them (zstd from the `zstd`
command-line tool). Rerunning the script rewrites the same bytes.
"""

import io
import json
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Tests" / "Fixtures" / "fuzz-corpus"


def npy_bytes(array, version=None):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=False)
    return buffer.getvalue()


def bf16(values, shape):
    """bf16 the way big_vision stores it: the top 2 bytes of each f32, as a 2-byte void."""
    f32 = np.asarray(values, dtype="<f4").reshape(shape)
    top = (f32.view("<u4") >> 16).astype("<u2")
    return top.view("V2")


def npy_seeds():
    return {
        "f4_2x3.npy": npy_bytes(np.arange(6, dtype="<f4").reshape(2, 3) - 2.5),
        "f2_4.npy": npy_bytes(np.array([0.5, -1, 65504, 6e-8], dtype="<f2")),
        "bf16_2x2.npy": npy_bytes(bf16([1, -2, 3.5, 1e-3], (2, 2))),
        "i4_3.npy": npy_bytes(np.array([7, -8, 2**31 - 1], dtype="<i4")),
        "i8_2.npy": npy_bytes(np.array([2**40, -3], dtype="<i8")),
        "i1_4.npy": npy_bytes(np.array([-128, 0, 1, 127], dtype="i1")),
        "u1_4.npy": npy_bytes(np.array([0, 1, 200, 255], dtype="u1")),
        "b1_3.npy": npy_bytes(np.array([True, False, True])),
        "scalar_f4.npy": npy_bytes(np.array(3.25, dtype="<f4")),
        "empty_0x3.npy": npy_bytes(np.zeros((0, 3), dtype="<f4")),
        "fortran_1x5.npy": npy_bytes(np.asfortranarray(np.arange(5, dtype="<i4").reshape(1, 5))),
        "v2_f4_3.npy": npy_bytes(np.array([1, 2, 3], dtype="<f4"), version=(2, 0)),
        "v3_f4_3.npy": npy_bytes(np.array([1, 2, 3], dtype="<f4"), version=(3, 0)),
        "rank4_i1.npy": npy_bytes(np.arange(16, dtype="i1").reshape(1, 2, 2, 4)),
    }


# MARK: - NPZ


def savez(compressed=False, **arrays):
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def zip_archive(members, zip64=False, descriptor=False, align=0, comment=b""):
    """Builds a ZIP archive from (name, npy bytes, deflate) tuples.

    zip64 saturates every size and offset in the central directory and writes the ZIP64 end
    records, as NPZWriter(forceZip64: true) does. descriptor sets flag bit 3 and writes CRC
    and sizes after the data. align pads the local extra field so data starts at a multiple
    of `align`.
    """
    out = bytearray()
    central = bytearray()
    for name, data, deflate in members:
        name = name.encode()
        if deflate:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            stored = compressor.compress(data) + compressor.flush()
        else:
            stored = data
        crc = zlib.crc32(data)
        offset = len(out)
        flags = 0x08 if descriptor else 0
        method = 8 if deflate else 0

        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(stored))
        if align:
            unpadded = offset + 30 + len(name) + len(local_extra)
            padding = (-unpadded - 4) % align
            local_extra += struct.pack("<HH", 0xCAFE, padding) + b"\0" * padding
        local_crc, local_sizes = (0, (0, 0)) if descriptor else (crc, (0xFFFFFFFF, 0xFFFFFFFF))
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 45, flags, method, 0, 0x21, local_crc, *local_sizes,
            len(name), len(local_extra))
        out += name + local_extra + stored
        if descriptor:
            out += struct.pack("<IIQQ", 0x08074B50, crc, len(stored), len(data))

        if zip64:
            central_extra = struct.pack("<HHQQQ", 1, 24, len(data), len(stored), offset)
            sizes = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            central_extra = b""
            sizes = (len(stored), len(data), offset)
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 0x032D, 45, flags, method, 0, 0x21, crc, sizes[0], sizes[1],
            len(name), len(central_extra), 0, 0, 0, 0o100644 << 16, sizes[2])
        central += name + central_extra

    directory_offset = len(out)
    out += central
    count = len(members)
    if zip64:
        record_offset = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x032D, 45, 0, 0, count, count, len(central), directory_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, record_offset, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment))
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), directory_offset, len(comment))
    out += comment
    return bytes(out)


def npz_seeds():
    small = np.arange(6, dtype="<f4").reshape(2, 3)
    ids = np.array([1, -2, 3], dtype="<i4")
    members = [
        ("params/img/embedding/kernel.npy", npy_bytes(small), False),
        ("params/llm/ids.npy", npy_bytes(ids), False),
    ]
    deflated = [(name, data, True) for name, data, _ in members]
    return {
        "numpy_savez.npz": savez(w=small, ids=ids),
        "numpy_savez_compressed.npz": savez(True, w=small, ids=ids),
        "numpy_savez_dtypes.npz": savez(
            half=np.array([1.5, -2], dtype="<f2"), bf=bf16([1, 2], (2,)), flag=np.array([True]),
            scalar=np.array(7, dtype="<i8")),
        "stored_zip64.npz": zip_archive(members, zip64=True),
        "deflated_zip64.npz": zip_archive(deflated, zip64=True),
        "stored_aligned64.npz": zip_archive(members, align=64),
        "descriptor_deflated.npz": zip_archive(deflated, descriptor=True),
        "comment.npz": zip_archive(members[:1], comment=b"written by a fuzz seed script"),
        "empty.npz": zip_archive([]),
    }


# MARK: - Images, text, detection output and gradient frames


IMAGES = ROOT / "Tests" / "Fixtures" / "dataset" / "images"


def image_seeds(suffixes):
    """Returns the test images with one of `suffixes` that are under 10 KB, except the file that
    is not an image at all. truncated.jpg and bomb-30000.png stay because they reach error paths."""
    return {
        path.name: path.read_bytes()
        for path in sorted(IMAGES.iterdir())
        if path.suffix in suffixes and path.stat().st_size <= 10_000 and path.name != "not-an-image.jpg"
    }


def jsonl_seeds():
    box = "<loc0100><loc0200><loc0300><loc0400>"
    lines = {
        "roboflow.jsonl": [
            {"image": "a.jpg", "prefix": "detect cat ; dog", "suffix": f"{box} cat ; {box} dog"},
            {"image": "img/b.png", "prefix": "detect cat", "suffix": ""},
        ],
        "extra_keys.jsonl": [{"image": "./img/../a.jpg", "prefix": "detect é", "suffix": f"{box} é", "id": 7, "tags": [1]}],
        "missing_image.jsonl": [{"image": "missing.jpg", "prefix": "p", "suffix": "s"}],
        "escape.jsonl": [
            {"image": "../secret.jpg", "prefix": "p", "suffix": "s"},
            {"image": "outside.jpg", "prefix": "p", "suffix": "s"},
            {"image": "/etc/passwd", "prefix": "p", "suffix": "s"},
        ],
        "wrong_types.jsonl": [{"image": 3, "prefix": None, "suffix": ["x"]}, [1, 2], "text"],
        "suffix_issues.jsonl": [
            {"image": "a.jpg", "prefix": "detect cat ;  dog ; <b> ; ", "suffix": "<loc0100><loc0200><loc0300> cat"},
            {"image": "a.jpg", "prefix": "detect cat", "suffix": "<loc0400><loc0300><loc0200><loc0100> Cat ; <loc9999><loc12><loc0300><loc0300> cat"},
            {"image": "img/b.png", "prefix": "detect cat", "suffix": box + "".join(f"<seg{i:03d}>" for i in range(16)) + " cat"},
            {"image": "img/b.png", "prefix": "caption en", "suffix": "a cat on a mat"},
        ],
    }
    seeds = {name: "\n".join(json.dumps(line, ensure_ascii=False) for line in records).encode() + b"\n"
             for name, records in lines.items()}
    seeds["crlf_bom_blank.jsonl"] = (
        b"\xef\xbb\xbf" + json.dumps(lines["roboflow.jsonl"][0]).encode() + b"\r\n  \r\n\t\n"
        + json.dumps(lines["roboflow.jsonl"][1]).encode())
    seeds["escapes.jsonl"] = b'{"image": "a\\u002ejpg", "prefix": "\\ud83d\\ude00", "suffix": "\\n"}\n'
    return seeds


def tokenizer_seeds():
    corpus = (ROOT / "Tests" / "Fixtures" / "dataset" / "tokenizer" / "corpus.txt").read_text().splitlines()
    box = "<loc0012><loc0345><loc0678><loc1023>"
    return {
        "detect_prompt.txt": b"detect cat ; dog\n" + f"{box} cat ; {box} dog".encode(),
        "caption.txt": corpus[2].encode(),
        "corpus_lines.txt": "\n".join(corpus[:6]).encode(),
        "segmentation.txt": b"segment cat\n<loc0001><loc0002><loc0003><loc0004><seg000><seg127> cat",
        "unicode.txt": "naïve café 日本語 🙂 \u00a0\u2581 \ufffd".encode(),
        "control.txt": b"\x00\x01\t\r\n\x7f<unk><s></s><pad>",
    }


def detection_seeds():
    box = "<loc0100><loc0200><loc0300><loc0400>"
    return {
        "two_objects.txt": f"{box} cat ; {box} dog".encode(),
        "multiword.txt": f"{box} traffic light ; {box}   a   b ".encode(),
        "no_separator.txt": f"{box} cat{box} dog".encode(),
        "segmentation.txt": f"{box}<seg001><seg127> cat".encode(),
        "malformed.txt": b"<loc0100><loc0200> cat ; ; <loc9999> <loc12> dog ; <loc0400><loc0300><loc0200><loc0100> cat",
        "missing_label.txt": f"{box}{box} cat ; {box}".encode(),
        "empty.txt": b"",
        "token_form.bin": bytes([2, 8, 3, 8, 4, 8, 5, 8, 11, 16, 8, 0, 1, 0, 29, 0]),
    }


def xxh64(data, seed=0):
    """XXH64 (xxHash 0.8 specification), as Comm's XXHash64 computes it."""
    p1, p2, p3, p4, p5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                          0x27D4EB2F165667C5)
    mask = (1 << 64) - 1

    def rotl(value, bits):
        return ((value << bits) | (value >> (64 - bits))) & mask

    def round_(accumulator, lane):
        accumulator = (accumulator + lane * p2) & mask
        return (rotl(accumulator, 31) * p1) & mask

    def merge(accumulator, value):
        accumulator ^= round_(0, value)
        return (accumulator * p1 + p4) & mask

    length, offset = len(data), 0
    if length >= 32:
        v = [(seed + p1 + p2) & mask, (seed + p2) & mask, seed, (seed - p1) & mask]
        while offset + 32 <= length:
            for lane in range(4):
                v[lane] = round_(v[lane], struct.unpack_from("<Q", data, offset + 8 * lane)[0])
            offset += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & mask
        for lane in range(4):
            h = merge(h, v[lane])
    else:
        h = (seed + p5) & mask
    h = (h + length) & mask
    while offset + 8 <= length:
        h ^= round_(0, struct.unpack_from("<Q", data, offset)[0])
        h = (rotl(h, 27) * p1 + p4) & mask
        offset += 8
    if offset + 4 <= length:
        h ^= (struct.unpack_from("<I", data, offset)[0] * p1) & mask
        h = (rotl(h, 23) * p2 + p3) & mask
        offset += 4
    while offset < length:
        h ^= (data[offset] * p5) & mask
        h = (rotl(h, 11) * p1) & mask
        offset += 1
    h ^= h >> 33
    h = (h * p2) & mask
    h ^= h >> 29
    h = (h * p3) & mask
    return h ^ (h >> 32)


def frame(codec, payload, count, phase=1, bucket=5, chunk=1, step=0, control=0):
    """Encodes a frame as FrameCodec writes it, behind the target's control byte."""
    header = struct.pack(
        "<IBBBBIIIIIIQ", 0x46524750, 1, codec, phase, 0, bucket, chunk, step, count, len(payload), 0, xxh64(payload))
    return bytes([control]) + header + payload


def frame_seeds():
    values = np.array([0.5, -1.25, 3e-3, 65504, 0, -0.0, 1e-7, 2], dtype="<f4")
    half = values.astype("<f2").view("<u2")
    planes = (half >> 8).astype("u1").tobytes() + (half & 0xFF).astype("u1").tobytes()
    repeated = np.tile(half, 64)
    repeated_planes = (repeated >> 8).astype("u1").tobytes() + (repeated & 0xFF).astype("u1").tobytes()
    if shutil.which("zstd") is None:
        raise SystemExit("make_seeds: the zstd command is needed for the frame seeds (apt-get install zstd)")
    compressed = subprocess.run(
        ["zstd", "-q", "-c", "-1", "--no-check"], input=repeated_planes, capture_output=True, check=True).stdout
    return {
        "f32.bin": frame(1, values.tobytes(), len(values)),
        "f32_addend.bin": frame(1, values.tobytes(), len(values), phase=2, control=2),
        "f16_shuffled.bin": frame(2, planes, len(values)),
        "f16_zstd.bin": frame(3, compressed, len(repeated), control=1),
        "empty_chunk.bin": frame(1, b"", 0, bucket=0, chunk=0),
    }


def check(name, data):
    """Confirms that Python's zipfile and numpy read the seed, so every seed is valid input."""
    if name.endswith(".npz"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if archive.testzip() is not None:
                raise SystemExit(f"make_seeds: {name}: zipfile reports a bad member")
            for member in archive.namelist():
                np.lib.format.read_array(io.BytesIO(archive.read(member)), allow_pickle=False)
    elif name.endswith(".npy"):
        np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)


def main():
    generators = {
        "npy": npy_seeds,
        "npz": npz_seeds,
        "jpeg": lambda: image_seeds({".jpg", ".jpeg"}),
        "png": lambda: image_seeds({".png"}),
        "jsonl": jsonl_seeds,
        "tokenizer": tokenizer_seeds,
        "detection": detection_seeds,
        "frame": frame_seeds,
    }
    selected = sys.argv[1:] or list(generators)
    for target in selected:
        if target not in generators:
            raise SystemExit(f"make_seeds: unknown target '{target}'; known: {', '.join(generators)}")
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in generators[target]().items():
            check(name, data)
            (directory / name).write_bytes(data)
        print(f"make_seeds: wrote {len(generators[target]())} seeds to {directory.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
