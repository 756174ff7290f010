#!/usr/bin/env python3
"""A webui.db-like SQLite file whose chats are very large, for bench/large_values.sh.

Starts from the real Open WebUI fixture (fixtures/openwebui/webui.db: its 48-odd tables, created
by Open WebUI's own migrations, and their rows) and adds ROWS chats to its `chat` table, each a
JSON document of about VALUE_MB MB in Open WebUI's shape: the messages twice, in `history.messages`
(by id) and in `messages` (a list), as Open WebUI stores them. Deterministic (seeded).

    gen.py --out FILE --value-mb 14 --rows 20 [--base fixtures/openwebui/webui.db]
"""

import argparse
import json
import random
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
WORDS = (
    "the of and to in is that for it as with was on be by this are or from at an have not which "
    "database postgres sqlite migration chat model answer question table index value memory row "
    "Ünïcödé 数据库 عمل 📜 café naïve résumé"
).split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."


def chat_document(rng: random.Random, chat_id: str, target_bytes: int) -> str:
    messages = {}
    listed = []
    parent = None
    size = 0
    n = 0
    while size < target_bytes // 2:
        message_id = f"{chat_id}-m{n:06d}"
        content = " ".join(sentence(rng) for _ in range(rng.randint(20, 60)))
        message = {
            "id": message_id,
            "parentId": parent,
            "childrenIds": [],
            "role": "user" if n % 2 == 0 else "assistant",
            "content": content,
            "timestamp": 1_760_000_000 + n,
            "models": ["llama3.1:8b"],
        }
        if parent is not None:
            messages[parent]["childrenIds"].append(message_id)
        messages[message_id] = message
        listed.append(message)
        parent = message_id
        size += len(content.encode()) + 200
        n += 1
    return json.dumps(
        {
            "id": chat_id,
            "title": f"Long conversation {chat_id}",
            "models": ["llama3.1:8b"],
            "params": {},
            "history": {"messages": messages, "currentId": parent},
            "messages": listed,
            "tags": [],
            "timestamp": 1_760_000_000_000,
        },
        ensure_ascii=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--value-mb", type=float, required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--base", type=Path, default=ROOT / "fixtures/openwebui/webui.db")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    args.out.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{args.base}?mode=ro", uri=True)
    out = sqlite3.connect(args.out)
    source.backup(out)
    source.close()
    rng = random.Random(args.seed)
    (user_id,) = out.execute("SELECT id FROM user ORDER BY created_at LIMIT 1").fetchone()
    target = int(args.value_mb * 1024 * 1024)
    for i in range(args.rows):
        chat_id = f"bench-{args.value_mb:g}mb-{i:04d}"
        document = chat_document(rng, chat_id, target)
        out.execute(
            "INSERT INTO chat (id, user_id, title, created_at, updated_at, archived, chat, pinned, meta) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, 0, '{}')",
            (chat_id, user_id, f"Long conversation {i}", 1_760_000_000 + i, 1_760_000_000 + i, document),
        )
        out.commit()
    out.execute("VACUUM")
    out.close()
    (largest,) = sqlite3.connect(args.out).execute("SELECT max(length(CAST(chat AS BLOB))) FROM chat").fetchone()
    print(f"{args.out}: {args.out.stat().st_size / 1048576:.0f} MB, largest chat {largest / 1048576:.1f} MB")


if __name__ == "__main__":
    main()
