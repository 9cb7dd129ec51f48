# SPDX-License-Identifier: Apache-2.0
"""Static checks that docs/architecture.md says who owns what, as the code does.

- The topic matrix ("## Topics") lists exactly the topics `cwpp-admin topics create`
  creates: the topic table of libs/kafka that tools/cwpp-admin/main.c walks (and, when it
  is built, what `cwpp-admin topics list` prints).
- The table/writer matrix ("## Database tables and their writers") lists exactly the
  INSERT, UPDATE (with its columns) and DELETE rights that schemas/sql/*.sql grant, table by
  table and role by role, and every table the migrations create.

They need no broker or database: the files are read as text. A failure names what is
missing from which side; fix the document or the code, whichever is wrong.

Run: /usr/bin/python3 -m pytest tests/static/test_ownership.py"""
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CWPP_BIN_DIR", REPO / "build" / "bin"))
DOC = REPO / "docs" / "architecture.md"
ADMIN_SRC = REPO / "tools" / "cwpp-admin" / "main.c"
SQL_DIR = REPO / "schemas" / "sql"
PREFIX = "cwpp."
WRITE_RIGHTS = ("INSERT", "UPDATE", "DELETE")
# Who may appear in the producer and consumer columns of the topic matrix.
PARTIES = {"ingest", "whitelist-filter", "correlator", "responder", "exporter", "enforcer",
           "cwpp-api", "upstream", "downstream"}


# ------------------------------------------------------------------ the document

def doc_section(title):
    """The text of the `## title` section of docs/architecture.md."""
    text = DOC.read_text()
    m = re.search(r"^## " + re.escape(title) + r"[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"docs/architecture.md has no section '## {title}'"
    return m.group(1)


def md_table(section, first_header):
    """The rows (lists of stripped cells) of the markdown table in section whose first
    header cell is first_header."""
    lines = section.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0] == first_header:
            rows = []
            for row in lines[i + 2:]:
                if not row.lstrip().startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table with first column '{first_header}' in the section")


def ticked(cell):
    """`name` -> name."""
    m = re.fullmatch(r"`([^`]+)`", cell)
    assert m, f"expected a `name` in backticks, not {cell!r}"
    return m.group(1)


def doc_topics():
    """{topic: (producers, consumers)} of the topic matrix."""
    out = {}
    for row in md_table(doc_section("Topics"), "topic"):
        topic = ticked(row[0])
        assert topic not in out, f"topic {topic} listed twice"
        out[topic] = tuple({p.strip() for p in cell.split(",") if p.strip()}
                           for cell in row[1:3])
    return out


def parse_rights(cell):
    """'`role`: INSERT, UPDATE (a, b); `other`: DELETE' -> {(role, right, columns)}."""
    out = set()
    for part in (p.strip() for p in cell.split(";")):
        m = re.fullmatch(r"`(\w+)`:\s*(.+)", part)
        assert m, f"a writer is written `role`: RIGHT, ... - not {part!r}"
        role, rights = m.groups()
        for r in re.finditer(r"(\w+)(?:\s*\(([^)]*)\))?\s*(?:,|$)", rights):
            right = r.group(1).upper()
            assert right in WRITE_RIGHTS, f"{role}: {right} is not a write right"
            cols = frozenset(c.strip() for c in r.group(2).split(",")) if r.group(2) else None
            out.add((role, right, cols))
    return out


def doc_writers():
    """{table: {(role, right, columns or None)}} of the table/writer matrix."""
    out = {}
    for row in md_table(doc_section("Database tables and their writers"), "table"):
        table = ticked(row[0])
        assert table not in out, f"table {table} listed twice"
        out[table] = parse_rights(row[2])
    return out


# ------------------------------------------------------------------ the code

def admin_topics():
    """The topic names (default prefix) cwpp-admin creates: it walks the libs/kafka topic
    table (cwpp_topic_name over 0..CWPP_TOPIC__COUNT), so that table's suffixes."""
    admin = ADMIN_SRC.read_text()
    assert "cwpp_kafka_create_topics" in admin and "CWPP_TOPIC__COUNT" in admin, \
        "tools/cwpp-admin/main.c no longer creates the libs/kafka topic table: update this test"
    entries = []
    for p in sorted((REPO / "libs" / "kafka").glob("*.c")):
        entries += re.findall(r"\[\s*(CWPP_TOPIC_\w+)\s*\]\s*=\s*\{\s*\"([^\"]+)\"",
                              p.read_text())
    header = (REPO / "libs" / "kafka" / "cwpp_kafka.h").read_text()
    ids = [i for i in re.findall(r"\b(CWPP_TOPIC_[A-Z_]+)\b\s*(?:=\s*0\s*)?,", header)
           if i != "CWPP_TOPIC__COUNT"]
    assert entries, "no topic table ([CWPP_TOPIC_X] = {\"suffix\", ...}) found in libs/kafka"
    assert sorted(i for i, _ in entries) == sorted(ids), \
        "the libs/kafka topic table and the topic ids of cwpp_kafka.h differ"
    return {PREFIX + suffix for _, suffix in entries}


def strip_sql_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"--[^\n]*", " ", text)


