#!/usr/bin/env python3
"""The Python path from a ChromaDB store to Open WebUI's pgvector table: what a user
who knows both libraries would write. Baseline for `pgharbor migrate chroma:...`.

    python python_path.py STORE_DIR POSTGRES_URL [--dimension 384] [--page 10000]
                          [--lists 100] [--pk-after-load]

1. create the pgvector extension and Open WebUI's table `document_chunk` exactly as
   Open WebUI 0.12.4 creates it (SQLAlchemy create_all: primary key inline);
2. for every collection: chromadb `get(include=[embeddings, documents, metadatas])`,
   10k per page (Open WebUI's GET_PAGE_SIZE), rows converted as Open WebUI's
   PgvectorClient.insert() would, streamed through one psycopg 3 binary
   `COPY document_chunk (id, vector, collection_name, text, vmetadata) FROM STDIN
   (FORMAT BINARY)` (pgvector's psycopg adapter for the vector column); one commit;
3. the indexes Open WebUI builds, one after the other, on one connection.

Prints the phase timings and this process's peak RSS, and a last line of JSON
(`{"read_s", "load_s", "index_s", "total_s", "rows", "peak_rss_mb"}`) for bench/chroma.sh.
"""
import time

T_START = time.monotonic()

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import chromadb  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from chromadb.config import Settings  # noqa: E402
from pgvector.psycopg import register_vector  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

# ------------------------------------------------- Open WebUI 0.12.4, reimplemented
# open_webui/utils/misc.py
SURROGATE_RE = re.compile("[\ud800-\udfff]")


def sanitize_text_for_db(text):
    """open_webui.utils.misc.sanitize_text_for_db: strip NUL bytes and lone surrogates."""
    if not isinstance(text, str):
        return text
    if "\x00" not in text and not SURROGATE_RE.search(text):
        return text
    return SURROGATE_RE.sub("", text.replace("\x00", ""))


# open_webui/retrieval/vector/utils.py
KEYS_TO_EXCLUDE = [
    "content", "pages", "tables", "paragraphs", "sections", "figures", "documents",
    "keyValuePairs", "styles", "languages",
]
# open_webui/env.py: RAG_METADATA_MAX_VALUE_CHARS, None unless RAG_FILE_MAX_SIZE is set
RAG_METADATA_MAX_VALUE_CHARS = None


def process_metadata(metadata):
    """open_webui.retrieval.vector.utils.process_metadata: drop excluded keys and None
    values, str() datetimes/lists/dicts, sanitize strings."""
    result = {}
    for key, value in metadata.items():
        if key in KEYS_TO_EXCLUDE:
            continue
        if value is None:
            continue
        if RAG_METADATA_MAX_VALUE_CHARS is not None and isinstance(value, (list, dict)):
            try:
                if len(str(value)) > RAG_METADATA_MAX_VALUE_CHARS:
                    continue
            except (MemoryError, RecursionError, ValueError):
                continue
        if isinstance(value, (dt.datetime, list, dict)):
            result[key] = sanitize_text_for_db(str(value))
        else:
            result[key] = sanitize_text_for_db(value)
    return result


def adjust_vector_length(vector, length):
    """PgvectorClient.adjust_vector_length: zero-pad or truncate to VECTOR_LENGTH."""
    n = vector.shape[0]
    if n < length:
        return np.concatenate([vector, np.zeros(length - n, dtype=vector.dtype)])
    if n > length:
        return vector[:length]
    return vector


# open_webui/retrieval/vector/dbs/pgvector.py: DocumentChunk + Base.metadata.create_all
# (PGVECTOR_PGCRYPTO off), as SQLAlchemy emits it.
def create_table_sql(dim, pk_inline):
    pk = ",\n\tPRIMARY KEY (id)" if pk_inline else ""
    return (
        "CREATE TABLE document_chunk (\n\tid TEXT NOT NULL,\n"
        f"\tvector VECTOR({dim}),\n\tcollection_name TEXT NOT NULL,\n"
        f"\ttext TEXT,\n\tvmetadata JSONB{pk}\n)"
    )


