#!/usr/bin/env python3
"""Compare two `document_chunk` tables row by row (ordered by id, streamed).

    python compare.py URL_A URL_B

ids, collection_name, text and vmetadata must be equal; vectors are compared exactly and,
when not bit-equal, by their largest relative component difference (chromadb's get()
returns cosine collections' vectors de-normalised from the HNSW index, which can be one
float32 ulp off the values that were written). Prints one line; exit 1 on a mismatch.
"""
import sys

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

Q = "SELECT id, collection_name, text, vmetadata::text, vector FROM document_chunk ORDER BY id"


def rows(url):
    conn = psycopg.connect(url)
    register_vector(conn)
    with conn.cursor(name="c", binary=True) as cur:
        cur.itersize = 5000
        cur.execute(Q)
        yield from cur
    conn.close()


def main():
    a_url, b_url = sys.argv[1:3]
    n = vec_diff = 0
    worst = 0.0
    other = []
    for ra, rb in zip(rows(a_url), rows(b_url), strict=False):
        n += 1
        if ra[:4] != rb[:4]:
            other.append(ra[0] if ra[0] == rb[0] else f"{ra[0]} vs {rb[0]}")
            continue
        va, vb = ra[4], rb[4]
        if va is None or vb is None:
            if (va is None) != (vb is None):
                other.append(ra[0])
            continue
        if not np.array_equal(va, vb):
            vec_diff += 1
            d = np.abs(va.astype(np.float64) - vb.astype(np.float64))
            scale = np.maximum(np.abs(va.astype(np.float64)), 1e-30)
            worst = max(worst, float((d / scale).max()))
    if other:
        print(f"{n} rows compared: {len(other)} DIFFER in id/collection/text/metadata (first: {other[:3]})")
        return 1
    if vec_diff:
        print(f"{n} rows: ids, collections, texts, metadata equal; {vec_diff} vectors not bit-equal "
              f"(largest relative component difference {worst:.1e})")
    else:
        print(f"{n} rows: all equal, vectors bit-equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
