"""The fields of every ``Ntry`` of a camt statement, read fast.

An entry is flattened into a dict from each leaf's local path ("NtryRef",
"Refs/EndToEndId", "Amt/@Ccy" for the currency of the first ``Amt``) to its
stripped text, the first leaf found at that path winning; empty is None, and
the paths in ``REPEATED`` keep every text in order under ``path + "[]"``. Its
``TxDtls`` are not descended into but flattened on their own. Local names only,
so .02 and .08 (and any namespace) read alike. ``flatten`` is that reading, one
element at a time, and the reference for everything below. The parser gets of
each the values it reads, in the order of ``ENTRY_FIELDS`` and ``TX_FIELDS``.

A statement can hold 100 000 entries and over four million elements, and
Python that touches every element (a walk, ``findtext``, reading ``.tag``)
costs about a microsecond each: seconds for one file. So ``read_entries``
keeps the per-element work in C:

1. libxml2 serializes the statement once. Its output is regular: ``<`` only
   opens a tag and ``>`` only closes one, and any character that had to be
   escaped shows up as ``&``.
2. Entries repeat a few shapes (tags, attributes and nesting; texts aside).
   For the first entry of a new shape a regular expression is compiled that
   matches exactly that tag skeleton, with a group for the text of each leaf;
   it is used only after it has read that entry exactly as ``flatten`` does.
3. Every further entry of that shape is one ``match``: a match proves the
   entry has that skeleton and no ``&``, and its groups are the leaves' texts.

Whatever falls outside that regular form (an ``&`` in an entry, a shape that
cannot be checked, more shapes than ``MAX_BUILDS``, anything that could make
the serialized text and the elements disagree about where an entry is) is
read by ``flatten``: the same result, only slower.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from operator import itemgetter

from lxml import etree

STOP = "TxDtls"
# Paths that may repeat and are all kept, in order (under ``path + "[]"``).
REPEATED = frozenset({"RmtInf/Ustrd", "RtrInf/AddtlInf"})


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


# An amount path with no leaf at all (an empty one is None: present, and invalid).
ABSENT = _Absent()

# What the parser reads of an entry and of a transaction, in the order in which
# ``billing.bankfiles.parser`` unpacks them. "path": the first leaf's stripped
# text or None; "?path": the same, but ABSENT without any leaf; "path/@Ccy": the
# currency of the first leaf at path; "path[]": the non-empty texts of every leaf
# at path joined by a space, or None.
ENTRY_FIELDS = (
    "NtryRef",
    "AcctSvcrRef",
    "?Amt",
    "Amt/@Ccy",
    "CdtDbtInd",
    "Sts/Cd",
    "Sts/Prtry",
    "Sts",
    "BkTxCd/Domn/Cd",
    "BkTxCd/Domn/Fmly/Cd",
    "BkTxCd/Domn/Fmly/SubFmlyCd",
    "BkTxCd/Prtry/Cd",
    "NtryDtls/Btch/NbOfTxs",
    "NtryDtls/Btch/MsgId",
    "NtryDtls/Btch/PmtInfId",
    "RvslInd",
    "BookgDt/Dt",
    "BookgDt/DtTm",
    "BookgDt",
    "ValDt/Dt",
    "ValDt/DtTm",
    "ValDt",
    "AddtlNtryInf",
)
TX_FIELDS = (
    "?Amt",
    "Amt/@Ccy",
    "?AmtDtls/TxAmt/Amt",
    "AmtDtls/TxAmt/Amt/@Ccy",
    "?AmtDtls/InstdAmt/Amt",
    "AmtDtls/InstdAmt/Amt/@Ccy",
    "CdtDbtInd",
    "RltdPties/Dbtr/Nm",
    "RltdPties/Dbtr/Pty/Nm",
    "RltdPties/UltmtDbtr/Nm",
    "RltdPties/DbtrAcct/Id/IBAN",
    "RltdPties/Cdtr/Nm",
    "RltdPties/Cdtr/Pty/Nm",
    "RltdPties/UltmtCdtr/Nm",
    "RltdPties/CdtrAcct/Id/IBAN",
    "RltdAgts/DbtrAgt/FinInstnId/BIC",
    "RltdAgts/DbtrAgt/FinInstnId/BICFI",
    "RltdAgts/CdtrAgt/FinInstnId/BIC",
    "RltdAgts/CdtrAgt/FinInstnId/BICFI",
    "Refs/EndToEndId",
    "Refs/AcctSvcrRef",
    "Refs/TxId",
    "Refs/InstrId",
    "Refs/PmtInfId",
    "Refs/MndtId",
    "RmtInf/Strd/CdtrRefInf/Ref",
    "RmtInf/Ustrd[]",
    "RtrInf/Rsn/Cd",
    "RtrInf/Rsn/Prtry",
    "RtrInf/AddtlInf[]",
    "BkTxCd/Domn/Cd",
    "BkTxCd/Domn/Fmly/Cd",
    "BkTxCd/Domn/Fmly/SubFmlyCd",
    "BkTxCd/Prtry/Cd",
)

# Compiling a shape costs about 0.05 ms per tag (sre's compiler is Python): an
# entry of one transaction has some 80 tags. A statement compiles at most
# MAX_BUILDS shapes of at most MAX_SHAPE_TAGS tags and MAX_STATEMENT_TAGS in all;
# entries of any other shape are read by ``flatten``. A batch booking that lists
# its debits is one entry of its own shape, cheaper to flatten than to compile.
MAX_BUILDS = 64
MAX_SHAPE_TAGS = 400
MAX_STATEMENT_TAGS = 6_000
# Compiled shapes tried for one entry, most recently used first.
MAX_TRIES = 8

Fields = dict
Values = tuple
EntryValues = tuple[Values, list[Values]]

# "{urn:iso:...:camt.053.001.02}Refs" -> "Refs"; a handful of tags, seen millions of times.
_LOCAL_NAMES: dict[str, str] = {}


def _local_name(tag) -> str | None:
    if not isinstance(tag, str):
        return None
    local = tag[tag.index("}") + 1 :] if tag[0] == "{" else tag
    if len(_LOCAL_NAMES) < 10_000:  # bounded: a hostile file could invent tags
        _LOCAL_NAMES[tag] = local
    return local


def flatten(
    element: etree._Element, stop: str | None = None
) -> tuple[Fields, list[etree._Element]]:
    """The stripped text of the leaves under ``element`` by local path (first one wins;
    empty is None), and the ``stop`` children.

    Elements named ``stop`` (the ``TxDtls`` of an entry) are not descended into
    but returned, to be flattened on their own.
    """
    fields: dict = {}
    stopped: list[etree._Element] = []
    local_names = _LOCAL_NAMES

    def walk(el: etree._Element, prefix: str) -> None:
        for child in el:
            tag = local_names.get(child.tag)
            if tag is None:
                tag = _local_name(child.tag)
                if tag is None:
                    continue  # comments and PIs are removed by the parser; never trust it
            if tag == stop:
                stopped.append(child)
                continue
            path = prefix + tag
            if len(child):
                walk(child, path + "/")
                continue
            text = child.text
            if text is not None:
                text = text.strip() or None
            if path in REPEATED:
                fields.setdefault(path + "[]", []).append(text)
            if path not in fields:
                fields[path] = text
                if tag == "Amt":
                    currency = child.get("Ccy")
                    fields[path + "/@Ccy"] = currency.strip() if currency else currency

    walk(element, "")
    return fields, stopped


def values(fields: Fields, wanted: tuple[str, ...]) -> Values:
    """The ``wanted`` fields (``ENTRY_FIELDS`` or ``TX_FIELDS``) of flattened ``fields``."""
    out = []
    for field in wanted:
        if field[0] == "?":
            out.append(fields.get(field[1:], ABSENT))
        elif field[-2:] == "[]":
            out.append(" ".join([text for text in fields.get(field, ()) if text]) or None)
        else:
            out.append(fields.get(field))
    return tuple(out)


def read_entry(ntry: etree._Element) -> EntryValues:
    """The values of an entry and of each of its transactions, element by element."""
    fields, transactions = flatten(ntry, STOP)
    return values(fields, ENTRY_FIELDS), [values(flatten(tx)[0], TX_FIELDS) for tx in transactions]


def read_entries(stmt: etree._Element) -> Iterator[EntryValues]:
    """``read_entry`` of each ``Ntry`` child of ``stmt``, in order."""
    ntrys = stmt.findall("{*}Ntry")
    done = 0
    reader = _Reader.of(stmt, ntrys)
    if reader is not None:
        for ntry in ntrys:
            read = reader.read(ntry)
            if read is None:
                break  # lost track of where the entries are in the text: the rest slowly
            done += 1
            yield read
    for ntry in ntrys[done:]:
        yield read_entry(ntry)


class _Part:
    """Where each wanted value of an entry (its ``TxDtls`` aside) or of one of its
    transactions comes from: a group of its shape's match, or a constant of the shape."""

    __slots__ = ("get", "joins", "read")

    def __init__(
        self,
        leaves: list[tuple[str, etree._Element]],
        wanted: tuple[str, ...],
        group_of: dict[etree._Element, int | None],
        constant: Callable[[object], int],
    ) -> None:
        first: dict[str, etree._Element] = {}
        every: dict[str, list[etree._Element]] = {}
        for path, leaf in leaves:
            first.setdefault(path, leaf)
            every.setdefault(path, []).append(leaf)
        sources: list[int] = []
        joins: list[tuple[int, tuple[int, ...]]] = []
        for n, field in enumerate(wanted):
            if field.endswith("[]"):
                groups = [group_of[leaf] for leaf in every.get(field[:-2], ())]
                groups = [g for g in groups if g is not None]  # empty elements: no text
                if len(groups) > 1:
                    joins.append((n, tuple(groups)))
                sources.append(groups[0] if len(groups) == 1 else constant(None))
            elif field.endswith("/@Ccy"):
                # Attributes are part of the shape, so the currency is too.
                leaf = first.get(field[:-5])
                currency = leaf.get("Ccy") if leaf is not None else None
                sources.append(constant(currency.strip() if currency else currency))
            else:
                path = field.removeprefix("?")
                leaf = first.get(path)
                if leaf is None:
                    sources.append(constant(ABSENT if field[0] == "?" else None))
                else:
                    group = group_of[leaf]
                    sources.append(constant(None) if group is None else group)
        self.get = itemgetter(*sources)
        self.joins = tuple(joins)
        # ``read(texts)``: the values in ``wanted`` order, from the texts of a match.
        self.read = self._joined if joins else self.get

    def _joined(self, texts: list[str | None]) -> Values:
        values = list(self.get(texts))
        for n, groups in self.joins:
            values[n] = " ".join([texts[g] for g in groups if texts[g]]) or None
        return tuple(values)


