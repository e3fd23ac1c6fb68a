"""Independent implementation of Xiebao's result digest rule v1 (docs/result-digest.md).

Usage: digest.py <output directory>   prints the 0x digest
"""
import hashlib
import os
import sys

from eth_utils import keccak


def entries(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or not os.path.isfile(full):
                sys.exit(f"not a regular file: {full}")
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            with open(full, "rb") as f:
                out.append((rel.encode(), b"\x01", hashlib.sha256(f.read()).digest()))
        if not dirnames and not filenames and rel_dir != ".":
            out.append((rel_dir.encode(), b"\x02", b""))
    return sorted(out)


def digest(root):
    items = entries(root)
    data = b"XIEBAO_RESULT_DIGEST_V1" + len(items).to_bytes(8, "big")
    for path, kind, content_hash in items:
        data += kind + len(path).to_bytes(4, "big") + path + content_hash
    return "0x" + keccak(data).hex()


if __name__ == "__main__":
    print(digest(sys.argv[1]))
