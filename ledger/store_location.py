"""Open the park's store from where it is: a path or ``sqlite:///path`` (SQLite, one writer) or a
``postgresql://`` URL (PostgreSQL, several ledger workers). The one place that knows both backends,
so neither backend module imports the other."""

from .errors import BadStoreUrl
from .store import Store


def open_store(location, **options) -> Store:
    """The store at ``location``: a path or ``sqlite:///path`` (the default, one writer), or a
    ``postgresql://`` URL (several ledger workers; needs the ``postgresql`` extra)."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # only a PostgreSQL park needs psycopg
        return PostgresStore(text, **options)
    if text.startswith("sqlite://"):
        if not text.startswith("sqlite:///") or len(text) == len("sqlite:///"):
            raise BadStoreUrl(f"{text[:80]}: a SQLite store is sqlite:///<path> (sqlite:////abs/path for an absolute one)")
        text = text[len("sqlite:///"):]
    elif "://" in text:
        raise BadStoreUrl(f"{text[:80]}: not a store URL (sqlite:///<path> or postgresql://...)")
    return Store(text, **{k: v for k, v in options.items() if k == "busy_timeout_ms"})