def split_top(s, sep=","):
    """s split at sep outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [x.strip() for x in out if x.strip()]


def sql_statements():
    """Every statement of schemas/sql/*.sql in migration order, comments removed."""
    for p in sorted(SQL_DIR.glob("*.sql")):
        for stmt in strip_sql_comments(p.read_text()).split(";"):
            stmt = " ".join(stmt.split())
            if stmt:
                yield stmt


def sql_writers():
    """{table: {(role, right, columns or None)}} from the GRANTs and REVOKEs of the
    migrations (write rights only; object privileges on tables and views)."""
    out = {}
    gr = re.compile(r"^(GRANT|REVOKE)\s+(.+?)\s+ON\s+(?:TABLE\s+)?(.+?)\s+(TO|FROM)\s+(.+)$",
                    re.I)
    for stmt in sql_statements():
        m = gr.match(stmt)
        if not m or re.match(r"(?i)(SCHEMA|SEQUENCE|FUNCTION|ALL\s+)", m.group(3)):
            continue
        verb, privs, tables, _, roles = m.groups()
        roles = [r.strip() for r in roles.split(",")]
        for priv in split_top(privs):
            pm = re.fullmatch(r"(\w+)(?:\s*\((.*)\))?", priv)
            assert pm, f"cannot read the privilege {priv!r} in: {stmt}"
            right = pm.group(1).upper()
            assert right != "ALL", f"GRANT ALL is not least privilege: {stmt}"
            if right not in WRITE_RIGHTS:
                continue
            cols = frozenset(c.strip() for c in pm.group(2).split(",")) if pm.group(2) else None
            for table in (t.strip() for t in tables.split(",")):
                table = table.split(".")[-1]
                for role in roles:
                    key = (role, right, cols)
                    if verb.upper() == "GRANT":
                        out.setdefault(table, set()).add(key)
                    else:
                        out.get(table, set()).discard(key)
    return {t: s for t, s in out.items() if s}


def sql_tables():
    """Every table the migrations create (views are not tables)."""
    names = set()
    for stmt in sql_statements():
        m = re.match(r"(?i)CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)", stmt)
        if m:
            names.add(m.group(1).split(".")[-1])
    return names


def show(keys):
    return sorted(f"{role}: {right}" + (f" ({', '.join(sorted(cols))})" if cols else "")
                  for role, right, cols in keys)


# ------------------------------------------------------------------ the tests

# Pins down: the topic matrix names exactly the topics cwpp-admin creates.
def test_topic_matrix_lists_exactly_the_topics_cwpp_admin_creates():
    documented, created = set(doc_topics()), admin_topics()
    assert not created - documented, \
        f"topics cwpp-admin creates that docs/architecture.md does not list: {sorted(created - documented)}"
    assert not documented - created, \
        f"topics docs/architecture.md lists that cwpp-admin does not create: {sorted(documented - created)}"


# Pins down: every topic has a producer and a consumer, each a known part or party.
def test_topic_matrix_names_known_producers_and_consumers():
    for topic, (producers, consumers) in doc_topics().items():
        assert producers and consumers, f"{topic}: a producer and a consumer are needed"
        unknown = (producers | consumers) - PARTIES
        assert not unknown, f"{topic}: unknown parts {sorted(unknown)} (known: {sorted(PARTIES)})"


# Pins down: the built cwpp-admin prints the same topics (skipped when not built).
def test_built_cwpp_admin_lists_the_documented_topics():
    exe = BIN / "cwpp-admin"
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    out = subprocess.run([str(exe), "topics", "list", "--prefix", PREFIX], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    listed = {line.split("\t")[0] for line in out.splitlines() if line.strip()}
    assert listed == set(doc_topics())


# Pins down: the writers the document names hold exactly the grants the migrations give.
def test_writer_matrix_matches_the_grants():
    documented, granted = doc_writers(), sql_writers()
    problems = []
    for table in sorted(set(documented) | set(granted)):
        d, g = documented.get(table, set()), granted.get(table, set())
        if d - g:
            problems.append(f"{table}: docs/architecture.md names writers without the grant: "
                            f"{show(d - g)}")
        if g - d:
            problems.append(f"{table}: grants missing from docs/architecture.md: {show(g - d)}")
    assert not problems, "\n".join(problems)


# Pins down: every table the migrations create is in the matrix, with an owner.
def test_writer_matrix_covers_every_table():
    rows = {ticked(r[0]): r for r in md_table(doc_section("Database tables and their writers"),
                                               "table")}
    tables = sql_tables()
    assert not tables - set(rows), \
        f"tables missing from docs/architecture.md: {sorted(tables - set(rows))}"
    assert not set(rows) - tables, \
        f"docs/architecture.md lists tables the migrations do not create: {sorted(set(rows) - tables)}"
    for name, row in rows.items():
        assert row[1], f"{name}: no owner"


# Pins down: the checks above really parse something (a broken parser fails, not passes).
def test_parsers_read_the_files():
    assert len(admin_topics()) >= 10
    granted = sql_writers()
    assert ("cwpp_ingest", "INSERT", None) in granted["alerts"]
    assert ("cwpp_whitelist", "UPDATE", frozenset({"status", "updated_at"})) in granted["alerts"]
    assert parse_rights("`r`: INSERT, UPDATE (a, b); `s`: DELETE") == {
        ("r", "INSERT", None), ("r", "UPDATE", frozenset({"a", "b"})), ("s", "DELETE", None)}