# PgvectorClient.__init__: _ensure_vector_index (ivfflat, vector_cosine_ops, WITH (lists =
# PGVECTOR_IVFFLAT_LISTS), only once the table holds 50 * lists rows),
# _ensure_text_search_index, then the collection_name index.
def index_sql(lists):
    return [
        "CREATE INDEX IF NOT EXISTS idx_document_chunk_vector "
        f"ON document_chunk USING ivfflat (vector vector_cosine_ops) WITH (lists = {lists})",
        "CREATE INDEX IF NOT EXISTS idx_document_chunk_text_search ON document_chunk "
        "USING GIN (to_tsvector('simple', coalesce(text, '')))",
        "CREATE INDEX IF NOT EXISTS idx_document_chunk_collection_name ON document_chunk (collection_name)",
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store")
    ap.add_argument("url")
    ap.add_argument("--dimension", type=int, default=384)
    ap.add_argument("--page", type=int, default=10_000, help="get() page size (Open WebUI: 10000)")
    ap.add_argument("--lists", type=int, default=100, help="ivfflat lists (PGVECTOR_IVFFLAT_LISTS)")
    ap.add_argument("--pk-after-load", action="store_true",
                    help="add the primary key after COPY instead of creating the table with it")
    a = ap.parse_args()

    read_s = 0.0
    t = time.monotonic()
    client = chromadb.PersistentClient(path=a.store, settings=Settings(anonymized_telemetry=False))
    read_s += time.monotonic() - t
    open_s = read_s

    conn = psycopg.connect(a.url)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.execute(create_table_sql(a.dimension, not a.pk_after_load))
    conn.commit()
    register_vector(conn)

    t_load = time.monotonic()
    rows = 0
    with conn.cursor() as cur:
        with cur.copy(
            "COPY document_chunk (id, vector, collection_name, text, vmetadata) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "vector", "text", "text", "jsonb"])
            t = time.monotonic()
            names = [c.name for c in client.list_collections()]
            read_s += time.monotonic() - t
            for name in names:
                t = time.monotonic()
                col = client.get_collection(name=name, embedding_function=None)
                count = col.count()
                read_s += time.monotonic() - t
                for offset in range(0, count, a.page):
                    t = time.monotonic()
                    page = col.get(limit=a.page, offset=offset,
                                   include=["embeddings", "documents", "metadatas"])
                    read_s += time.monotonic() - t
                    for cid, emb, doc, md in zip(page["ids"], page["embeddings"],
                                                 page["documents"], page["metadatas"]):
                        copy.write_row((
                            cid,
                            adjust_vector_length(np.asarray(emb, dtype=np.float32), a.dimension),
                            name,
                            doc,
                            Jsonb(process_metadata(md)) if md is not None else None,
                        ))
                    rows += len(page["ids"])
        if a.pk_after_load:
            cur.execute("ALTER TABLE document_chunk ADD PRIMARY KEY (id)")
    conn.commit()
    # the load window ran the get() calls too: count them as read, not load
    load_s = time.monotonic() - t_load - (read_s - open_s)

    t = time.monotonic()
    # Open WebUI defers the ivfflat index until the table holds 50 * lists rows
    for sql in index_sql(a.lists) if rows >= 50 * a.lists else index_sql(a.lists)[1:]:
        conn.execute(sql)
        conn.commit()
    index_s = time.monotonic() - t
    conn.close()
    total_s = time.monotonic() - T_START
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"python path: {rows} rows from {len(names)} collections")
    print(f"  read (chromadb open + get)   {read_s:8.2f} s")
    print(f"  load (convert + COPY)        {load_s:8.2f} s")
    print(f"  index                        {index_s:8.2f} s")
    print(f"  total (incl. imports)        {total_s:8.2f} s")
    print(f"  peak RSS                     {peak_mb:8.0f} MB")
    print(json.dumps({"read_s": round(read_s, 3), "load_s": round(load_s, 3), "index_s": round(index_s, 3),
                      "total_s": round(total_s, 3), "rows": rows, "collections": len(names),
                      "peak_rss_mb": round(peak_mb)}))


if __name__ == "__main__":
    sys.exit(main())
