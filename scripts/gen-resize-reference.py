#!/usr/bin/env python3
"""Writes test/fixtures/resize-crop.json: PyTorch's antialiased bilinear resize (F.interpolate, mode bilinear,
antialias=True, align_corners=False, which follows PIL's BILINEAR filter) of small 8-bit RGB windows, enlarged,
shrunk, and both at once, the reference the RandomResizedCrop resize of src/data/resize-crop.ts is tested against.
Outputs are float32 before any rounding, so the 8-bit result should be within half a level of them.

    /usr/bin/python3 scripts/gen-resize-reference.py
"""
import json
import os

import torch
import torch.nn.functional as F

# (height, width) -> output square size
CASES = [((9, 13), 16), ((14, 20), 8), ((7, 30), 12), ((31, 5), 10), ((6, 6), 6)]


def main():
    g = torch.Generator().manual_seed(21)
    out = []
    for (h, w), size in CASES:
        px = torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8)
        x = px.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
        y = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False, antialias=True)
        out.append({
            'height': h,
            'width': w,
            'size': size,
            'pixels': px.flatten().tolist(),
            'resized': [round(v, 5) for v in y[0].permute(1, 2, 0).flatten().tolist()],
        })
    path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'resize-crop.json')
    with open(path, 'w') as f:
        json.dump({'torch': torch.__version__, 'cases': out}, f)
        f.write('\n')
    print('wrote', path)


if __name__ == '__main__':
    main()
