"""SQLite's SQL, as the store writes it, made PostgreSQL's: one place, mechanical, tested.

The ledger's statements and migrations are written once, in SQLite's dialect (the default store).
A PostgreSQL store runs them through here — each distinct statement once, the result cached by its
text — so a new store method or migration works on both without its author knowing this module.

What is translated (and nothing else; anything this cannot translate raises DialectError naming it):

- parameters: ``?`` -> ``%s``, ``:name`` -> ``%(name)s``; a literal ``%`` is doubled when the
  statement carries parameters (psycopg reads ``%`` as the start of one)
- ``INSERT OR IGNORE`` -> ``INSERT ... ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` ->
  ``INSERT ... ON CONFLICT (primary key) DO UPDATE SET`` every other column (the table's columns come
  from the database's own catalog)
- inside ``ON CONFLICT ... DO UPDATE``: bare column names on the right of ``=`` and in its ``WHERE``
  are qualified with the table (PostgreSQL finds ``count = count + 1`` ambiguous with ``excluded``)
- SQLite's hidden ``rowid`` (written order) -> ``ctid`` (for append-only tables, the same order)
- a blob literal ``x'00ff'`` -> ``'\\x00ff'::bytea``
- scalar ``MAX(a, b)`` / ``MIN(a, b)`` -> ``GREATEST`` / ``LEAST``; ``GLOB`` -> the operator ``#~~#``
  PREAMBLE creates: the glob made an anchored regular expression (``*`` any text, ``?`` one
  character, ``[0-9]`` a class), since the pattern is usually a parameter the translation cannot see
- ``BEGIN IMMEDIATE`` (a writer) -> ``BEGIN``; a plain ``BEGIN`` (a reader that wants one snapshot
  for several statements, as SQLite's deferred transaction gives) -> ``BEGIN ISOLATION LEVEL
  REPEATABLE READ``
- an ``INSERT`` into a table with a rowid key and no ``RETURNING`` gains ``RETURNING <key>``, so the
  cursor's ``lastrowid`` works as SQLite's does
- DDL: ``INTEGER`` -> ``BIGINT`` (times are milliseconds), ``BLOB`` -> ``BYTEA``, ``REAL`` -> ``DOUBLE
  PRECISION``; ``INTEGER PRIMARY KEY`` (SQLite's rowid: NULL means "the next one") -> a ``BIGINT`` key
  filled from a sequence by a trigger when NULL; ``AUTOINCREMENT`` dropped; SQLite's
  ``CREATE TRIGGER ... BEGIN SELECT RAISE(ABORT, 'text'); END`` -> a PL/pgSQL function raising it.

- functions SQLite has and PostgreSQL lacks (``instr``, ``sum`` of comparisons) are created by
  PREAMBLE in the store's schema
- booleans: SQLite has none, so the ledger's flags are INTEGER columns. An integer column used
  bare as a condition (``WHERE is_active``, ``AND is_flagged``, ``WHEN o.is_member THEN``) becomes
  ``(is_active <> 0)``; a sum of comparisons (``SUM(kind = 'void')``) works through the
  ``sum(boolean)`` aggregate PREAMBLE creates. A flag inside a larger expression (``NOT (a AND b)``
  with ``a`` an integer) is not found: write ``a <> 0`` there (true in both).
"""

from dataclasses import dataclass, field
import re


class DialectError(ValueError):
    """A statement uses SQLite that this module does not translate."""


