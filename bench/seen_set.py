"""Seen-set memory: bytes per key at 10 M keys, Bloom filter vs Scrapy's set of fingerprints.

    python bench/seen_set.py [--keys 10000000]

Adds N request fingerprints (20-byte SHA-1, as Scrapy's fingerprinter makes
them) to the crawler's ``BloomDupeFilter`` filter at the default error rate,
and to a plain Python set as ``RFPDupeFilter`` keeps them, each in a fresh
process, and reports the growth of resident memory per key. Prints one JSON
line with ``seen_set_bytes_per_key``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

CHILD = r"""
import hashlib, sys
sys.path.insert(0, {project!r})
from crawler.runtime.dupefilter import DEFAULT_ERROR_RATE, fingerprint_hash, new_bloom

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))

n, kind = {n}, {kind!r}
before = rss()
seen = new_bloom(n, DEFAULT_ERROR_RATE, fingerprint_hash) if kind == "bloom" else set()
for i in range(n):
    seen.add(hashlib.sha1(i.to_bytes(8, "little")).digest())
after = rss()
extra = {{}}
if kind == "bloom":
    extra["allocated_bytes_per_key"] = seen.size_in_bits / 8 / n
    probes = 1_000_000
    false = sum(hashlib.sha1((n + i).to_bytes(8, "little")).digest() in seen for i in range(probes))
    extra["measured_false_positive_rate"] = false / probes
import json
print(json.dumps({{"per_key": (after - before) / n, **extra}}))
"""


def measure(kind: str, n: int) -> tuple[float, dict]:
    code = CHILD.format(project=str(PROJECT), n=n, kind=kind)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    return result.pop("per_key"), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000_000)
    args = parser.parse_args()
    bloom, details = measure("bloom", args.keys)
    plain, _ = measure("set", args.keys)
    print(f"{args.keys:,} keys: Bloom filter {bloom:.2f} bytes/key (allocated "
          f"{details['allocated_bytes_per_key']:.2f}, false positives {details['measured_false_positive_rate']:.2e}); "
          f"Python set of fingerprints {plain:.1f} bytes/key")  # fmt: skip
    print(json.dumps({"seen_set_bytes_per_key": round(bloom, 2), "python_set_bytes_per_key": round(plain, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