class _Shape:
    """One entry skeleton: the expression that matches it and how to read its groups."""

    __slots__ = ("constants", "entry", "pattern", "transactions")

    def __init__(
        self,
        pattern: re.Pattern,
        leaves: list[tuple[str, etree._Element]],
        transactions: list[list[tuple[str, etree._Element]]],
        group_of: dict[etree._Element, int | None],
    ) -> None:
        self.pattern = pattern
        # Constants sit after the groups in the list a match is read from.
        self.constants: list[object] = []
        groups = pattern.groups

        def constant(value: object) -> int:
            for n, known in enumerate(self.constants):
                if known is value or (type(known) is str and known == value):
                    return groups + n
            self.constants.append(value)
            return groups + len(self.constants) - 1

        self.entry = _Part(leaves, ENTRY_FIELDS, group_of, constant)
        self.transactions = [_Part(tx, TX_FIELDS, group_of, constant) for tx in transactions]

    def read(self, match: re.Match) -> EntryValues:
        texts: list = list(map(str.strip, match.groups()))
        if "" in texts:  # all blanks: None, as in ``flatten``
            texts = [text or None for text in texts]
        texts += self.constants
        return self.entry.read(texts), [tx.read(texts) for tx in self.transactions]


# Between two tags in the serialization: any text without markup or escapes.
_TEXT = "[^<&]*"
_CAPTURE = "([^<&]*)"