# Created in the store's schema before the first migration: what SQLite has and PostgreSQL lacks.
PREAMBLE = (
    """CREATE OR REPLACE FUNCTION fieldpos_sum_bool(state BIGINT, value BOOLEAN) RETURNS BIGINT
       LANGUAGE sql IMMUTABLE AS $$ SELECT state + CASE WHEN value THEN 1 ELSE 0 END $$""",
    """DO $$ BEGIN
         CREATE AGGREGATE sum(BOOLEAN) (SFUNC = fieldpos_sum_bool, STYPE = BIGINT, INITCOND = '0');
       EXCEPTION WHEN duplicate_function THEN NULL; END $$""",
    # SQLite's GLOB, case-sensitive and anchored: regex metacharacters but * ? [ ] ^ taken literally.
    """CREATE OR REPLACE FUNCTION fieldpos_glob(value TEXT, pattern TEXT) RETURNS BOOLEAN
       LANGUAGE sql IMMUTABLE AS $$ SELECT value ~ ('^' || replace(replace(
         regexp_replace(pattern, '([.+(){}|$\\\\])', '\\\\\\1', 'g'), '*', '.*'), '?', '.') || '$') $$""",
    """DO $$ BEGIN
         CREATE OPERATOR #~~# (LEFTARG = TEXT, RIGHTARG = TEXT, FUNCTION = fieldpos_glob);
       EXCEPTION WHEN duplicate_function OR duplicate_object THEN NULL; END $$""",
    """CREATE OR REPLACE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
       LANGUAGE sql IMMUTABLE AS $$ SELECT strpos(haystack, needle) $$""",
    # SQLite shifts any integer by any integer; PostgreSQL wants an INTEGER on the right.
    """CREATE OR REPLACE FUNCTION fieldpos_shift_left(value BIGINT, bits BIGINT) RETURNS BIGINT
       LANGUAGE sql IMMUTABLE AS $$ SELECT value << bits::INTEGER $$""",
    """DO $$ BEGIN
         CREATE OPERATOR << (LEFTARG = BIGINT, RIGHTARG = BIGINT, FUNCTION = fieldpos_shift_left);
       EXCEPTION WHEN duplicate_function OR duplicate_object THEN NULL; END $$""",
    # A comparison stored in an INTEGER column (``INSERT ... SELECT o.late_fen > 0``) is 1 or 0 in
    # SQLite. Casts belong to the database, not a schema: the function lives in public, and a role
    # that may not create casts goes without (such a statement then fails loudly, never silently).
    """CREATE OR REPLACE FUNCTION public.fieldpos_bool_to_bigint(value BOOLEAN) RETURNS BIGINT
       LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN value THEN 1 ELSE 0 END $$""",
    """DO $$ BEGIN
         CREATE CAST (BOOLEAN AS BIGINT) WITH FUNCTION public.fieldpos_bool_to_bigint(BOOLEAN) AS ASSIGNMENT;
       EXCEPTION WHEN duplicate_object OR insufficient_privilege THEN NULL; END $$""",
)


@dataclass
class Table:
    columns: list[str]
    primary_key: list[str]
    rowid: str | None = None  # the INTEGER PRIMARY KEY column filled from a sequence


@dataclass
class Catalog:
    """Tables as the PostgreSQL database has them (read by the store after migrating)."""
    tables: dict[str, Table] = field(default_factory=dict)
    integer_columns: set[str] = field(default_factory=set)  # names of BIGINT columns, any table


_TOKEN = re.compile(r"""
    (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<comment>--[^\n]*)
  | (?P<space>\s+)
  | (?P<param>\?|:[A-Za-z_][A-Za-z0-9_]*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>\d+(?:\.\d*)?)
  | (?P<op>::|<>|<=|>=|!=|\|\||.)
""", re.VERBOSE | re.DOTALL)

_KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "null", "is", "in", "case", "when", "then", "else", "end",
    "excluded", "true", "false", "like", "between", "exists", "as", "distinct", "returning", "set", "do",
    "update", "nothing", "conflict", "on", "values",
}


def _tokens(sql: str) -> list[tuple[str, str]]:
    out = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        text = match.group()
        if kind == "param" and text.startswith(":") and out and out[-1][1] == ":":
            kind = "word"  # never after a colon: that is PostgreSQL's cast ``::``, not a name
        if kind == "string" and out and out[-1][0] == "word" and out[-1][1] in ("x", "X"):
            out[-1] = ("blob", out[-1][1] + text)  # SQLite's blob literal x'00ff'
            continue
        out.append((kind, text))
    return out


def _significant(tokens, start):
    """Index of the next token at or after ``start`` that is not space or a comment."""
    index = start
    while index < len(tokens) and tokens[index][0] in ("space", "comment"):
        index += 1
    return index


def _matching_paren(tokens, start) -> int:
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index][1] == "(":
            depth += 1
        elif tokens[index][1] == ")":
            depth -= 1
            if depth == 0:
                return index
    raise DialectError("unbalanced parentheses")


def _upper(token) -> str:
    return token[1].upper() if token[0] == "word" else token[1]


