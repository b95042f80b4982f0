#!/usr/bin/env python3
"""Writes the seed corpora in Tests/Fixtures/fuzz-corpus/ for the checkpoint fuzz targets.

usage: Fuzz/make_seeds.py [npy|npz ...]   (default: all)

Seeds are small valid inputs that cover each format feature the parser handles, so the
fuzzer starts from deep inside the format instead of from random bytes. The NPY seeds come
from numpy itself. The NPZ seeds come from numpy's savez and from a ZIP writer below that can
force ZIP64 records, data descriptors and extra-field padding, which numpy does not write for
small files. Rerunning the script rewrites the same bytes.
"""

import io
import struct
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


def check(name, data):
    """Confirms that Python's zipfile and numpy read the seed, so every seed is valid input."""
    if name.endswith(".npz"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if archive.testzip() is not None:
                raise SystemExit(f"make_seeds: {name}: zipfile reports a bad member")
            for member in archive.namelist():
                np.lib.format.read_array(io.BytesIO(archive.read(member)), allow_pickle=False)
    else:
        np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)


def main():
    generators = {"npy": npy_seeds, "npz": npz_seeds}
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
