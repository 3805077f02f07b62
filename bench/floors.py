"""Floors the benches compare against, measured in the same run."""

import os
import sqlite3
import statistics
import time


def fsync_commit_s(directory: str, count: int = 200, row_bytes: int = 400) -> float:
    """Median seconds of one fsync'd SQLite commit (WAL, synchronous=FULL) of one small row."""
    path = os.path.join(directory, "floor.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (x BLOB)")
    times = []
    for _ in range(count):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (os.urandom(row_bytes),))
        db.execute("COMMIT")
        times.append(time.perf_counter() - started)
    db.close()
    return statistics.median(times)