def _leaves(
    element: etree._Element, stop: str | None
) -> tuple[list[tuple[str, etree._Element]], list[etree._Element]]:
    """Every leaf under ``element`` with its local path, in document order (``flatten``'s walk)."""
    leaves: list[tuple[str, etree._Element]] = []
    stopped: list[etree._Element] = []

    def walk(el: etree._Element, prefix: str) -> None:
        for child in el:
            tag = _local_name(child.tag)
            if tag is None:
                continue
            if tag == stop:
                stopped.append(child)
            elif len(child):
                walk(child, prefix + tag + "/")
            else:
                leaves.append((prefix + tag, child))

    walk(element, "")
    return leaves, stopped


def _build(content: str, ntry: etree._Element) -> _Shape | None:
    """The shape of ``content`` (the serialized inside of ``ntry``), checked against
    ``read_entry(ntry)``; None when it cannot be used."""
    # No "&" and no "<" in texts or attribute values: ">" only ends a tag.
    tokens = content.replace(">", "<").split("<")  # text, tag, text, tag, ..., text
    tags = tokens[1::2]
    elements = list(ntry.iterdescendants())
    opening = [k for k, tag in enumerate(tags) if not tag.startswith("/")]
    if len(opening) != len(elements):
        return None
    captured: dict[int, etree._Element] = {}  # tag index -> leaf whose text follows it
    empty: set[etree._Element] = set()
    for element, k in zip(elements, opening, strict=True):
        local = _local_name(element.tag)
        if local is None:
            return None
        tag = tags[k]
        self_closing = tag.endswith("/")
        name = tag.rstrip("/").split(" ", 1)[0]
        if name != (f"{element.prefix}:{local}" if element.prefix else local):
            return None
        text = None if self_closing else tokens[2 * k + 2]
        if (element.text or "") != (text or ""):
            return None
        if len(element) == 0:
            if self_closing:
                empty.add(element)
            else:
                captured[k] = element
    group_of: dict[etree._Element, int | None] = dict.fromkeys(empty)
    parts = [_TEXT]
    for k, tag in enumerate(tags):
        parts.append(re.escape(f"<{tag}>"))
        if k in captured:
            group_of[captured[k]] = len(group_of) - len(empty)
            parts.append(_CAPTURE)
        else:
            parts.append(_TEXT)
    parts.append(re.escape("</Ntry>"))
    entry_leaves, transactions = _leaves(ntry, STOP)
    shape = _Shape(
        re.compile("".join(parts)),
        entry_leaves,
        [_leaves(tx, None)[0] for tx in transactions],
        group_of,
    )
    match = shape.pattern.fullmatch(content + "</Ntry>")
    if match is None or shape.read(match) != read_entry(ntry):
        return None
    return shape