def translate(sql: str, catalog: Catalog, *, with_params: bool = True) -> tuple[str, str | None]:
    """A SQLite statement as PostgreSQL's, and the rowid column it now returns (for lastrowid)."""
    tokens = _tokens(sql)
    words = [_upper(t) for t in tokens if t[0] == "word"]
    if words[:2] == ["BEGIN", "IMMEDIATE"] and len(words) == 2:
        return "BEGIN", None
    if words == ["BEGIN"]:
        return "BEGIN ISOLATION LEVEL REPEATABLE READ", None
    conflict_clause = None
    table = None
    first = _significant(tokens, 0)
    if first < len(tokens) and _upper(tokens[first]) == "INSERT":
        after = _significant(tokens, first + 1)
        if _upper(tokens[after]) == "OR":
            mode = _upper(tokens[_significant(tokens, after + 1)])
            if mode not in ("IGNORE", "REPLACE"):
                raise DialectError(f"INSERT OR {mode} is not translated")
            into = _significant(tokens, _significant(tokens, after + 1) + 1)
            del tokens[after:into]  # "OR IGNORE " -> nothing
            conflict_clause = mode
        name_at = _significant(tokens, _significant(tokens, first + 1) + 1)  # after INTO
        table = tokens[name_at][1].lower()
    tokens = _scalar_extremes(tokens)
    tokens = _subquery_aliases(tokens)
    tokens = _integer_conditions(tokens, catalog)
    tokens = _qualify_upsert(tokens, table, catalog)
    text = "".join(_render(t, with_params) for t in tokens).strip().rstrip(";")
    returning = None
    if table is not None:
        info = catalog.tables.get(table)
        if conflict_clause == "IGNORE":
            text = _before_returning(text, " ON CONFLICT DO NOTHING")
        elif conflict_clause == "REPLACE":
            if info is None:
                raise DialectError(f"INSERT OR REPLACE into {table}, which the catalog does not know")
            text = _before_returning(text, _replace_clause(sql, tokens, info))
        if info is not None and info.rowid and not re.search(r"\bRETURNING\b", text, re.IGNORECASE):
            text += f" RETURNING {info.rowid}"
            returning = info.rowid
    return text, returning


def _render(token, with_params: bool) -> str:
    kind, text = token
    if kind == "blob":
        return f"'\\x{text[2:-1]}'::bytea"
    if kind == "param":
        return "%s" if text == "?" else f"%({text[1:]})s"
    if kind == "word" and text.upper() == "GLOB":
        return "#~~#"
    if kind == "word" and text.lower() == "rowid":
        # SQLite's hidden row number, used for "in the order written": a row's physical place,
        # the same order for the ledger's append-only tables (postings are never updated or deleted).
        return "ctid"
    if with_params and "%" in text:
        return text.replace("%", "%%")
    return text


def _before_returning(text: str, clause: str) -> str:
    match = re.search(r"\sRETURNING\s", text, re.IGNORECASE)
    if match is None:
        return text + clause
    return text[:match.start()] + clause + text[match.start():]


def _replace_clause(sql: str, tokens, info: Table) -> str:
    columns = info.columns
    listed = re.match(r"\s*INSERT\s+OR\s+REPLACE\s+INTO\s+\w+\s*\(([^)]*)\)", sql, re.IGNORECASE)
    if listed:
        columns = [c.strip().lower() for c in listed.group(1).split(",")]
    others = [c for c in columns if c not in info.primary_key]
    keys = ", ".join(info.primary_key)
    if not others:
        return f" ON CONFLICT ({keys}) DO NOTHING"
    return f" ON CONFLICT ({keys}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in others)


_NOT_AN_ALIAS = {"WHERE", "GROUP", "ORDER", "LIMIT", "JOIN", "LEFT", "INNER", "CROSS", "ON", "UNION", "HAVING",
                 "RETURNING", "FULL", "RIGHT", "NATURAL", "USING", "WINDOW", "EXCEPT", "INTERSECT"}


def _subquery_aliases(tokens):
    """``FROM (SELECT ...)`` with no name: SQLite allows it, PostgreSQL before 16 does not."""
    out = list(tokens)
    count = 0
    index = 0
    while index < len(out):
        if out[index][0] == "word" and out[index][1].upper() in ("FROM", "JOIN"):
            open_at = _significant(out, index + 1)
            if open_at < len(out) and out[open_at][1] == "(":
                inner = _significant(out, open_at + 1)
                if inner < len(out) and _upper(out[inner]) in ("SELECT", "WITH", "VALUES"):
                    close_at = _matching_paren(out, open_at)
                    after = _significant(out, close_at + 1)
                    if after >= len(out) or out[after][0] != "word" or _upper(out[after]) in _NOT_AN_ALIAS:
                        count += 1
                        out.insert(close_at + 1, ("word", f" AS fieldpos_subquery_{count}"))
        index += 1
    return out


