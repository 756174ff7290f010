#!/usr/bin/env python3
"""Write an Open WebUI-shaped ChromaDB persistent store for the Chroma benchmark,
with the real `chromadb` package (1.5.9, the version Open WebUI 0.12.4 pins).

    python make_store.py OUTDIR [--chunks 200000] [--dim 384] [--seed 42]

OUTDIR/store           the persistent directory (chroma.sqlite3 + one dir per segment)
OUTDIR/generated.json  what was written and how long it took; written last, so its
                       presence means the store is complete (the benchmark's marker)

Reused as is when OUTDIR/generated.json exists with the same parameters; otherwise the
store is written into OUTDIR.tmp by a child process (so the client is fully shut down
at process exit) and renamed into place.

Shape (what Open WebUI 0.12 writes through its ChromaClient.insert()):
  * every collection cosine (`metadata={"hnsw:space": "cosine"}`), embedding_function=None;
  * one knowledge collection (named by the knowledge uuid) with ~92.5 % of the chunks,
    from many files of 20-200 chunks each;
  * 50 `file-<uuid>` collections (chat uploads), a few hundred chunks each at 200k;
  * chunk ids are uuid4 (seeded), text 500-1000 characters of mixed-script text;
  * metadata after Open WebUI's process_metadata(): file_id, name, source, hash,
    created_by, embedding_config (the str() of a dict, as process_metadata stores it),
    start_index, and for PDFs page, page_label, total_pages;
  * embeddings passed explicitly (seeded numpy float32, not unit length), so no
    embedding model is loaded.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

FILE_COLLECTIONS = 50
FILE_SHARE = 0.075  # share of the chunks in the file-<uuid> collections

WORDS = (
    "the of and to in is that for it as with was on be by this are from at or an "
    "have not which but all were when we there can more if will one about their has "
    "data report model vector index query server chunk embedding document search "
    "quarterly revenue policy section figure table appendix summary results method "
    "café naïve résumé façade über straße größe garçon déjà coördinate jalapeño "
    "München Zürich São Paulo Kraków Ærøskøbing Reykjavík Malmö Øresund "
    "данные поиск документ сервер индекс вектор модель запрос отчёт "
    "δεδομένα αναζήτηση έγγραφο μοντέλο ευρετήριο "
    "数据 检索 文档 向量 索引 模型 服务器 查询 报告 "
    "データ 検索 文書 ベクトル 索引 モデル "
    "데이터 검색 문서 벡터 "
    "بيانات بحث مستند "
    "नमस्ते डेटा खोज "
    "✓ → ≤ ≥ ± × ÷ € £ ¥ § ¶ • … “quoted” ‘single’ — – "
    "🙂 🚀 📄 🔍 ✅ "
    "0 1 2 3 42 100 2024 3.14 1,024 12.5% #7 v2.1 (see) [1] {x} a/b e.g. i.e."
).split()
PUNCT = [".", ".", ".", ",", ",", ";", ":", "?", "!", ".\n\n", ".\n"]


def uuid4(r):
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def plan(n, seed):
    """Files and collections, deterministic for (n, seed): a list of
    (collection_name, [file dict, ...]) where each file knows its chunk count."""
    import random

    r = random.Random(seed)
    users = [uuid4(r) for _ in range(12)]
    n_files_total = max(1, min(n, round(n * FILE_SHARE)))
    n_file_cols = min(FILE_COLLECTIONS, n_files_total, max(1, n - 1))
    # chunks per file-<uuid> collection: random weights scaled to the total
    w = [r.uniform(0.5, 1.5) for _ in range(n_file_cols)]
    sizes = [max(1, int(n_files_total * x / sum(w))) for x in w]
    sizes[-1] += n_files_total - sum(sizes)
    sizes[-1] = max(1, sizes[-1])
    knowledge_chunks = n - sum(sizes)

    def new_file(chunks):
        pdf = r.random() < 0.6
        ext = "pdf" if pdf else r.choice(["txt", "md", "docx", "html"])
        stem = r.choice(["report", "handbook", "notes", "minutes", "spec", "Übersicht", "отчёт", "报告", "manual"])
        name = f"{stem}-{r.randint(1, 9999)}.{ext}"
        return {
            "file_id": uuid4(r),
            "name": name,
            "hash": f"{r.getrandbits(256):064x}",
            "created_by": r.choice(users),
            "pdf": pdf,
            "chunks": chunks,
            "chunks_per_page": r.randint(2, 5),
        }

    cols = []
    k_files = []
    left = knowledge_chunks
    while left > 0:
        c = min(left, r.randint(20, 200))
        k_files.append(new_file(c))
        left -= c
    knowledge_id = uuid4(r)
    if k_files:
        cols.append((knowledge_id, k_files))
    for s in sizes:
        f = new_file(s)
        cols.append((f"file-{f['file_id']}", [f]))
    return cols


EMBEDDING_CONFIG = str({"engine": "", "model": "sentence-transformers/all-MiniLM-L6-v2"})


def chunk_rows(cols, seed):
    """Yield (collection_name, id, document, metadata) in a deterministic order."""
    import random

    r = random.Random(seed + 1)
    nwords = len(WORDS)
    for name, files in cols:
        for f in files:
            start = 0
            total_pages = (f["chunks"] + f["chunks_per_page"] - 1) // f["chunks_per_page"]
            for i in range(f["chunks"]):
                target = r.randint(500, 1000)
                parts = []
                length = 0
                while length < target:
                    k = r.randint(4, 14)
                    sentence = " ".join(WORDS[r.randrange(nwords)] for _ in range(k))
                    sentence = sentence[0].upper() + sentence[1:] + r.choice(PUNCT)
                    parts.append(sentence)
                    length += len(sentence) + 1
                doc = " ".join(parts)[:target]
                md = {
                    "file_id": f["file_id"],
                    "name": f["name"],
                    "source": f["name"],
                    "hash": f["hash"],
                    "created_by": f["created_by"],
                    "embedding_config": EMBEDDING_CONFIG,
                    "start_index": start,
                }
                if f["pdf"]:
                    page = i // f["chunks_per_page"]
                    md["page"] = page
                    md["page_label"] = str(page + 1)
                    md["total_pages"] = total_pages
                start += len(doc) - r.randint(0, 100)  # chunk overlap
                yield name, uuid4(r), doc, md


# --------------------------------------------------------------------------- write
def write(store, n, dim, seed):
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        path=store, settings=Settings(anonymized_telemetry=False, allow_reset=True)
    )
    batch = min(5000, client.get_max_batch_size())
    rng = np.random.default_rng(seed)
    cols = plan(n, seed)
    collections = {}
    t0 = time.monotonic()
    done = 0

    def flush(name, ids, docs, mds):
        nonlocal done
        if not ids:
            return
        col = collections.get(name)
        if col is None:
            col = client.get_or_create_collection(
                name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None
            )
            collections[name] = col
        emb = rng.standard_normal((len(ids), dim), dtype=np.float32) * np.float32(0.5)
        col.add(ids=ids, embeddings=emb, documents=docs, metadatas=mds)
        done += len(ids)
        if done % 50000 < len(ids) or done == n:
            print(f"    {done}/{n} chunks, {time.monotonic() - t0:.0f} s", flush=True)

    cur, ids, docs, mds = None, [], [], []
    for name, cid, doc, md in chunk_rows(cols, seed):
        if name != cur or len(ids) >= batch:
            flush(cur, ids, docs, mds)
            cur, ids, docs, mds = name, [], [], []
        ids.append(cid)
        docs.append(doc)
        mds.append(md)
    flush(cur, ids, docs, mds)
    counts = {c.name: c.count() for c in client.list_collections()}
    assert sum(counts.values()) == n, (sum(counts.values()), n)
    return {
        "chromadb": chromadb.__version__,
        "collections": len(counts),
        "largest_collection": max(counts.values()),
        "write_seconds": round(time.monotonic() - t0, 1),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    params = {"chunks": a.chunks, "dim": a.dim, "seed": a.seed}

    if a.child:  # write the store, then what was written into writer.json
        info = write(os.path.join(a.outdir, "store"), a.chunks, a.dim, a.seed)
        with open(os.path.join(a.outdir, "writer.json"), "w") as f:
            json.dump(info, f)
        return

    marker = os.path.join(a.outdir, "generated.json")
    try:
        with open(marker) as f:
            old = json.load(f)
        if all(old.get(k) == v for k, v in params.items()):
            print(f"    reusing {a.outdir} (generated in {old.get('seconds')} s)")
            return
    except (OSError, ValueError):
        pass

    tmp = a.outdir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), tmp, "--child",
         "--chunks", str(a.chunks), "--dim", str(a.dim), "--seed", str(a.seed)],
    )
    if out.returncode != 0:
        sys.exit(f"make_store: the writer failed (exit {out.returncode}); partial store left in {tmp}")
    with open(os.path.join(tmp, "writer.json")) as f:
        info = json.load(f)
    os.remove(os.path.join(tmp, "writer.json"))
    seconds = round(time.monotonic() - t0, 1)
    size = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(tmp, "store")) for f in fs
    )
    shutil.rmtree(a.outdir, ignore_errors=True)
    os.rename(tmp, a.outdir)
    with open(marker, "w") as f:
        json.dump({**params, **info, "seconds": seconds, "store_bytes": size}, f, indent=1)
        f.write("\n")
    print(f"    wrote {a.outdir}/store: {a.chunks} chunks x {a.dim} dims, "
          f"{info['collections']} collections, {size / 1e6:.0f} MB, in {seconds} s")


if __name__ == "__main__":
    main()