class _Reader:
    """Walks the serialized statement entry by entry, in step with the elements."""

    __slots__ = ("budget", "builds", "pos", "shapes", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.shapes: list[_Shape] = []
        self.builds = 0
        self.budget = MAX_STATEMENT_TAGS

    @classmethod
    def of(cls, stmt: etree._Element, ntrys: list[etree._Element]) -> _Reader | None:
        if not ntrys:
            return None
        # The text is searched for "<Ntry": every element named Ntry that can show
        # up there must be one of ``ntrys``. Prefixed ones would not be found, and
        # one inside another child (a Bal) would be taken for an entry.
        if any(ntry.prefix for ntry in ntrys):
            return None
        for child in stmt.xpath("*[local-name() != 'Ntry']"):
            if next(child.iter("{*}Ntry"), None) is not None:
                return None
        return cls(etree.tostring(stmt, encoding="unicode", with_tail=False))

    def _next_start(self) -> int:
        """Where the inside of the next ``Ntry`` starts in the text, or -1."""
        text = self.text
        pos = self.pos
        while True:
            found = text.find("<Ntry", pos)
            if found < 0:
                return -1
            after = text[found + 5 : found + 6]
            if after == ">":
                return found + 6
            if not (after.isalnum() or after in "_-.:" or after > "\x7f"):
                # Attributes, a namespace declaration or no content: not the
                # plain "<Ntry>" the shapes assume.
                return -1
            pos = found + 5  # another name that starts with Ntry (NtryRef)

    def read(self, ntry: etree._Element) -> EntryValues | None:
        """The values of ``ntry``, the next entry in the text; None once the text
        and the elements can no longer be kept in step."""
        text = self.text
        if text.startswith("<Ntry>", self.pos):  # entries follow each other without blanks
            start = self.pos + 6
        else:
            start = self._next_start()
            if start < 0:
                return None
        shapes = self.shapes
        for n in range(min(len(shapes), MAX_TRIES)):
            shape = shapes[n]
            match = shape.pattern.match(text, start)
            if match is not None:
                if n:
                    shapes.insert(0, shapes.pop(n))
                self.pos = match.end()
                return shape.read(match)
        end = text.find("</Ntry>", start)
        if end < 0 or text.find("<Ntry>", start, end) >= 0 or text.find("<Ntry ", start, end) >= 0:
            return None  # an Ntry inside the entry: its end tag is not this one's
        self.pos = end + 7
        tags = text.count("<", start, end)
        if (
            self.builds < MAX_BUILDS
            and tags <= min(MAX_SHAPE_TAGS, self.budget)
            and text.find("&", start, end) < 0
        ):
            self.builds += 1
            self.budget -= tags
            shape = _build(text[start:end], ntry)
            if shape is not None:
                shapes.insert(0, shape)
                return shape.read(shape.pattern.match(text, start))
        return read_entry(ntry)
