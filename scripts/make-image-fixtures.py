#!/usr/bin/env python3
"""Build the image fixtures and their reference preprocessing for Tests/DatasetTests.

Writes into Tests/Fixtures/dataset/images/:
  *.jpg, *.png       small synthetic images covering the decoder paths (baseline, progressive,
                     grayscale and CMYK JPEG, every EXIF orientation, 8/16-bit, gray, alpha,
                     palette and interlaced PNG, an upscale, a large JPEG for DCT scaling)
  truncated.jpg      a JPEG cut in the middle of its entropy-coded data
  bomb-30000.png     a valid PNG header announcing 30000x30000 pixels, with almost no data
  not-an-image.jpg   text with a .jpg name
  references.npz     for each decodable fixture, float32 [24, 24, 3] in [-1, 1]:
                     jax.image.resize(pixels, (24, 24, 3), "linear", antialias=True) / 127.5 - 1,
                     the semantics of tf.image.resize(bilinear, antialias=True)

Reference pixels: PNGs use the exact arrays that were encoded (lossless; 16-bit values scaled
by 1/257). JPEGs are decoded by Pillow, then rotated with ImageOps.exif_transpose. CMYK is
converted by Pillow's convert("RGB").

Requires: pip install numpy pillow "jax[cpu]". Made with Pillow 13.0.0 and jax 0.10.2.
Run from the repository root: python3 scripts/make-image-fixtures.py
"""

import io
import os
import struct
import sys
import zlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageOps

OUT = os.path.join("Tests", "Fixtures", "dataset", "images")
SIZE = 24


def pattern(width, height, seed):
    """An asymmetric RGB test pattern: gradients, a disc, stripes and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 255 * x / max(width - 1, 1)
    green = 255 * y / max(height - 1, 1)
    disc = ((x - width * 0.3) ** 2 + (y - height * 0.35) ** 2) < (min(width, height) * 0.2) ** 2
    blue = np.where(disc, 230.0, 40.0) + 60 * (np.floor(x / 5) % 2)
    image = np.stack([red, green, blue], axis=-1) + rng.normal(0, 6, (height, width, 3))
    # A bright corner block makes every orientation distinguishable.
    image[: height // 5, : width // 6] = [250, 250, 30]
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def smooth(width, height):
    """A smooth image (gradients and a soft blob) for the DCT-scaling check."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    blob = 120 * np.exp(-(((x - width * 0.6) / (width * 0.2)) ** 2 + ((y - height * 0.4) / (height * 0.25)) ** 2))
    red = 60 + 150 * x / width
    green = 40 + 100 * y / height + blob
    blue = 200 - 120 * x / width + 0.5 * blob
    return np.clip(np.round(np.stack([red, green, blue], axis=-1)), 0, 255).astype(np.uint8)


def reference(pixels):
    """pixels: [H, W, 3] float on the 0..255 scale -> [SIZE, SIZE, 3] float32 in [-1, 1]."""
    array = jnp.asarray(pixels, dtype=jnp.float32)
    resized = jax.image.resize(array, (SIZE, SIZE, 3), method="linear", antialias=True)
    return np.asarray(resized / 127.5 - 1.0, dtype=np.float32)


def jpeg_pixels(path):
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, color_type, bit_depth, interlaced=False):
    """A minimal PNG writer for the cases Pillow cannot write: 16-bit RGB and Adam7 interlacing.

    samples: [H, W, C] unsigned integers (C = 1 or 3); rows use filter type 0."""
    height, width = samples.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"

    def scanlines(block):
        return b"".join(b"\x00" + row.astype(dtype).tobytes() for row in block)

    if interlaced:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            block = samples[y0::dy, x0::dx]
            if block.size:
                raw += scanlines(block)
    else:
        raw = scanlines(samples)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw, 9))
    data += png_chunk(b"IEND", b"")
    with open(path, "wb") as handle:
        handle.write(data)


