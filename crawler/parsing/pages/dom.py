"""A page's DOM built by lexbor (selectolax), read with parsel's CSS dialect.

The legacy parsers only ask CSS questions of the server-rendered pages. lexbor
builds a page's DOM in about half the time libxml2 (lxml, parsel) takes and
matches selectors in C, so reading a legacy page costs little more than
building its DOM. ``Node.css`` answers parsel's queries the way parsel does:
matches in document order, the node itself included (``descendant-or-self``),
and parsel's endings ``::text`` (the matches' own text nodes), `` ::text``
(all their text nodes) and ``::attr(name)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from selectolax.lexbor import LexborHTMLParser, LexborNode

_ENDING = re.compile(r"(\s*)::(text|attr\(([^)]+)\))\s*$")


class Part(NamedTuple):
    """One selector of a group, and what its matches give."""

    selector: str | None  # None: the node itself
    gives: Literal["node", "own_text", "all_text", "attr"]
    attr: str = ""


def _split_group(query: str) -> list[str]:
    """``"a, b[x='1,2']"`` → ``["a", "b[x='1,2']"]``: the commas outside brackets, parentheses and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(query):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(query[start:index])
            start = index + 1
    return [part.strip() for part in [*parts, query[start:]]]


class Query(NamedTuple):
    """A parsel CSS query as one lexbor selector group and the endings of its parts."""

    selector: str | None  # None: the node itself ("::text")
    parts: tuple[Part, ...]
    uniform: bool  # every part gives the same (a single pass over the matches)


@lru_cache(maxsize=512)
def parse_query(query: str) -> Query:
    parts = []
    for text in _split_group(query):
        ending = _ENDING.search(text)
        if not ending:
            parts.append(Part(text, "node"))
            continue
        selector = text[: ending.start()].strip() or None
        if ending.group(3):
            parts.append(Part(selector, "attr", ending.group(3).strip()))
        else:  # "a::text": a's own text nodes; "a ::text" and a bare "::text": all text nodes under them
            parts.append(Part(selector, "all_text" if ending.group(1) or not selector else "own_text"))
    if len(parts) > 1 and any(part.selector is None for part in parts):
        raise ValueError(f"{query!r}: a bare ending in a group of selectors")
    uniform = len({(part.gives, part.attr) for part in parts}) == 1
    return Query(", ".join(p.selector for p in parts if p.selector) or None, tuple(parts), uniform)


class Matches(list[Any]):
    """Matches of a query: nodes, or the strings of a query ending in ``::text`` or ``::attr()``."""

    def __getitem__(self, index: Any) -> Any:
        found = super().__getitem__(index)
        return Matches(found) if isinstance(index, slice) else found

    def get(self, default: Any = None) -> Any:
        return self[0] if self else default

    def getall(self) -> list[Any]:
        return list(self)

    def css(self, query: str) -> Matches:
        return Matches(found for node in self for found in node.css(query))


class Node:
    """An element of a lexbor DOM."""

    __slots__ = ("node",)

    def __init__(self, node: LexborNode) -> None:
        self.node = node

    @property
    def tag(self) -> str:
        return self.node.tag or ""

    @property
    def attrib(self) -> dict[str, Any]:
        return self.node.attributes

    def css(self, query: str) -> Matches:
        selector, parts, uniform = parse_query(query)
        if selector is None:
            return Matches(_give(self.node, parts[0]))
        nodes = self.node.css(selector)
        if len(parts) > 1 and len(nodes) > 1:
            nodes = _once(nodes)  # lexbor lists an element once for each selector of a group it matches
        if uniform:
            part = parts[0]
            if part.gives == "node":
                return Matches([Node(node) for node in nodes])
            if part.gives == "attr":
                return Matches([value for node in nodes for value in _attribute(node, part.attr)])
            if len(nodes) > 1 and len(outer := _outermost(nodes, self.node.mem_id)) < len(nodes):
                # Matches nest: each text node once, in document order, as XPath gives them.
                if part.gives == "all_text":
                    return Matches(text for node in outer for text in all_text(node))
                return Matches(_own_texts_in_order(outer, {node.mem_id for node in nodes}))
            texts = all_text if part.gives == "all_text" else own_text
            return Matches(text for node in nodes for text in texts(node))
        # Endings differ: each match gives what the first part it matches asks for.
        found = Matches()
        for node in nodes:
            part = next(p for p in parts if p.selector and _matches(node, p.selector))
            found.extend(_give(node, part))
        return found

    def rows(self, row: str, *inner: str, nested: bool = False) -> list[tuple[Any, ...]]:
        """The elements matching ``row`` under this node, each with the matches of each of ``inner`` inside it.

        ``[(row, [matches of inner[0]], [matches of inner[1]]…)]``, from one
        lexbor query per selector for hundreds of rows (a filmography, a cast
        list) instead of one a row, which costs ~10–50 µs. Each inner match
        goes to the nearest row it sits in, or with ``nested`` to every row it
        sits in (as a query of each row would find it, where rows nest).
        """
        found = self.node.css(row)
        starts = {node.mem_id: number for number, node in enumerate(found)}
        scope = self.node.mem_id
        columns = []
        for selector in inner:
            column: list[list[Node]] = [[] for _ in found]
            matches = self.node.css(selector)
            for node in _once(matches) if len(parse_query(selector).parts) > 1 else matches:
                parent = node.parent
                while parent is not None:
                    key = parent.mem_id
                    number = starts.get(key)
                    if number is not None:
                        column[number].append(Node(node))
                        if not nested:
                            break
                    if key == scope:
                        break  # rows are under this node, or this node
                    parent = parent.parent
            columns.append(column)
        return [(Node(node), *cells) for node, *cells in zip(found, *columns, strict=True)]

    def text(self) -> str:
        """All text under this element, its text nodes joined by spaces."""
        child = self.node.child
        if child is not None and child.next is None and child.is_text_node:
            return child.text_content or ""  # one text node, as most cells and links hold: ~3× faster
        return self.node.text(deep=True, separator=" ")

    def first(self, selector: str) -> Node | None:
        found = self.node.css(selector)  # lexbor's css_first takes longer than css
        return Node(found[0]) if found else None

    def own_text(self) -> list[str]:
        """The text nodes that are this element's children (XPath ``text()``)."""
        return own_text(self.node)

    def all_text(self) -> list[str]:
        """All text nodes under this element (XPath ``.//text()``)."""
        return all_text(self.node)

    def children(self, tag: str | None = None) -> list[Node]:
        """The element children (named ``tag``)."""
        return [Node(c) for c in self.node.iter() if c.is_element_node and (tag is None or c.tag == tag)]

    def contents(self) -> Iterator[str | Node]:
        """The children in order: text nodes as strings, elements as nodes (comments left out)."""
        for child in self.node.iter(include_text=True):
            if child.is_text_node:
                yield child.text_content or ""
            elif child.is_element_node:
                yield Node(child)

    def next_sibling(self) -> Node | None:
        """The element right after this one (CSS ``+``)."""
        sibling = self.node.next
        while sibling is not None and not sibling.is_element_node:
            sibling = sibling.next
        return Node(sibling) if sibling is not None else None

    def next_element(self, tag: str) -> Node | None:
        """The first following sibling element named ``tag`` (XPath ``following-sibling::tag[1]``)."""
        sibling = self.node.next
        while sibling is not None:
            if sibling.tag == tag:
                return Node(sibling)
            sibling = sibling.next
        return None

    def string(self) -> str:
        """The element's text, all of it (XPath ``string(.)``)."""
        return "".join(self.all_text())