_BEFORE_CONDITION = {"WHERE", "AND", "OR", "WHEN", "NOT", "ON", "HAVING"}
_AFTER_CONDITION = {"AND", "OR", "THEN", "ORDER", "GROUP", "LIMIT", "RETURNING", ")", ";", "HAVING", "UNION"}


def _integer_conditions(tokens, catalog: Catalog):
    """``WHERE is_active`` -> ``WHERE (is_active <> 0)``: an integer column standing alone as a condition."""
    if not catalog.integer_columns:
        return tokens
    out = list(tokens)
    index = 0
    while index < len(out):
        kind, text = out[index]
        if kind != "word" or text.lower() not in catalog.integer_columns:
            index += 1
            continue
        start = index
        if index >= 2 and out[index - 1][1] == "." and out[index - 2][0] == "word":
            start = index - 2  # a qualified name: o.is_member
        before = start - 1
        while before >= 0 and out[before][0] in ("space", "comment"):
            before -= 1
        after = _significant(out, index + 1)
        next_text = _upper(out[after]) if after < len(out) else ";"
        if (before >= 0 and _upper(out[before]) in _BEFORE_CONDITION and next_text in _AFTER_CONDITION
                and not _ends_between(out, before)):
            name = "".join(t[1] for t in out[start:index + 1])
            out[start:index + 1] = [("word", f"({name} <> 0)")]
            index = start + 1
            continue
        index += 1
    return out


def _ends_between(tokens, and_at) -> bool:
    """Is the AND at ``and_at`` the one of ``x BETWEEN a AND b`` (so ``b`` is a value, not a condition)?"""
    if _upper(tokens[and_at]) != "AND":
        return False
    depth = 0
    for index in range(and_at - 1, -1, -1):
        text = _upper(tokens[index])
        depth += text == ")"
        depth -= text == "("
        if depth < 0:
            return False
        if depth == 0 and text in ("BETWEEN", "AND", "OR", "WHERE", "WHEN", "ON", "HAVING"):
            return text == "BETWEEN"
    return False


def _scalar_extremes(tokens):
    """MAX(a, b) / MIN(a, b) with two or more arguments: SQLite's scalar forms."""
    out = list(tokens)
    for index, token in enumerate(out):
        if token[0] == "word" and token[1].upper() in ("MAX", "MIN"):
            open_at = _significant(out, index + 1)
            if open_at >= len(out) or out[open_at][1] != "(":
                continue
            close_at = _matching_paren(out, open_at)
            depth = 0
            for inner in out[open_at:close_at]:
                depth += inner[1] == "("
                depth -= inner[1] == ")"
                if inner[1] == "," and depth == 1:
                    out[index] = ("word", "GREATEST" if token[1].upper() == "MAX" else "LEAST")
                    break
    return out


def _qualify_upsert(tokens, table, catalog: Catalog):
    """Inside ON CONFLICT ... DO UPDATE SET a = <expr>, ... [WHERE <expr>]: qualify the table's bare
    column names in the expressions (never the assigned column on the left of ``=``)."""
    if table is None or table not in catalog.tables:
        return tokens
    columns = set(catalog.tables[table].columns)
    upper = [_upper(t) for t in tokens]
    try:
        start = next(i for i in range(len(tokens)) if upper[i] == "SET" and "UPDATE" in upper[max(0, i - 4):i]
                     and "DO" in upper[max(0, i - 6):i])
    except StopIteration:
        return tokens
    out = list(tokens)
    depth = 0
    expecting_target = True
    for index in range(start + 1, len(out)):
        kind, text = out[index]
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0 and text == ",":
            expecting_target = True
            continue
        if kind == "word" and text.upper() == "RETURNING" and depth == 0:
            break
        if kind == "word" and text.upper() == "WHERE" and depth == 0:
            expecting_target = False
            continue
        if kind != "word":
            if text == "=" and expecting_target:
                expecting_target = False
            continue
        if expecting_target:
            continue  # the column being set: PostgreSQL refuses it qualified
        previous = out[index - 1][1] if index else ""
        following = out[_significant(out, index + 1)][1] if _significant(out, index + 1) < len(out) else ""
        if (text.lower() in columns and text.lower() not in _KEYWORDS and previous != "." and following not in (".", "(")):
            out[index] = ("word", f"{table}.{text}")
    return out


