#!/usr/bin/env python3
"""Write the small hostile NPZ fixtures in Tests/Fixtures/hostile/.

Each file is a real numpy output that palitrain must reject with a clear error. Cases that need
byte-level damage (truncation, lying directories, deflate bombs) are built by the Swift tests
at run time instead.

Usage: python3 scripts/make_hostile_fixtures.py [output-directory]
"""

import os
import sys

import numpy as np


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "Tests", "Fixtures", "hostile")
    os.makedirs(out, exist_ok=True)

    good = np.arange(6, dtype=np.float32).reshape(2, 3)

    # An object array: loading it would unpickle arbitrary Python objects.
    objects = np.array([{"a": 1}, [1, 2]], dtype=object)
    np.savez(os.path.join(out, "object_dtype.npz"), ok=good, params_pickle=objects)

    # Big-endian float32.
    np.savez(os.path.join(out, "big_endian.npz"), weights=good.astype(">f4"))

    # A 2-D array in Fortran order (column-major bytes).
    np.savez(os.path.join(out, "fortran_order.npz"), weights=np.asfortranarray(good))

    # A structured dtype: the descr is a list of fields.
    record = np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])
    np.savez(os.path.join(out, "structured.npz"), records=record)

    # float64, which palitrain does not read.
    np.savez(os.path.join(out, "float64.npz"), weights=good.astype(np.float64))


if __name__ == "__main__":
    main()
