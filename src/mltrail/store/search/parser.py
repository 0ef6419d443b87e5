"""Tokenizer and recursive-descent parser for the run filter and order-by language.

Grammar (keywords are case-insensitive)::

    filter     := or_expr EOF
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | primary
    primary    := "(" or_expr ")" | ident predicate
    predicate  := op value | ["NOT"] ("LIKE" | "ILIKE") string
                | ["NOT"] "IN" "(" value ("," value)* ")" | "IS" ["NOT"] "NULL"
    ident      := (params|param|config|metrics|metric|tags|tag) "." key | attribute
    order_by   := ident ["ASC" | "DESC"] ("," ident ["ASC" | "DESC"])* EOF

Type rules are checked here, so errors can name a position: metrics compare only to numbers,
``created``/``ended`` take numbers (epoch ms) or ISO dates (converted to epoch ms, UTC), tags
and text attributes take strings (numbers become their text), booleans apply to params and
tags with ``=``/``!=`` only. Nesting (parentheses and NOT) is capped at ``MAX_DEPTH`` so a
hostile filter raises :class:`FilterSyntaxError`, never ``RecursionError``. Keys after
``params.``/``metrics.``/``tags.`` are NFC-normalised, as stored keys are; literals are not.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mltrail._validation import normalize_key
from mltrail.errors import FilterSyntaxError
from mltrail.store.search import And, Compare, Ident, In, IsNull, Node, Not, Or, OrderKey, Value

__all__ = [
    "ATTRIBUTES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_ORDER_KEYS",
    "parse_filter",
    "parse_order_by",
]

MAX_LENGTH = 10_000
MAX_DEPTH = 100
MAX_ORDER_KEYS = 16

#: Attribute spellings → canonical attribute name.
_NAMES = ("status", "name", "run_id", "created", "ended", "user", "host", "project")
ATTRIBUTES: dict[str, str] = {name: name for name in _NAMES} | {"id": "run_id"}
_PREFIXES = (
    dict.fromkeys(("params", "param", "config"), "param")
    | dict.fromkeys(("metrics", "metric"), "metric")
    | dict.fromkeys(("tags", "tag"), "tag")
    | dict.fromkeys(("attributes", "attribute", "attr"), "attr")
)
_TIME_ATTRS = frozenset({"created", "ended"})
_KEYWORDS = frozenset(
    {"and", "or", "not", "like", "ilike", "in", "is", "null", "true", "false", "asc", "desc"}
)
_OPS = {"==": "=", "=": "=", "!=": "!=", "<>": "!=", "<=": "<=", ">=": ">=", "<": "<", ">": ">"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # ident, word, number, string, dqstring, op, (, ), ",", eof
    text: str
    pos: int
    value: object = None

    def show(self) -> str:
        if self.kind == "eof":
            return "the end of the input"
        text = self.text if len(self.text) <= 30 else self.text[:27] + "..."
        return repr(text)


_WS = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_BARE_KEY = re.compile(r"[\w./-]+")


def _quoted(text: str, start: int, what: str = "string") -> tuple[str, int]:
    """The body of the quoted run at ``start`` (doubled quotes escape) and the index past it."""
    quote = text[start]
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            raise FilterSyntaxError(f"unterminated {what} (missing closing {quote})", start)
        if text.startswith(quote, j + 1):
            i = j + 2
            continue
        return text[start + 1 : j].replace(quote * 2, quote), j + 1


def _number(text: str) -> int | float:
    if _INTEGER.fullmatch(text) and len(text) <= 20:
        value = int(text)
        if -_INT64 <= value < _INT64:
            return value
    return float(text)


def _ident_token(text: str, m: re.Match[str]) -> tuple[_Tok, int]:
    """A word at ``m``; when followed by '.', a prefixed identifier with its key."""
    word, pos, end = m.group(), m.start(), m.end()
    if not text.startswith(".", end):
        return _Tok("word", word, pos, word.lower()), end
    kind = _PREFIXES.get(word.lower())
    if kind is None:
        whole = text[pos : _bare_key_end(text, pos)]
        raise FilterSyntaxError(
            f"unknown identifier prefix {word!r}; expected params., metrics., tags. or "
            f"attributes. (a key with a dot needs its kind: {_kinds_hint(whole)})",
            pos,
        )
    k = end + 1
    if text.startswith(("`", '"'), k):
        key, end = _quoted(text, k, "quoted key")
    else:
        end = _bare_key_end(text, k)
        if end == k:
            raise FilterSyntaxError(f"expected a key after '{word}.'", k)
        key = text[k:end]
    if not key:
        raise FilterSyntaxError(f"empty key after '{word}.'", k)
    if kind == "attr":
        if key.lower() not in ATTRIBUTES:
            raise FilterSyntaxError(f"unknown attribute {key!r}; {_attr_hint()}", k)
        key = ATTRIBUTES[key.lower()]
    else:  # stored keys are NFC: a key typed in NFD (or other forms) must find them
        key = normalize_key(key)
    return _Tok("ident", text[pos:end], pos, Ident(kind, key)), end


def _bare_key_end(text: str, start: int) -> int:
    """Where a bare key starting at ``start`` ends: word characters, ``./-`` and combining
    marks (an NFD ``é`` is ``e`` + U+0301, which ``\\w`` does not match)."""
    end = start
    while True:
        m = _BARE_KEY.match(text, end)
        if m is not None:
            end = m.end()
        elif end < len(text) and unicodedata.category(text[end]).startswith("M"):
            end += 1
        else:
            return end


def _tokenize(text: str) -> list[_Tok]:
    """Split ``text`` into tokens, ending with an ``eof`` token."""
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if (m := _WS.match(text, i)) is not None:
            i = m.end()
        elif (m := _WORD.match(text, i)) is not None:
            tok, i = _ident_token(text, m)
            toks.append(tok)
        elif (m := _NUMBER.match(text, i)) is not None:
            toks.append(_Tok("number", m.group(), i, _number(m.group())))
            i = m.end()
        elif ch in "'\"":
            body, end = _quoted(text, i)
            toks.append(_Tok("string" if ch == "'" else "dqstring", text[i:end], i, body))
            i = end
        elif ch in "(),":
            toks.append(_Tok(ch, ch, i))
            i += 1
        elif (op := text[i : i + 2]) in _OPS or (op := ch) in _OPS:
            toks.append(_Tok("op", op, i, _OPS[op]))
            i += len(op)
        else:
            last = toks[-1] if toks else None
            glued = last is not None and last.kind == "word" and last.pos + len(last.text) == i
            if ch in "/-" and glued and last is not None:
                whole = text[last.pos : _bare_key_end(text, last.pos)]
                raise FilterSyntaxError(
                    f"{whole!r} is not a filter key: metric, param and tag keys need their "
                    f"kind, e.g. {_kinds_hint(whole)}",
                    last.pos,
                )
            raise FilterSyntaxError(f"unexpected character {ch!r}", i)
    toks.append(_Tok("eof", "", n))
    return toks


def _attr_hint() -> str:
    return "expected params.KEY, metrics.KEY, tags.KEY or one of: " + ", ".join(sorted(_NAMES))


def _kinds_hint(key: str) -> str:
    return f"metrics.{key}, params.{key} or tags.{key}"


def _to_ms(text: str, pos: int) -> int:
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - _EPOCH) // timedelta(milliseconds=1)
    except (ValueError, OverflowError):
        raise FilterSyntaxError(
            f"expected an ISO date or datetime, got {text[:40]!r}", pos
        ) from None


def _typed(ident: Ident, op: str, tok: _Tok) -> Value:
    """The literal in ``tok`` checked (and converted) for comparing ``ident`` with ``op``."""
    value = tok.value
    assert isinstance(value, str | int | float)
    is_str = tok.kind in ("string", "dqstring")
    is_bool = isinstance(value, bool)
    is_num = not is_str and not is_bool
    where = f"{_display(ident)} {op}"
    if "LIKE" in op and ident.key in _TIME_ATTRS and ident.kind == "attr":
        raise FilterSyntaxError(f"{where} is not allowed: {ident.key} is a time", tok.pos)
    if "LIKE" in op and not is_str and ident.kind != "metric":
        raise FilterSyntaxError(f"expected a string pattern after {where}", tok.pos)
    if ident.kind == "metric":
        if "LIKE" in op:
            raise FilterSyntaxError(f"{where} is not allowed: metrics are numeric", tok.pos)
        if not is_num:
            raise FilterSyntaxError(
                f"expected a number after {where} (metrics are numeric)", tok.pos
            )
        return value
    if is_bool:
        if ident.kind == "attr" or op not in ("=", "!=", "IN"):
            raise FilterSyntaxError(f"TRUE/FALSE cannot follow {where}", tok.pos)
        return value if ident.kind == "param" else ("true" if value else "false")
    if ident.kind == "attr" and ident.key in _TIME_ATTRS:
        return _to_ms(str(value), tok.pos) if is_str else value
    if ident.kind == "param":
        return value
    return str(value)


def _display(ident: Ident) -> str:
    return ident.key if ident.kind == "attr" else f"{ident.kind}s.{ident.key}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def at_word(self, *words: str) -> bool:
        tok = self.toks[self.i]
        return tok.kind == "word" and tok.value in words

    def expect(self, kind: str, what: str, after: str) -> _Tok:
        tok = self.peek()
        if tok.kind != kind:
            raise FilterSyntaxError(
                f"expected {what} after {after} but found {tok.show()}", tok.pos
            )
        return self.take()

    def enter(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", tok.pos)

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.at_word("or"):
            self.take()
            items.append(self.and_expr())
        return _flat(Or, items)

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.at_word("and"):
            self.take()
            items.append(self.not_expr())
        return _flat(And, items)

    def not_expr(self) -> Node:
        if not self.at_word("not"):
            return self.primary()
        self.enter(self.take())
        node = Not(self.not_expr())
        self.depth -= 1
        return node

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "(":
            self.enter(self.take())
            node = self.or_expr()
            self.expect(")", "')'", f"the expression opened at position {tok.pos}")
            self.depth -= 1
            return node
        return self.predicate(self.ident())

    def ident(self) -> Ident:
        tok = self.take()
        if tok.kind == "ident":
            assert isinstance(tok.value, Ident)
            return tok.value
        if tok.kind == "word" and tok.value in ATTRIBUTES:
            return Ident("attr", ATTRIBUTES[str(tok.value)])
        if tok.kind == "word" and tok.value not in _KEYWORDS:
            raise FilterSyntaxError(
                f"unknown attribute {tok.text!r}; did you mean {_kinds_hint(tok.text)}? "
                f"({_attr_hint()})",
                tok.pos,
            )
        raise FilterSyntaxError(
            f"expected an identifier (params.KEY, metrics.KEY, tags.KEY or an attribute) "
            f"but found {tok.show()}",
            tok.pos,
        )

    def predicate(self, ident: Ident) -> Node:
        name = _display(ident)
        tok = self.take()
        if tok.kind == "op":
            return Compare(ident, str(tok.value), self.value(ident, str(tok.value)))
        if tok.kind == "word" and tok.value == "is":
            negated = self.at_word("not")
            if negated:
                self.take()
            if not self.at_word("null"):
                raise FilterSyntaxError(f"expected NULL after {name} IS", self.peek().pos)
            self.take()
            return IsNull(ident, negated)
        negated = tok.kind == "word" and tok.value == "not"
        if negated:
            tok = self.take()
        if tok.kind == "word" and tok.value in ("like", "ilike"):
            op = ("NOT " if negated else "") + str(tok.value).upper()
            return Compare(ident, op, self.value(ident, op))
        if tok.kind == "word" and tok.value == "in":
            return In(ident, self.in_list(ident, tok), negated)
        wanted = "LIKE, ILIKE or IN after NOT" if negated else "a comparison operator"
        raise FilterSyntaxError(f"expected {wanted} after {name!r}", tok.pos)

    def value(self, ident: Ident, op: str) -> Value:
        tok = self.take()
        if tok.kind == "word" and tok.value in ("true", "false"):
            tok = _Tok("bool", tok.text, tok.pos, tok.value == "true")
        elif tok.kind not in ("number", "string", "dqstring"):
            raise FilterSyntaxError(
                f"expected a value after {_display(ident)} {op} but found {tok.show()}", tok.pos
            )
        return _typed(ident, op, tok)

    def in_list(self, ident: Ident, in_tok: _Tok) -> tuple[Value, ...]:
        self.expect("(", "'('", "IN")
        if self.peek().kind == ")":
            raise FilterSyntaxError("empty IN list", self.peek().pos)
        values = [self.value(ident, "IN")]
        while self.peek().kind == ",":
            self.take()
            values.append(self.value(ident, "IN"))
        self.expect(")", "',' or ')'", f"the IN list at position {in_tok.pos}")
        return tuple(values)


def _flat(cls: type[And] | type[Or], items: list[Node]) -> Node:
    if len(items) == 1:
        return items[0]
    out: list[Node] = []
    for item in items:
        out.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(out))


def _parser(text: str | None) -> _Parser | None:
    if text is not None and len(text) > MAX_LENGTH:
        raise FilterSyntaxError(f"input is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    return _Parser(text) if text is not None and text.strip() else None


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter expression.

    Args:
        text: e.g. ``params.lr = 0.01 and (metrics.acc > 0.9 or tags.stage = 'prod')``;
            None, empty or blank means no filter.

    Returns:
        The AST, or None when there is no filter.

    Raises:
        FilterSyntaxError: the text does not parse; the message names what was expected and
            the 0-based character position.
    """
    parser = _parser(text)
    if parser is None:
        return None
    node = parser.or_expr()
    tok = parser.peek()
    if tok.kind != "eof":
        raise FilterSyntaxError(
            f"expected AND, OR or the end of the filter but found {tok.show()}", tok.pos
        )
    return node


def parse_order_by(text: str | None) -> tuple[OrderKey, ...]:
    """Parse an order-by list such as ``metrics.acc desc, params.lr``.

    Args:
        text: comma-separated ``KEY [ASC|DESC]`` terms; None or blank means the default order.

    Returns:
        The keys in priority order (empty for the default order).

    Raises:
        FilterSyntaxError: unknown column, bad direction, trailing text or too many keys.
    """
    parser = _parser(text)
    if parser is None:
        return ()
    keys: list[OrderKey] = []
    while True:
        ident = parser.ident()
        descending = False
        if parser.at_word("asc", "desc"):
            descending = parser.take().value == "desc"
        keys.append(OrderKey(ident, descending))
        tok = parser.take()
        if tok.kind == "eof":
            break
        if tok.kind != ",":
            raise FilterSyntaxError(
                f"expected ',' or the end of order_by but found {tok.show()}", tok.pos
            )
        if len(keys) >= MAX_ORDER_KEYS:
            raise FilterSyntaxError(f"more than {MAX_ORDER_KEYS} order_by keys", tok.pos)
    return tuple(keys)