def main():
    if not os.path.isdir("Tests"):
        sys.exit("run this from the repository root")
    os.makedirs(OUT, exist_ok=True)
    references = {}

    def out(name):
        return os.path.join(OUT, name)

    # JPEGs: reference from Pillow's decode.
    base = pattern(64, 48, seed=1)
    Image.fromarray(base).save(out("rgb-baseline.jpg"), quality=90)
    Image.fromarray(base).save(out("rgb-progressive.jpg"), quality=90, progressive=True)
    Image.fromarray(base).convert("L").save(out("gray.jpg"), quality=90)
    Image.fromarray(base).convert("CMYK").save(out("cmyk.jpg"), quality=95)
    small = pattern(40, 24, seed=2)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(small).save(out(f"exif-orientation-{orientation}.jpg"), quality=90, exif=exif)
    Image.fromarray(smooth(640, 480)).save(out("large-smooth.jpg"), quality=60)
    for name in sorted(os.listdir(OUT)):
        if name.endswith(".jpg"):
            references[name] = reference(jpeg_pixels(out(name)))

    # PNGs: reference from the arrays that were encoded.
    rgb = pattern(50, 30, seed=3)
    Image.fromarray(rgb).save(out("rgb.png"))
    references["rgb.png"] = reference(rgb)

    alpha = np.linspace(0, 255, 50 * 30).reshape(30, 50, 1).astype(np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=-1), "RGBA").save(out("rgba.png"))
    references["rgba.png"] = reference(rgb)

    gray = rgb[..., 1]
    Image.fromarray(gray, "L").save(out("gray.png"))
    references["gray.png"] = reference(np.repeat(gray[..., None], 3, axis=-1))

    Image.fromarray(np.stack([gray, alpha[..., 0]], axis=-1), "LA").save(out("gray-alpha.png"))
    references["gray-alpha.png"] = reference(np.repeat(gray[..., None], 3, axis=-1))

    palette_image = Image.fromarray(rgb).quantize(colors=16)
    palette_image.save(out("palette.png"))
    references["palette.png"] = reference(np.asarray(palette_image.convert("RGB"), dtype=np.float64))
    palette_image.save(out("palette-trns.png"), transparency=3)
    references["palette-trns.png"] = reference(np.asarray(palette_image.convert("RGB"), dtype=np.float64))

    bits = (gray > 128).astype(np.uint8)
    Image.fromarray(bits * 255, "L").convert("1").save(out("gray-1bit.png"))
    references["gray-1bit.png"] = reference(np.repeat(bits[..., None] * 255.0, 3, axis=-1))

    rng = np.random.default_rng(4)
    gray16 = (np.linspace(0, 65535, 40 * 28).reshape(28, 40) + rng.normal(0, 300, (28, 40)))
    gray16 = np.clip(np.round(gray16), 0, 65535).astype(np.uint16)
    write_png(out("gray16.png"), gray16[..., None], color_type=0, bit_depth=16)
    references["gray16.png"] = reference(np.repeat(gray16[..., None] / 257.0, 3, axis=-1))

    rgb16 = (rgb.astype(np.uint16) * 257 + rng.integers(0, 257, rgb.shape)).astype(np.uint16)
    write_png(out("rgb16.png"), rgb16, color_type=2, bit_depth=16)
    references["rgb16.png"] = reference(rgb16 / 257.0)

    write_png(out("rgb-interlaced.png"), rgb, color_type=2, bit_depth=8, interlaced=True)
    references["rgb-interlaced.png"] = reference(rgb)

    tiny = pattern(20, 15, seed=5)
    Image.fromarray(tiny).save(out("upscale.png"))
    references["upscale.png"] = reference(tiny)

    # Inputs that must be rejected.
    with open(out("rgb-baseline.jpg"), "rb") as handle:
        whole = handle.read()
    with open(out("truncated.jpg"), "wb") as handle:
        handle.write(whole[: len(whole) * 6 // 10])
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
    bomb += png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b"")
    with open(out("bomb-30000.png"), "wb") as handle:
        handle.write(bomb)
    with open(out("not-an-image.jpg"), "w") as handle:
        handle.write("this is text, not a JPEG\n")

    np.savez(out("references.npz"), **{name: value for name, value in sorted(references.items())})
    total = sum(os.path.getsize(out(name)) for name in os.listdir(OUT))
    print(f"{len(references)} references, {len(os.listdir(OUT))} files, {total} bytes")


if __name__ == "__main__":
    main()
