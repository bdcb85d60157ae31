"""Seen-set memory: bytes per possible IMDb id of the frontier's bitmaps, vs Scrapy's set of fingerprints.

    python bench/seen_set.py [--keys 12000000] [--space 40000000]

Adds ``--keys`` random title ids out of ``--space`` possible ones (IMDb has
issued about 12 M title ids up to tt4…, so about one in three is used) to the
frontier's ``IdSet`` in a fresh process, and the same number of request
fingerprints to a Python set (what Scrapy's ``RFPDupeFilter`` keeps). Memory is
the growth of resident memory. Prints both and one JSON line with
``seen_bytes_per_possible_id`` (the bitmap's bytes over the id space).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

CHILD = r"""
import hashlib, random, sys
sys.path.insert(0, {project!r})
from crawler.runtime.frontier import IdSet

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))

n, space, kind = {n}, {space}, {kind!r}
rng = random.Random(7)
numbers = rng.sample(range(space), n)
before = rss()
if kind == "bitmap":
    seen = IdSet()
    for number in numbers:
        seen.add(f"tt{{number:07d}}")
    extra = {{"serialized_bytes": seen.nbytes(), "exact": all(f"tt{{x:07d}}" in seen for x in numbers[:100000])}}
else:
    seen = set()
    for number in numbers:
        seen.add(hashlib.sha1(str(number).encode()).digest())
    extra = {{}}
after = rss()
import json
print(json.dumps({{"bytes": after - before, **extra}}))
"""


def measure(kind: str, n: int, space: int) -> dict:
    code = CHILD.format(project=str(PROJECT), n=n, space=space, kind=kind)
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=12_000_000)
    parser.add_argument("--space", type=int, default=40_000_000)
    args = parser.parse_args()
    bitmap = measure("bitmap", args.keys, args.space)
    plain = measure("set", args.keys, args.space)
    per_id = max(bitmap["bytes"], bitmap["serialized_bytes"]) / args.space
    print(f"{args.keys:,} ids of {args.space:,}: bitmap {bitmap['bytes'] / 2**20:.1f} MB resident "
          f"({bitmap['serialized_bytes'] / 2**20:.1f} MB serialized), {per_id:.3f} bytes per possible id, "
          f"{bitmap['bytes'] / args.keys:.2f} per id; Python set of fingerprints {plain['bytes'] / args.keys:.1f} "
          "bytes per id")  # fmt: skip
    print(json.dumps({"seen_bytes_per_possible_id": round(per_id, 3),
                      "seen_set_bytes_per_key": round(bitmap["bytes"] / args.keys, 3),
                      "python_set_bytes_per_key": round(plain["bytes"] / args.keys, 1)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
