"""The lexbor DOM of the legacy pages answers parsel's CSS queries as parsel does.

The legacy parsers were written against parsel (libxml2); their expectations on
the real pages are in test_extraction. Here each query form they use is asked of
both, on markup that has the awkward cases: matches that nest, groups whose
parts end differently, attributes that are missing, text split by comments.
"""

from __future__ import annotations

import pytest
from parsel import Selector

from crawler.parsing.pages.dom import Document, parse_query
from crawler.parsing.pages.legacy import LegacyTitlePage

HTML = """<html><head><title>T</title>
<meta property="og:title" content="The Matrix (1999)"><link rel="canonical" href="https://www.imdb.com/title/tt0133093/">
</head><body>
<div id="top" class="overview main">
  <h1 itemprop="name">The Matrix&nbsp;<span id="titleYear">(<a href="/year/1999/">1999</a>)</span></h1>
  <div class="subtext"> R | <time datetime="PT136M">2h 16min</time> |
    <a href="/genre/Action">Action</a>, <a href="/genre/Sci-Fi">Sci-Fi</a> <!-- a comment --> tail</div>
  <div class="summary_text">Thomas <b>Anderson</b> learns <i>the <b>truth</b></i>.</div>
  <div class="outer"><div class="outer">nested <span>twice</span></div> after</div>
  <img class="poster" src="/p.jpg" ismap data-lazy><img class="poster">
  <meta itemprop="contentRating" content="R"><span class="infobar"><img title="PG"></span>
</div>
<div id="second">second</div><div id="top">a repeated id</div>
<table class="cast_list">
  <tr><td class="primary_photo"><a href="/name/nm0000206/"><img></a></td>
      <td><a href="/name/nm0000206/"> Keanu Reeves</a></td>
      <td class="character"><a href="/character/ch1">Neo</a> (as Keanu)</td></tr>
  <tr><td colspan="4">Rest of cast listed alphabetically:</td></tr>
  <tr><td></td><td class="name"><a href="/name/nm0000401/">Laurence Fishburne</a></td>
      <td class="character">Morpheus</td></tr>
</table>
</body></html>"""

QUERIES = [
    "h1::text",
    "h1 ::text",
    "::text",
    ".subtext ::text",
    ".subtext a::text",
    ".subtext a::attr(href)",
    "time::attr(datetime), .subtext time::attr(datetime)",
    ".summary_text ::text",
    ".outer ::text",
    ".outer::text",
    "img.poster::attr(src)",
    "img::attr(ismap)",
    "img::attr(data-lazy)",
    "meta[itemprop=contentRating]::attr(content), .infobar img::attr(title)",
    ".infobar img::attr(title), meta[itemprop=contentRating]::attr(content)",
    "#titleYear ::text",
    "[itemprop=name]::text, span::text",
    "td.character ::text",
    "a[href*='/genre/']::text, a[href*='/year/']::text",
    "h4::text",
    'meta[property="og:title"]::attr(content)',
]


@pytest.mark.parametrize("query", QUERIES)
def test_text_and_attribute_queries_answer_as_parsel_does(query: str) -> None:
    assert Document(HTML).css(query).getall() == Selector(text=HTML).css(query).getall()


@pytest.mark.parametrize("query", ["div", ".outer", "td a", "#top div, h1", "tr"])
def test_element_queries_find_the_same_elements_in_the_same_order(query: str) -> None:
    ours = [(node.tag, node.attrib.get("class"), "".join(node.all_text())) for node in Document(HTML).css(query)]
    theirs = [
        (s.root.tag, s.attrib.get("class"), "".join(s.css("::text").getall())) for s in Selector(text=HTML).css(query)
    ]
    assert ours == theirs and ours


def test_a_query_includes_the_element_it_is_asked_of() -> None:
    top = Document(HTML).by_id("top")[0]
    assert [node.attrib.get("class") for node in top.css("div")] == ["overview main", "subtext", "summary_text",
                                                                     "outer", "outer"]  # fmt: skip
    assert top.css(".main::attr(id)").getall() == ["top"]


def test_ids_are_found_in_document_order_and_a_repeated_id_names_its_first_element() -> None:
    document = Document(HTML)
    assert [node.attrib["id"] for node in document.by_id("second", "titleYear", "top", "missing")] == [
        "top", "titleYear", "second"]  # fmt: skip
    assert document.by_id("top")[0].attrib["class"] == "overview main"


def test_rows_group_what_is_inside_each_row() -> None:
    table = Document(HTML)
    rows = table.rows("table.cast_list tr", "td.name a, td:nth-child(2) a", "td.character")
    assert [[link.attrib["href"] for link in links] for _, links, _ in rows] == [["/name/nm0000206/"], [],
                                                                                 ["/name/nm0000401/"]]  # fmt: skip
    assert [[cell.text() for cell in cells] for _, _, cells in rows] == [["Neo  (as Keanu)"], [], ["Morpheus"]]
    assert [row.tag for row, _, _ in rows] == ["tr", "tr", "tr"]


def test_rows_that_nest_share_what_is_inside_both_when_asked() -> None:
    html = '<div id="s"><div class="b"><h4>Outer</h4><div class="b"><h4>Inner</h4></div></div><h4>Out</h4></div>'
    section = Document(html).by_id("s")[0]
    nested = [[h4.text() for h4 in headings] for _, headings in section.rows("div.b", "h4", nested=True)]
    assert nested == [["Outer", "Inner"], ["Inner"]]
    assert nested == [s.css("h4 ::text").getall() for s in Selector(text=html).css("div.b")]
    assert [[h4.text() for h4 in headings] for _, headings in section.rows("div.b", "h4")] == [["Outer"], ["Inner"]]
    assert [[h4.text() for h4 in found] for _, found in section.rows("#s", "h4")] == [["Outer", "Inner", "Out"]]


def test_own_text_contents_and_siblings() -> None:
    subtext = Document(HTML).css(".subtext")[0]
    assert subtext.own_text() == Selector(text=HTML).css(".subtext::text").getall()
    parts = [part if isinstance(part, str) else part.tag for part in subtext.contents()]
    assert parts[:4] == [" R | ", "time", " |\n    ", "a"]
    h1 = Document(HTML).css("h1")[0]
    assert h1.next_sibling().attrib["class"] == "subtext" and h1.next_element("div").attrib["class"] == "subtext"
    assert h1.children("span")[0].attrib["id"] == "titleYear" and h1.first("a").attrib["href"] == "/year/1999/"


def test_a_bare_ending_cannot_be_grouped() -> None:
    with pytest.raises(ValueError, match="bare ending"):
        parse_query("a, ::text")


def test_head_elements_after_a_stray_element_are_still_read() -> None:
    # An <img> in <noscript> closes <head> for an HTML5 parser: what follows lands in <body>.
    html = ('<html><head><noscript><img src="/pixel.gif"></noscript><link rel="canonical" '
            'href="https://www.imdb.com/title/tt0133093/"><meta property="og:type" content="video.movie">'
            '</head><body><div id="title-overview-widget"><h1>The Matrix</h1></div></body></html>')  # fmt: skip
    page = LegacyTitlePage(html)
    assert page.imdb_id() == "tt0133093" and page.title_type() == "movie" and page.title() == "The Matrix"