# ------------------------------------------------------------------------------------------------ DDL
_TRIGGER = re.compile(
    r"CREATE\s+TRIGGER\s+(\w+)\s+(BEFORE|AFTER)\s+(UPDATE|DELETE|INSERT)\s+ON\s+(\w+)\s+"
    r"BEGIN\s+SELECT\s+RAISE\s*\(\s*ABORT\s*,\s*'((?:[^']|'')*)'\s*\)\s*;\s*END\s*;",
    re.IGNORECASE)
_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(\w+)\s*\(", re.IGNORECASE)
_ROWID_COLUMN = re.compile(r"^\s*(\w+)\s+INTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.IGNORECASE | re.MULTILINE)
_TYPES = ((re.compile(r"\bINTEGER\b", re.IGNORECASE), "BIGINT"), (re.compile(r"\bBLOB\b", re.IGNORECASE), "BYTEA"),
          (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"))


def translate_script(script: str, catalog: Catalog) -> list[str]:
    """A migration (several SQLite statements) as PostgreSQL statements, in order. ``catalog`` is the
    database's tables before the script; DML inside the script is translated as ``translate`` does."""
    statements: list[str] = []
    text = "".join(t[1] for t in _tokens(script) if t[0] != "comment")
    pieces = []
    position = 0
    for match in _TRIGGER.finditer(text):
        pieces.append(("sql", text[position:match.start()]))
        pieces.append(("trigger", match))
        position = match.end()
    pieces.append(("sql", text[position:]))
    for kind, piece in pieces:
        if kind == "trigger":
            statements.extend(_trigger(*piece.groups()))
            continue
        for statement in _split(piece):
            statements.extend(_statement(statement, catalog))
    return statements


def _split(script: str) -> list[str]:
    out, current = [], []
    for kind, text in _tokens(script):
        if kind == "op" and text == ";":
            out.append("".join(current))
            current = []
        else:
            current.append(text)
    out.append("".join(current))
    return [s.strip() for s in out if s.strip()]


def _trigger(name, timing, event, table, message) -> list[str]:
    return [
        f"""CREATE OR REPLACE FUNCTION {name}_raise() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation'; END $$""",
        f"CREATE TRIGGER {name} {timing} {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}_raise()",
    ]


def _statement(statement: str, catalog: Catalog) -> list[str]:
    head = statement.lstrip()[:40].upper()
    if re.match(r"CREATE\s+TRIGGER", head):
        raise DialectError(f"trigger not translated (only BEGIN SELECT RAISE(ABORT, '...'); END): {statement[:80]}")
    if head.startswith("CREATE TABLE") or head.startswith("ALTER TABLE"):
        return _table_ddl(statement, catalog)
    if head.startswith(("CREATE INDEX", "CREATE UNIQUE INDEX", "DROP ")):
        return [statement]
    text, _ = translate(statement, catalog, with_params=False)
    return [re.sub(r"\s+RETURNING\s+\w+$", "", text) if head.startswith("INSERT") else text]


def _table_ddl(statement: str, catalog: Catalog) -> list[str]:
    created = _CREATE_TABLE.match(statement.lstrip())
    extra = []
    if created:
        table = created.group(1).lower()
        rowid = _ROWID_COLUMN.search(statement)
        if rowid:
            column = rowid.group(1).lower()
            statement = statement[:rowid.start()] + rowid.group(0).replace(rowid.group(2) or "\0", "") + statement[rowid.end():]
            sequence = f"{table}_{column}_rowid"
            extra = [
                f"CREATE SEQUENCE {sequence} OWNED BY {table}.{column}",
                f"""CREATE OR REPLACE FUNCTION {sequence}_fill() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.{column} IS NULL THEN NEW.{column} := nextval('{sequence}'); END IF; RETURN NEW; END $$""",
                f"CREATE TRIGGER {sequence}_fill BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {sequence}_fill()",
            ]
    for pattern, replacement in _TYPES:
        statement = pattern.sub(replacement, statement)
    return [statement, *extra]
