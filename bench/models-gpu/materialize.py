#!/usr/bin/env python3
"""Rebuilds the shape GGUFs carried as header + data extents (bench/models-gpu-prepare.ts) as
full-size sparse files: the real size and header, zeros (holes) for the weights. Extent files
ending in .gz (bench/vulkan-gpu-prepare.ts) are gzip-compressed."""
import gzip, json, os, sys

carry, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest, exist_ok=True)
shapes = json.load(open(os.path.join(carry, 'shapes.json')))
for name, s in shapes.items():
    path = os.path.join(dest, name)
    if os.path.exists(path) and os.path.getsize(path) == s['size']:
        continue
    with open(path + '.tmp', 'wb') as f:
        for e in s['extents']:
            f.seek(e['offset'])
            f.write((gzip.open if e['file'].endswith('.gz') else open)(os.path.join(carry, e['file']), 'rb').read())
        f.truncate(s['size'])
    os.replace(path + '.tmp', path)
    print(f"{name}: {s['size'] / 2**30:.1f} GiB (sparse)")
