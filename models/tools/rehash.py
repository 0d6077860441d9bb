#!/usr/bin/env python3
"""Recompute the sizes and sha256 in a package's manifest.toml and rewrite manifest.sha256.

    python rehash.py models/demo-convnext-tiny

For use after a legitimate change to a packaged file (e.g. fitted heads written into heads.json);
the edit is then visible in git as a manifest change.
"""
import hashlib
import os
import re
import sys


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    pkg = sys.argv[1]
    mpath = os.path.join(pkg, "manifest.toml")
    text = open(mpath).read()
    blocks = text.split("[[files]]")
    out = [blocks[0]]
    for b in blocks[1:]:
        path = re.search(r'^path = "([^"]+)"', b, re.M).group(1)
        full = os.path.join(pkg, path)
        b = re.sub(r"^bytes = \d+", f"bytes = {os.path.getsize(full)}", b, flags=re.M)
        b = re.sub(r'^sha256 = "[0-9a-f]*"', f'sha256 = "{sha256(full)}"', b, flags=re.M)
        out.append(b)
    text = "[[files]]".join(out)
    open(mpath, "w").write(text)
    with open(os.path.join(pkg, "manifest.sha256"), "w") as f:
        f.write(f"{sha256(mpath)}  manifest.toml\n")
    print(f"{mpath}: rehashed")


if __name__ == "__main__":
    main()