def own_text(node: LexborNode) -> list[str]:
    return [child.text_content or "" for child in node.iter(include_text=True) if child.is_text_node]


def all_text(node: LexborNode) -> list[str]:
    return [child.text_content or "" for child in node.traverse(include_text=True) if child.is_text_node]


def _once(nodes: list[LexborNode]) -> list[LexborNode]:
    """``nodes`` without repeats (by identity), each where it first comes."""
    kept: dict[int, LexborNode] = {}
    for node in nodes:
        kept.setdefault(node.mem_id, node)
    return list(kept.values())


def _own_texts_in_order(outer: list[LexborNode], matched: set[int]) -> Iterator[str]:
    """The text nodes whose parent is one of ``matched``, in document order (``outer``: the outermost matches)."""
    for node in outer:
        for child in node.traverse(include_text=True):
            if child.is_text_node and child.parent is not None and child.parent.mem_id in matched:
                yield child.text_content or ""


def _outermost(nodes: list[LexborNode], scope: int) -> list[LexborNode]:
    """``nodes`` (in document order, all under the node ``scope``) without those inside another of them."""
    kept, taken = [], set()
    for node in nodes:
        parent = node.parent
        while parent is not None and parent.mem_id not in taken and parent.mem_id != scope:
            parent = parent.parent
        if parent is None or parent.mem_id not in taken:
            kept.append(node)
        taken.add(node.mem_id)
    return kept


def _matches(node: LexborNode, selector: str) -> bool:
    """Whether ``node`` itself matches ``selector`` (lexbor's ``css_matches`` also looks at descendants)."""
    return any(found.mem_id == node.mem_id for found in node.css(selector))


# HTML 4's boolean attributes: written without a value, libxml2 gives them their name as value.
_BOOLEAN = frozenset(("checked", "compact", "declare", "defer", "disabled", "ismap", "multiple", "nohref",
                      "noresize", "noshade", "nowrap", "readonly", "selected"))  # fmt: skip


def _attribute(node: LexborNode, name: str) -> tuple[str, ...]:
    """``(value,)``, ``()`` when absent; an attribute without a value reads as libxml2 reads it."""
    attributes = node.attributes
    if name not in attributes:
        return ()
    value = attributes[name]
    return (value if value is not None else name if name in _BOOLEAN else "",)


def _give(node: LexborNode, part: Part) -> Iterable[Any]:
    if part.gives == "node":
        return (Node(node),)
    if part.gives == "attr":
        return _attribute(node, part.attr)
    if part.gives == "own_text":
        return own_text(node)
    return all_text(node)


class Document(Node):
    """A parsed page: its root element, ``head``, and its elements by id."""

    __slots__ = ("ids", "parser")

    def __init__(self, html: str) -> None:
        self.parser = LexborHTMLParser(html)
        root = self.parser.root  # lexbor gives every document an <html> element, even an empty one
        if root is None:
            raise ValueError("lexbor built no document")
        super().__init__(root)
        self.ids: dict[str, tuple[int, LexborNode]] | None = None

    @property
    def head(self) -> Node | None:
        head = self.parser.head
        return Node(head) if head is not None else None

    def by_id(self, *ids: str) -> list[Node]:
        """The elements with these ids, in document order (XPath ``id('a b')``; the first of a repeated id)."""
        if self.ids is None:
            self.ids = {}
            for position, node in enumerate(self.node.css("[id]")):
                self.ids.setdefault(node.id or "", (position, node))
        found = sorted((self.ids[name] for name in ids if name in self.ids), key=itemgetter(0))
        return [Node(node) for _, node in found]
