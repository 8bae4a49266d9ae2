"""Fast, deterministic seeding of many users for benchmarks (no bcrypt per row).

PostgreSQL gets COPY, SQLite gets executemany in one transaction. Every seeded
user shares one precomputed bcrypt hash of SEED_PASSWORD, has the `user` role
and a profile row, and a created_at spread over three years.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SEED_PASSWORD = "Bench-Passw0rd!"
FIRST = [
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "christopher",
    "lisa",
    "daniel",
    "nancy",
    "matthew",
    "betty",
    "anthony",
    "margaret",
    "mark",
    "sandra",
    "donald",
    "ashley",
    "steven",
    "kimberly",
    "paul",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kenneth",
    "carol",
    "kevin",
    "amanda",
    "brian",
    "dorothy",
    "george",
    "melissa",
    "timothy",
    "deborah",
    "ronald",
    "stephanie",
    "edward",
    "rebecca",
    "jason",
    "sharon",
    "jeffrey",
    "laura",
    "ryan",
    "cynthia",
    "jacob",
    "kathleen",
    "gary",
    "amy",
    "nicholas",
    "angela",
    "eric",
    "shirley",
    "jonathan",
    "anna",
    "stephen",
    "brenda",
    "larry",
    "pamela",
    "justin",
    "emma",
    "scott",
    "nicole",
    "brandon",
    "helen",
    "benjamin",
    "samantha",
    "samuel",
    "katherine",
    "ada",
    "alan",
    "grace",
    "linus",
    "margaret",
    "ken",
    "dennis",
    "barbara",
    "guido",
    "bjarne",
]
LAST = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "gomez",
    "phillips",
    "evans",
    "turner",
    "diaz",
    "parker",
    "cruz",
    "edwards",
    "collins",
    "reyes",
    "stewart",
    "morris",
    "morales",
    "murphy",
    "cook",
    "rogers",
    "gutierrez",
    "ortiz",
    "morgan",
    "cooper",
    "peterson",
    "bailey",
    "reed",
    "kelly",
    "howard",
    "ramos",
    "kim",
    "cox",
    "ward",
    "richardson",
    "watson",
    "brooks",
    "chavez",
    "wood",
    "james",
    "bennett",
    "gray",
    "mendoza",
    "ruiz",
    "hughes",
    "price",
    "alvarez",
    "castillo",
    "sanders",
    "patel",
    "myers",
    "long",
    "ross",
    "foster",
    "jimenez",
    "lovelace",
    "hopper",
    "torvalds",
    "ritchie",
    "thompson",
    "kernighan",
    "stroustrup",
    "rossum",
    "goldsmith",
]
COLUMNS = (
    "id",
    "email",
    "username",
    "password_hash",
    "first_name",
    "last_name",
    "is_active",
    "email_verified_at",
    "created_at",
    "updated_at",
    "search_text",
)


def seed_hash() -> str:
    return bcrypt.hashpw(SEED_PASSWORD.encode(), bcrypt.gensalt(4)).decode()


def rows(n: int, start: int = 0, seed: int = 42):
    """Yield user tuples in COLUMNS order."""
    rnd = random.Random(seed + start)
    pw = seed_hash()
    origin = datetime(2023, 1, 1, tzinfo=UTC)
    span = 3 * 365 * 24 * 3600
    for i in range(start, start + n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        email = f"{first}.{last}.{i}@example.com"
        username = f"{first[:20]}{last[:20]}{i}"
        created = origin + timedelta(seconds=rnd.randrange(span), microseconds=rnd.randrange(10**6))
        search = f"{email} {username} {first} {last}"
        yield (
            uuid.UUID(int=rnd.getrandbits(128), version=4),
            email,
            username,
            pw,
            first.title(),
            last.title(),
            True,
            created if i % 3 else None,
            created,
            created,
            search,
        )


def seed_postgres(url: str, n: int, batch: int = 100_000) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE users SET (autovacuum_enabled = false)")
        # Building the trigram index once after the load is far faster than
        # maintaining it row by row during COPY.
        cur.execute("DROP INDEX IF EXISTS ix_users_search_text_trgm")
        cur.execute("DROP INDEX IF EXISTS ix_user_search_search_text_trgm")
        done = 0
        while done < n:
            chunk = list(rows(min(batch, n - done), start=done))
            with cur.copy(f"COPY users ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for r in chunk:
                    copy.write_row(r)
            with cur.copy("COPY user_profiles (user_id, timezone, locale) FROM STDIN") as copy:
                for r in chunk:
                    copy.write_row((r[0], "UTC", "en"))
            with cur.copy(
                "COPY user_roles (user_id, role_name, granted_by, granted_at) FROM STDIN"
            ) as copy:
                for r in chunk:
                    copy.write_row((r[0], "user", "bench", r[8]))
            done += len(chunk)
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute(
            "CREATE INDEX ix_users_search_text_trgm ON users USING gin (search_text gin_trgm_ops)"
        )
        cur.execute(
            "CREATE INDEX ix_user_search_search_text_trgm "
            "ON user_search USING gin (search_text gin_trgm_ops)"
        )
        cur.execute("ALTER TABLE users RESET (autovacuum_enabled)")
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE users")
        cur.execute("VACUUM ANALYZE user_roles")
        cur.execute("VACUUM ANALYZE user_profiles")
        cur.execute("VACUUM ANALYZE user_search")


def seed_sqlite(url: str, n: int, batch: int = 50_000) -> None:
    import sqlite3

    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    fmt = "%Y-%m-%d %H:%M:%S.%f"

    def conv(r):
        return (
            r[0].hex,
            *r[1:7],
            r[7].strftime(fmt) if r[7] else None,
            r[8].strftime(fmt),
            r[9].strftime(fmt),
            r[10],
        )

    cols, marks = ", ".join(COLUMNS), ", ".join("?" * len(COLUMNS))
    done = 0
    with conn:
        while done < n:
            chunk = [conv(r) for r in rows(min(batch, n - done), start=done)]
            conn.executemany(
                f"INSERT INTO users ({cols}) VALUES ({marks})",
                chunk,
            )
            conn.executemany(
                "INSERT INTO user_profiles (user_id, timezone, locale) VALUES (?, 'UTC', 'en')",
                [(r[0],) for r in chunk],
            )
            conn.executemany(
                "INSERT INTO user_roles (user_id, role_name, granted_by, granted_at) "
                "VALUES (?, 'user', 'bench', ?)",
                [(r[0], r[8]) for r in chunk],
            )
            done += len(chunk)
    conn.execute("ANALYZE")
    conn.close()


def user_count(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    engine.dispose()
    return count


def migrated(url: str) -> None:
    from usermgmt.core import migrate
    from usermgmt.core.db import Database

    db = Database(url)
    migrate.upgrade(db)
    db.dispose()


# A server sized like a production one rather than PostgreSQL's defaults: with
# the default 128 MB of shared buffers a million users (~270 MB of table, ~110 MB
# of search copy, their indexes) are read through the kernel's page cache on
# every search. 2 GB is a modest share of these 24 GiB machines.
BENCH_SERVER_SETTINGS = {"shared_buffers": "2GB", "effective_cache_size": "8GB"}


@contextlib.contextmanager
def postgres_database(name: str = "bench"):
    """A PostgreSQL database URL: USERMGMT_BENCH_POSTGRES_URL, or a throwaway cluster."""
    external = os.environ.get("USERMGMT_BENCH_POSTGRES_URL")
    if external:
        yield external
        return
    import pgserver

    cluster = pgserver.PostgresCluster(settings=BENCH_SERVER_SETTINGS).start()
    try:
        pgserver.create_database(cluster.admin_url, name)
        yield pgserver.url_for(cluster.admin_url, name)
    finally:
        cluster.stop()


def quiet_stdout():
    return contextlib.redirect_stdout(io.StringIO())
