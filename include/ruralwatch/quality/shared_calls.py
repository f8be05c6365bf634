"""Each parser call of a gate, computed once per row.

A feed's checks call the same `util.*` parsers on the same columns many times: the roster's suite
parsed each resident ID five times (its validity check, the usable-row rule, the key, two hand-written
rules), each birth date four times. PostgreSQL does not share a call between expressions, so every
one of them ran on every row. `SharedCalls` finds the calls in the checks' SQL, gives each distinct
call one column (`_call_<n>`), and rewrites the checks to read that column instead.

A call is shared only when it reads nothing but the batch's own columns and literals: anything else
(another relation's column, a subquery) could mean something different once moved, and a cast or a
division in its arguments could fail on a row the check never meant it to see, so it stays as
written. The parsers themselves never raise: they return null for what they cannot read.
"""
from __future__ import annotations

import re

_CALL_START = re.compile(r"\butil\.[a-z_][a-z0-9_]*\s*\(", re.IGNORECASE)
_IDENTIFIER = re.compile(r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*')

# SQL words a parser call's arguments may hold besides the batch's columns (no cast: see below).
_SQL_WORDS = frozenset("""
    coalesce any all array false true null and or not is in distinct from interval date case when then else end
""".split())


def _call_end(text: str, open_paren: int) -> int | None:
    """The index just past the parenthesis closing the one at `open_paren`, quotes respected."""
    depth = 0
    i = open_paren
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            close = text.find(ch, i + 1)
            while close != -1 and text[close + 1:close + 2] == ch:  # '' and "" are escaped quotes
                close = text.find(ch, close + 2)
            if close == -1:
                return None
            i = close + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _outermost_calls(text: str) -> list[tuple[int, int]]:
    spans = []
    position = 0
    while match := _CALL_START.search(text, position):
        if _inside_literal(text, match.start()):
            position = match.end()
            continue
        end = _call_end(text, match.end() - 1)
        if end is None:
            break
        spans.append((match.start(), end))
        position = end
    return spans


def _spelling(call: str) -> str:
    """One spelling of a call: spaces collapsed, and a plain column name unquoted ("x" reads x), so
    the generated checks' `util.clean_text("x")` and a hand-written `util.clean_text(x)` share."""
    parts = re.split(r"('(?:[^']|'')*')", call)
    for i in range(0, len(parts), 2):                    # outside the string literals
        parts[i] = re.sub(r'"([a-z_][a-z0-9_]*)"', r"\1", " ".join(parts[i].split()))
    return "".join(parts)


def _inside_literal(text: str, index: int) -> bool:
    return text.count("'", 0, index) % 2 == 1


class SharedCalls:
    """The distinct parser calls of one gate run, and the checks' SQL rewritten to read them."""

    def __init__(self, batch_columns: set[str]) -> None:
        self.batch_columns = {c.lower() for c in batch_columns}
        self.columns: dict[str, str] = {}     # the call, its spaces collapsed → its column
        self.calls: dict[str, str] = {}       # the column → the call as first written

    def _reads_only_the_batch(self, call: str) -> bool:
        bare = re.sub(r"'(?:[^']|'')*'", "''", call)      # literals say nothing about where they read
        if "{" in bare or "}" in bare:
            return False
        if "::" in bare or "/" in bare:
            # A cast or a division can fail on a value that the check's own CASE or AND kept away
            # from it; computed for every row of the batch, it would fail the whole gate.
            return False
        bare = _CALL_START.sub("(", bare)                   # the parsers' own names
        for token in _IDENTIFIER.findall(bare):
            name = token[1:-1].replace('""', '"') if token.startswith('"') else token
            if name.lower() not in _SQL_WORDS and name.lower() not in self.batch_columns:
                return False
        return True

    def rewrite(self, sql: str) -> str:
        """`sql` with each shareable parser call replaced by its column.

        A call that wraps another (`util.resident_id_gender(util.normalize_resident_id(x))`) keeps
        its outer function and shares the inner call: inlined, the outer SQL function would copy its
        argument into every place it reads it, and the inner parser ran once per copy.
        """
        out = []
        position = 0
        for start, end in _outermost_calls(sql):
            call = sql[start:end]
            out.append(sql[position:start])
            if not self._reads_only_the_batch(call):
                out.append(call)
            else:
                opening = call.index("(")
                inner = call[opening + 1:-1]
                if _CALL_START.search(inner):
                    out.append(call[:opening + 1] + self.rewrite(inner) + ")")
                else:
                    key = _spelling(call)
                    if key not in self.columns:
                        self.columns[key] = f"_call_{len(self.columns) + 1}"
                        self.calls[self.columns[key]] = call
                    out.append(self.columns[key])
            position = end
        out.append(sql[position:])
        return "".join(out)

    def shares_every_call(self, sql: str) -> bool:
        """Whether `rewrite` can take every parser call of `sql` out of it (or leave only calls over
        shared columns), so that `sql` reads nothing the work table lacks."""
        return all(self._reads_only_the_batch(sql[start:end]) for start, end in _outermost_calls(sql))

    def select_list(self) -> str:
        """The shared calls as columns, for the query that reads the batch once."""
        return "".join(f", {call} as {column}" for column, call in self.calls.items())

