#!/usr/bin/env python3
"""Writes test/fixtures/augment-ops.json: torchvision's colour and pixel ops on small images, the reference the
batched tfjs versions in src/data/ are tested against (hue in colour jitter, and the RandAugment /
TrivialAugmentWide pixel ops).

Run with Debian's python3-torchvision (`bash ../shared/peer/setup.sh` installs it), under /usr/bin/python3:
    /usr/bin/python3 scripts/gen-augment-reference.py
Float ops run on float32 images in [0, 1] (u8 / 255), so the comparison is free of uint8 rounding; posterize and
equalize are defined on uint8 only and run on the uint8 images.
"""
import json
import math
import os

import torch
import torchvision
import torchvision.transforms.functional as F

SIZE = 4


def images():
    g = torch.Generator().manual_seed(15)
    a = torch.randint(0, 256, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
    # one channel constant: autocontrast leaves it, hue meets max == min pixels
    b = torch.randint(0, 256, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
    b[1] = 77
    # a narrow-range grey-ish image with some exact greys (saturation 0) and ties between channels
    c = torch.randint(90, 140, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
    c[:, 0, :] = c[0:1, 0, :]
    c[2, 1, :] = c[0, 1, :]
    return torch.stack([a, b, c])


def to_hwc(t):
    # 7 decimals: well inside the 1e-5 the tests allow, and a third of the bytes
    return [round(v, 7) for v in t.permute(0, 2, 3, 1).reshape(-1).tolist()]


def main():
    u8 = images()
    f = u8.to(torch.float32) / 255
    cases = []

    def add(op, param, fn, dtype="float"):
        src = f if dtype == "float" else u8
        out = torch.stack([fn(img) for img in src])
        cases.append({"op": op, "param": param, "dtype": dtype, "out": to_hwc(out.to(torch.float64))})

    for h in [-0.5, -0.3, -0.1, 0.05, 0.25, 0.5]:
        add("hue", h, lambda im, h=h: F.adjust_hue(im, h))
    for v in [0.3, 1.7]:
        add("brightness", v, lambda im, v=v: F.adjust_brightness(im, v))
    for v in [0.2, 1.8]:
        add("color", v, lambda im, v=v: F.adjust_saturation(im, v))
    for v in [0.4, 1.6]:
        add("contrast", v, lambda im, v=v: F.adjust_contrast(im, v))
    for v in [0.1, 1.9]:
        add("sharpness", v, lambda im, v=v: F.adjust_sharpness(im, v))
    for t in [0.5, 0.9]:
        add("solarize", t, lambda im, t=t: F.solarize(im, t))
    add("autocontrast", 0, F.autocontrast)
    for bits in [2, 5, 8]:
        add("posterize", bits, lambda im, b=bits: F.posterize(im, b), "uint8")
    add("equalize", 0, F.equalize, "uint8")

    # geometric ops as torchvision's RandAugment applies them (_apply_op), bilinear; fill None reads zeros outside,
    # which is layertune's constant padding with fill 0
    bil = torchvision.transforms.InterpolationMode.BILINEAR
    deg = lambda t: math.degrees(math.atan(t))
    for t in [0.3, -0.45]:
        add("shearX", t, lambda im, t=t: F.affine(im, 0.0, [0, 0], 1.0, [deg(t), 0.0], interpolation=bil, center=[0, 0]))
        add("shearY", t, lambda im, t=t: F.affine(im, 0.0, [0, 0], 1.0, [0.0, deg(t)], interpolation=bil, center=[0, 0]))
    for t in [2, -1]:
        add("translateX", t, lambda im, t=t: F.affine(im, 0.0, [t, 0], 1.0, [0.0, 0.0], interpolation=bil))
        add("translateY", t, lambda im, t=t: F.affine(im, 0.0, [0, t], 1.0, [0.0, 0.0], interpolation=bil))
    for a in [20.0, -90.0]:
        add("rotate", a, lambda im, a=a: F.rotate(im, a, interpolation=bil))
    # RandomAffine's composition: rotation, shift, zoom and shear together
    add("affine", 0, lambda im: F.affine(im, 17.0, [1, -2], 1.1, [8.0, 0.0], interpolation=bil))

    spaces = {}
    for name, aug in [("randAugment", torchvision.transforms.RandAugment()), ("trivialAugmentWide", torchvision.transforms.TrivialAugmentWide())]:
        args = (31, (224, 224)) if name == "randAugment" else (31,)
        space = aug._augmentation_space(*args)
        spaces[name] = {op: {"signed": bool(signed), "bins": [round(float(v), 7) for v in mags.reshape(-1).tolist()]} for op, (mags, signed) in space.items()}

    out = {
        "generator": f"scripts/gen-augment-reference.py, torch {torch.__version__}, torchvision {torchvision.__version__}",
        "shape": [u8.shape[0], SIZE, SIZE, 3],
        "images": to_hwc(u8),
        "cases": cases,
        # torchvision's op list and magnitude bins (RandAugment at 224 px, num_magnitude_bins 31)
        "spaces": spaces,
    }
    path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "augment-ops.json")
    with open(path, "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
