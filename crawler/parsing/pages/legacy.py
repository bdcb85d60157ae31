"""Parsers for the server-rendered IMDb layouts (2010–2020).

Three generations share most of their markup and are read by one set of
selectors with fallbacks: 2014–2020 (``title_wrapper``, ``credit_summary_item``,
``#titleDetails``), 2010–2014 (``#overview-top``, ``infobar``, ``star-box``) and
the mobile-style 2016 name page. ``txt-block`` sections (``<h4>Budget:</h4> …``)
are read by their heading, whatever block they sit in. The 2019–2020 pages also
carry ``application/ld+json``, used where the markup says nothing.

The DOM is lexbor's (``crawler.parsing.pages.dom``), asked parsel's CSS
queries; cast lists and filmographies are read a column at a time
(``Node.rows``), not with a query per row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from crawler.parsing.limits import PageError
from crawler.parsing.pages.base import PERSON, TITLE, ld_main, ld_people
from crawler.parsing.pages.credits import split_character_text
from crawler.parsing.pages.dom import Document, Matches, Node
from crawler.parsing.processors import clean_text, imdb_id

LAYOUT = "legacy"
# "(124 episodes, 1999-2013)", "... 124 episodes, 1999-2013", "(uncredited)", "(voice)"
_SEE_MORE = re.compile(r"\s*(See more|See full summary|See full bio|Ver más|Bővebben)\s*»?.*$", re.I | re.S)
OG_TYPES = {
    "video.movie": "movie",
    "movie": "movie",
    "video.tv_show": "tvSeries",
    "video.episode": "tvEpisode",
}
LD_TYPES = {"Movie": "movie", "TVSeries": "tvSeries", "TVEpisode": "tvEpisode"}
# The label legacy headers put before the year ("The Wire (TV Series 2002–2008)", "… (TV Movie 1999)"),
# as IMDb's own title type ids (those of the current layout and of the datasets).
LABEL_TYPES = {
    "tv series": "tvSeries", "tv mini-series": "tvMiniSeries", "tv mini series": "tvMiniSeries",
    "tv movie": "tvMovie", "tv episode": "tvEpisode", "tv special": "tvSpecial", "tv short": "tvShort",
    "video game": "videoGame", "video": "video", "short": "short", "podcast series": "podcastSeries",
    "podcast episode": "podcastEpisode",
}  # fmt: skip
_LABEL = re.compile(r"\((" + "|".join(sorted(map(re.escape, LABEL_TYPES), key=len, reverse=True)) + r")\b", re.I)
_BARE_LABEL = re.compile(
    r"\b(TV Series|TV Mini-Series|TV Mini Series|TV Movie|TV Special|TV Short|TV Episode|"
    r"Video Game|Video)\b"
)
_LABEL_YEAR = re.compile(r"\((?:" + "|".join(map(re.escape, LABEL_TYPES)) + r")?\s*(\d{4})", re.I)


_TXT_BLOCKS = "div.txt-block, div.credit_summary_item, div.see-more.canwrap"
# A cast row's actor: the link in the actor's cell (itemprop, class "name" or the second cell).
_CAST_LINK = "td[itemprop=actor] a, td.name a, td:nth-child(2) a"
_FILMO_TITLE = "b > a[href], a[href*='/title/']"
_MOBILE_LABEL, _MOBILE_YEAR = ".filmo-title span::text", ".filmo-caption small:last-child ::text"
_MOBILE_CELLS = (".filmo-title span", ".filmo-caption a", ".filmo-caption small:last-child")
_YEAR = re.compile(r"\d{4}")


def texts(strings: list[str]) -> list[str]:
    """Cleaned, non-empty strings of a query's text nodes."""
    return [t for t in (clean_text(x) for x in strings) if t]


def joined(strings: list[str]) -> str | None:
    """Text nodes as one cleaned string."""
    return clean_text(" ".join(strings))


def _first(nodes: list[Node], texts: Any) -> str | None:
    """The first text node of ``nodes`` (in order), as ``::text``'s ``get()`` gives it."""
    return next((text for node in nodes for text in texts(node)), None)


def people(links: Matches) -> list[dict[str, Any]]:
    """``[{id, name}]`` from ``<a href="/name/nm…">Name</a>`` links, first occurrence of each."""
    found, seen = [], set()
    for link in links:
        pid = imdb_id(link.attrib.get("href"))
        name = clean_text(link.text())
        if pid and pid.startswith("nm") and pid not in seen and name and "more credit" not in name:
            seen.add(pid)
            found.append({"id": pid, "name": name})
    return found


def _og_year(og_title: str) -> str | None:
    """The year of an og:title such as '"Breaking Bad" Pilot (TV Episode 2008)' or 'Troy (2004)'."""
    found = _LABEL_YEAR.search(og_title)
    return found.group(1) if found else None


class LegacyPage:
    """Common access to a legacy page's DOM and ld+json."""

    layout = LAYOUT
    kind = ""

    def __init__(self, html: str, url: str | None = None) -> None:
        self.html = html
        self.url = url
        self.sel = Document(html)

    @cached_property
    def ld(self) -> dict[str, Any]:
        return ld_main(self.html)

    def meta(self, query: str) -> str | None:
        """The first answer to ``query`` in the page's head (or anywhere, where the head ended early)."""
        found = self.head.css(query).get()
        return found if found is not None or self.head is self.sel else self.sel.css(query).get()

    def _canonical_id(self, prefix: str) -> str | None:
        for candidate in self._naming():
            found = imdb_id(candidate)
            if found and found.startswith(prefix):
                return found
        return None

    def _naming(self) -> Iterator[Any]:
        """Where the page names itself, in turn: most pages do in their first ``<link rel="canonical">``."""
        yield self.meta('link[rel="canonical"]::attr(href)')
        yield self.meta('meta[property="og:url"]::attr(content)')
        yield self.meta('meta[property="pageId"]::attr(content)')
        yield self.ld.get("url")
        yield self.url

    @cached_property
    def top(self) -> Node:
        """The page's overview block (title, rating, credits), or the whole page when not found.

        Most header fields are looked up here: each query then scans a few
        hundred nodes instead of the whole document.
        """
        found = self.sel.by_id("title-overview-widget", "overview-top", "name-overview-widget", "name-overview")
        return found[0] if found else self.sel

    def find(self, css: str) -> Matches:
        """Matches in the overview block, else in the whole page of older layouts (the 2010 header sits outside it)."""
        found = self.top.css(css)
        return found if found or self.sectioned else self.sel.css(css)

    @cached_property
    def sectioned(self) -> bool:
        """The 2012–2020 title layout, whose content sits in named sections (``#titleDetails``…)."""
        return bool(self.sel.by_id("titleDetails"))

    def sections(self, *ids: str, fallback: bool = True) -> list[Node]:
        """The page sections with these ids, to search instead of the whole document.

        A query then touches a few hundred nodes instead of the whole
        document. When none of the sections is there, older pages (not
        ``sectioned``) are searched whole, unless ``fallback`` is false; on a
        sectioned page the content is simply absent.
        """
        return self.sel.by_id(*ids) or ([self.sel] if fallback and not self.sectioned else [])

    def within(self, css: str, *ids: str, fallback: bool = True) -> Matches:
        """Matches of ``css`` inside the page sections with these ids (``sections``)."""
        return Matches(match for section in self.sections(*ids, fallback=fallback) for match in section.css(css))

    @cached_property
    def head(self) -> Node:
        return self.sel.head or self.sel

    @cached_property
    def blocks(self) -> dict[str, Node]:
        """``txt-block`` sections keyed by their heading (``"budget"``, ``"country"``…)."""
        found: dict[str, Node] = {}
        # Pages with a #titleDetails section (2012–2020) keep the blocks read here
        # in three sections; older ones anywhere in the page.
        scopes = (
            self.sel.by_id("title-overview-widget", "titleStoryLine", "titleDetails") if self.sectioned else [self.sel]
        )
        for block, headings in (found for scope in scopes for found in scope.rows(_TXT_BLOCKS, "h4", nested=True)):
            heading = clean_text(" ".join(h4.text() for h4 in headings))
            if heading:
                key = heading.rstrip(":").strip().lower()
                if key not in found:
                    found[key] = block
        return found

    def block(self, *names: str) -> Node | None:
        """The first ``txt-block`` whose heading is one of ``names``."""
        for name in names:
            if name in self.blocks:
                return self.blocks[name]
        return None

    def block_text(self, *names: str) -> str | None:
        """A block's own text without its heading and "See more" links."""
        found = self.block(*names)
        if found is None:
            return None
        parts: list[str] = []
        for child in found.contents():  # its text and its elements' but the heading and "see more" links
            if isinstance(child, str):
                parts.append(child)
            elif child.tag != "h4" and "see-more" not in (child.attrib.get("class") or ""):
                parts += child.all_text()
        text = joined(parts)
        return clean_text(_SEE_MORE.sub("", text).rstrip("» ")) if text else None

    def block_links(self, *names: str) -> list[str]:
        found = self.block(*names)
        if found is None:
            return []
        links = (clean_text(a.text()) for a in found.css("a"))
        return [t for t in links if t and not _SEE_MORE.fullmatch(t) and not t.startswith("See ")]


class LegacyTitlePage(LegacyPage):
    """A ``/title/tt…/`` page of the legacy layouts."""

    kind = TITLE

    def __init__(self, html: str, url: str | None = None) -> None:
        super().__init__(html, url)
        self.id = self._canonical_id("tt")
        if not self.id:
            raise PageError("legacy page without a title id", reason="no_id")

    def imdb_id(self) -> Any:
        return self.id

    def _h1(self) -> Matches | None:
        return self.find("h1")[:1] or None  # the first of .title_wrapper h1, h1.header, h1[itemprop=name]…

    def title(self) -> Any:
        h1 = self._h1()
        if h1:
            first = clean_text(next(iter(h1[0].own_text()), None)) or clean_text(
                h1[0].css("span[itemprop=name]::text, span.itemprop::text").get()
            )
            if first:
                return first
        return self.ld.get("name")

    def original_title(self) -> Any:
        original = self.top.css(".originalTitle::text, .title-extra[itemprop=name]::text").get()
        if not original:  # 2011–2012 star-box pages: <span class="title-extra">Name <i>(original title)</i></span>
            for extra in self.top.css(".title-extra"):
                if "original title" in (joined(extra.css("i ::text")) or "").lower():
                    original = joined(extra.own_text())
                    break
        return original or self.ld.get("name")

    @cached_property
    def og_title(self) -> str:
        return self.meta('meta[property="og:title"]::attr(content)') or ""

    def title_type(self) -> Any:
        # The header's own label first ("TV Movie", "Short", "Video"): ld+json and og:type say "movie" for those.
        header = " ".join(self.top.css(".subtext ::text, .infobar ::text").getall()[:40]).replace("\xa0", " ")
        label = _LABEL.search(self.og_title) or _BARE_LABEL.search(header)
        found = LABEL_TYPES.get(label.group(1).lower()) if label else None
        found = found or LD_TYPES.get(self.ld.get("@type", ""))
        found = found or OG_TYPES.get(self.meta('meta[property="og:type"]::attr(content)') or "")
        if found == "movie" and "Short" in self.genres():
            return "short"  # a short film: genre "Short", no TV or video label
        return found

    @cached_property
    def _year_text(self) -> str | None:  # read by year and end_year
        for css in ("#titleYear ::text", "h1.header span.nobr ::text", "h1.header > span ::text"):
            found = joined(self.find(css))
            if found and _YEAR.search(found):
                return found
        series = self.top.css(".subtext a[title*='release dates']::text, .subtext a:last-child::text").getall()
        for text in series:
            if re.search(r"\(\d{4}", text or ""):
                return text
        return None

    def year(self) -> Any:
        return self._year_text or self.ld.get("datePublished") or _og_year(self.og_title)

    def end_year(self) -> Any:
        return self._year_text

    def rating(self) -> Any:
        return (
            self.top.css("[itemprop=ratingValue]::text").get()
            or self.top.css(".rating-rating::text").get()
            or (self.ld.get("aggregateRating") or {}).get("ratingValue")
        )

    def votes(self) -> Any:
        count = self.top.css("[itemprop=ratingCount]::text").get()
        if count:
            return count
        # The first link to the ratings whose first text says "votes" (2010–2012 star-box).
        votes = next((own[0] for a in self.top.css("a[href*=ratings]") if (own := a.own_text()) and "votes" in own[0]),
                     None)  # fmt: skip
        return votes or (self.ld.get("aggregateRating") or {}).get("ratingCount")

    def metascore(self) -> Any:
        score = self.top.css(".metacriticScore span::text").get()
        if score:
            return score
        links = [a for a in self.top.css("a[href*=criticreviews]") if "Metascore" in a.string()]
        star = [text for a in links for text in a.all_text()]
        return clean_text(" ".join(star)) if star else None

    def top_rank(self) -> Any:
        labels = self.within("a[href*='/chart/top'] ::text", "titleAwardsRanks", "title-overview-widget")
        for label in labels.getall():  # "Top Rated Movies #18"
            found = re.search(r"Top Rated (?:Movies|TV)\s*#\s*(\d+)", label)
            if found:
                return found.group(1)
        return None

    def poster_url(self) -> Any:
        found = self.top.css(".poster img::attr(src), #img_primary img[itemprop=image]::attr(src)").get()
        return found or self.meta('meta[property="og:image"]::attr(content)') or self.ld.get("image")

    def popularity_rank(self) -> Any:
        for item in self.top.css(".titleReviewBarSubItem, .titleReviewBarItem"):
            if "Popularity" in (clean_text(item.text()) or ""):
                return item.css(".subText::text").get()
        meter = self.block_text("moviemeter", "tvmeter")
        return meter

    @cached_property
    def _review_links(self) -> Matches:
        return self.top.css("a[href*=reviews], a[href*=usercomments]")

    def _review_count(self, kind: str) -> Any:
        for link in self._review_links:
            text = clean_text(link.text()) or ""
            if kind in text.lower() and re.search(r"\d", text):
                return text
        return None

    def user_reviews(self) -> Any:
        return self._review_count("user") or self._review_count("reviews")

    def critic_reviews(self) -> Any:
        return self._review_count("critic")

    def certificate(self) -> Any:
        rating = self.find("meta[itemprop=contentRating]::attr(content), .infobar img::attr(title)").get()
        if rating:
            return rating
        mpaa_css = "span[itemprop=contentRating]::text"
        mpaa = clean_text(
            self.within(mpaa_css, "titleStoryLine", "overview-top").get()
            or self.within(mpaa_css, "maindetails_center_bottom", fallback=False).get()  # 2011 layout
        )
        if mpaa:
            return re.sub(r"^Rated (\S+)\b.*$", r"\1", mpaa)
        first = clean_text(self.top.css(".subtext::text").get())
        if first and first != "|":
            return first
        return self.ld.get("contentRating")

    def runtime_minutes(self) -> Any:
        return (
            self.top.css("time[itemprop=duration]::attr(datetime), .subtext time::attr(datetime)").get()
            or self.block_text("runtime")
            or self._infobar_runtime()
            or self.ld.get("duration")
        )

    def _infobar_runtime(self) -> str | None:
        match = re.search(r"(\d+)\s*min", joined(self.find(".infobar ::text")) or "")
        return match.group(0) if match else None

    def genres(self) -> list[Any]:
        return list(self._genres)  # also read by title_type

    @cached_property
    def _genres(self) -> list[Any]:
        # The header shows the first three genres; the storyline block and ld+json list all.
        found = texts(
            self.find(
                ".subtext [itemprop=genre]::text, .infobar [itemprop=genre]::text, "
                ".subtext a[href*='genre']::text, .infobar a[href*='/genre/']::text"
            )
        )
        found += self.block_links("genres", "genre")
        ld_genre = self.ld.get("genre")
        return found + (ld_genre if isinstance(ld_genre, list) else [ld_genre] if ld_genre else [])

    def release_date(self) -> Any:
        return self.block_text("release date") or self.top.css(".subtext a[title*='release dates']::text").get()

    def plot(self) -> Any:
        summary = joined(self.top.css(".summary_text ::text, #overview-top p[itemprop=description] ::text"))
        if summary:
            return _SEE_MORE.sub("", summary)
        paragraphs = [clean_text(p.text()) for p in self.top.css("#overview-top > p")]
        return next((p for p in paragraphs if p), None) or self.ld.get("description")

    def storyline(self) -> Any:
        story = joined(
            self.within(
                "#titleStoryLine [itemprop=description] ::text, #titleStoryLine > div.inline p ::text",
                "titleStoryLine",
                fallback=False,
            )
        )
        if story:
            story = re.sub(r"\s*Written by\s.*$", "", story, flags=re.S)
        return story

    def _credits(self, *headings: str) -> list[dict[str, Any]]:
        found = self.block(*headings)
        return people(found.css("a")) if found is not None else []

    def directors(self) -> list[dict[str, Any]]:
        found = self._credits("director", "directors", "creator", "creators")
        return found or people(self.top.css("[itemprop=director] a")) or _ld_ids(self.ld.get("director"))

    def writers(self) -> list[dict[str, Any]]:
        found = self._credits("writer", "writers")
        return found or _ld_ids(self.ld.get("creator"))

    def stars(self) -> list[dict[str, Any]]:
        return self._credits("stars", "star") or people(self.top.css(".title_wrapper ~ * [itemprop=actors] a"))

    def cast(self) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = []
        for section in self.sections("titleCast"):
            for _, links, cells in section.rows("table.cast_list tr", _CAST_LINK, "td.character"):
                # Rows without an actor's link (headings, "Rest of cast listed alphabetically") are skipped.
                pid = imdb_id(links[0].attrib.get("href")) if links else None
                if pid:
                    characters, notes = split_character_text(clean_text(" ".join(cell.text() for cell in cells)))
                    members.append({"id": pid, "name": clean_text(links[0].text()), "characters": characters,
                                    "order": len(members), **notes})  # fmt: skip
        return members

    def recommendations(self) -> list[Any]:
        ids = self.within(
            "[data-tconst].rec_item::attr(data-tconst), [data-tconst].rec_overview::attr(data-tconst)", "titleRecs"
        ).getall()
        return list(dict.fromkeys(ids))

    def keywords(self) -> list[Any]:
        found = texts(self.within("[itemprop=keywords]::text", "titleStoryLine"))
        return found or self.block_links("plot keywords")

    def taglines(self) -> list[Any]:
        tagline = self.block_text("taglines", "tagline")
        return [tagline] if tagline else []

    def countries(self) -> list[Any]:
        return self.block_links("country", "countries")

    def languages(self) -> list[Any]:
        return self.block_links("language", "languages")

    def akas(self) -> list[Any]:
        aka = self.block_text("also known as")
        return [aka] if aka else []

    def filming_locations(self) -> list[Any]:
        return self.block_links("filming locations", "filming location")

    def budget(self) -> Any:
        return self.block_text("budget")

    def gross(self) -> Any:
        for heading, region in (
            ("cumulative worldwide gross", "worldwide"),
            ("gross usa", "domestic"),
            ("gross", "domestic"),
        ):
            text = self.block_text(heading)
            if text:
                # 2011–2012 pages: "Gross: $64,008,000 (USA)" or "$825,532,764 (Worldwide)".
                if heading == "gross" and re.search(r"\(\s*worldwide\s*\)", text, re.I):
                    region = "worldwide"
                return {"text": text, "region": region}
        return None

    def companies(self) -> list[dict[str, Any]]:
        found = self.block("production co", "production companies")
        if found is None:
            return []
        return [
            {"id": imdb_id(a.attrib.get("href")), "name": clean_text(a.text())}
            for a in found.css("a[href*='/company/']")
        ]

    def sound_mix(self) -> list[Any]:
        return self.block_links("sound mix")

    def color(self) -> list[Any]:
        return self.block_links("color")

    def aspect_ratio(self) -> Any:
        return self.block_text("aspect ratio")

    def awards_summary(self) -> Any:
        text = joined(self.within("[itemprop=awards] ::text", "titleAwardsRanks", "awards"))
        return text or None

    def series(self) -> dict[str, Any] | None:
        parent = self.top.css(".titleParent a::attr(href), h2.tv_header a::attr(href)").get()
        if parent:
            # 2015-2020: "Season 5 | Episode 14" in .bp_heading; 2012-2014: "Season 5, Episode 14" in a
            # span.nobr of h2.tv_header, beside the series link.
            heading = joined(self.top.css(".bp_heading::text")) or joined(self.top.css("h2.tv_header .nobr::text"))
            numbers = re.findall(r"(?:Season|Episode)\s*(\d+)", heading or "")
            title = self.top.css(".titleParent a::text").get() or self.top.css("h2.tv_header a::text").get()
            return {
                "series_id": imdb_id(parent),
                "series_title": clean_text(title),
                "season": int(numbers[0]) if len(numbers) > 0 else None,
                "episode": int(numbers[1]) if len(numbers) > 1 else None,
                "previous_episode": self.top.css("a.np_prev::attr(href), a.np_previous::attr(href)").get(),
                "next_episode": self.top.css("a.np_next::attr(href)").get(),
            }
        seasons = self.within(".seasons-and-year-nav a[href*='season=']::text", "title-episode-widget").getall()
        # The "Episode Guide" button of the header: <span class="bp_sub_heading">124 episodes</span>
        guide = joined(self.top.css(".np_episode_guide .bp_sub_heading::text")) or ""
        episodes = re.search(r"(\d[\d,]*)\s+episodes?", guide)
        count = episodes.group(1).replace(",", "") if episodes else None
        if seasons or count:
            return {"episodes": count, "seasons": len(seasons) or None}
        return None


class LegacyPersonPage(LegacyPage):
    """A ``/name/nm…/`` page of the legacy layouts."""

    kind = PERSON

    def __init__(self, html: str, url: str | None = None) -> None:
        super().__init__(html, url)
        self.id = self._canonical_id("nm")
        if not self.id:
            raise PageError("legacy page without a name id", reason="no_id")

    def imdb_id(self) -> Any:
        return self.id

    def name(self) -> Any:
        h1 = self.top.css("h1")[:1] or self.sel.css("h1")[:1]  # the first of h1.header, #name-overview h1…
        if h1:
            name = clean_text(h1.css("[itemprop=name]::text, span.itemprop::text").get()) or clean_text(
                next(iter(h1[0].own_text()), None)
            )
            if name:
                return name
        return self.ld.get("name")

    def birth_date(self) -> Any:
        return self.find("time[itemprop=birthDate]::attr(datetime)").get() or self.ld.get("birthDate")

    def birth_place(self) -> Any:
        return self.find("a[href*='birth_place']::text").get() or self._personal_detail("Born")

    def death_date(self) -> Any:
        return self.find("time[itemprop=deathDate]::attr(datetime)").get() or self.ld.get("deathDate")

    def death_place(self) -> Any:
        return self.find("a[href*='death_place']::text").get() or self._personal_detail("Died")

    def headshot_url(self) -> Any:
        found = self.find("#name-poster::attr(src)").get()
        return found or self.meta('meta[property="og:image"]::attr(content)') or self.ld.get("image")

    def alternate_names(self) -> list[Any]:
        text = self.block_text("alternate names") or ""
        return [name for name in (clean_text(part) for part in text.split("|")) if name]

    def _personal_detail(self, heading: str) -> str | None:
        """Mobile-layout pages: the place under "Born"/"Died" in #personal-details (the span after the date)."""
        for h3 in self.within("h3", "personal-details"):
            block = h3.next_sibling() if heading in h3.string() else None
            if block is None or block.tag != "p":
                continue
            spans = block.children("span")
            dated = [n for n, span in enumerate(spans) if span.first("time") is not None]
            after = spans[dated[0] + 1 :] if dated else spans[-1:]
            return clean_text(after[0].text()) if after else None
        return None

    def professions(self) -> list[Any]:
        found = texts(self.find("[itemprop=jobTitle]::text"))
        if not found:
            line = joined(self.top.css("#name-overview > p ::text")) or ""
            found = [p for p in (clean_text(x) for x in line.split("|")) if p]
        job = self.ld.get("jobTitle")
        return found or (job if isinstance(job, list) else [job] if job else [])

    def known_for(self) -> list[Any]:
        links = self.within("a::attr(href)", "knownfor", "knownfor-carousel", fallback=False).getall()
        ids = [i for i in (imdb_id(h) for h in links) if i and i.startswith("tt")]
        ids = ids or [row["title_id"] for row in self._mobile_credits if row["category"] == "known for"]
        return list(dict.fromkeys(ids))

    def filmography(self) -> list[dict[str, Any]]:
        rows = []
        for head in self.within("#filmography .head, div.head[id^='filmo-head']", "filmography"):
            category = (
                head.attrib.get("data-category")
                or clean_text(head.css("a[name]::text").get())
                or head.attrib.get("id", "").replace("filmo-head-", "")
            )
            category = (category or "").lower() or None
            section = head.next_element("div")
            for _, links, years in section.rows("div.filmo-row", _FILMO_TITLE, ".year_column") if section else ():
                title_id = imdb_id(links[0].attrib.get("href") if links else "")
                if title_id:
                    year = _YEAR.search(years[0].text() if len(years) == 1 else " ".join(node.text() for node in years))
                    rows.append({"title_id": title_id, "category": category, "year": year and int(year.group(0))})
        return rows or [row for row in self._mobile_credits if row["category"] != "known for"]

    @cached_property
    def _mobile_credits(self) -> list[dict[str, Any]]:
        """The 2016 mobile-style page: one carousel, groups marked by a label on their first entry."""
        rows, category = [], None
        for section in self.sections("filmography", fallback=False):
            # A column at a time (a query per entry costs ~15 µs, and a page lists hundreds); an entry whose
            # cell holds several matches, which could nest, is asked as before.
            for entry, spans, links, years in section.rows("li", *_MOBILE_CELLS, nested=True):
                label = clean_text(_first(spans, Node.own_text) if len(spans) < 2 else entry.css(_MOBILE_LABEL).get())
                if label:
                    category = label.lower()
                title_id = imdb_id(next((a.attrib["href"] for a in links if "href" in a.attrib), None))
                if title_id and category:
                    text = joined(years[0].all_text() if len(years) == 1 else entry.css(_MOBILE_YEAR).getall())
                    year = _YEAR.search(text or "")
                    rows.append({"title_id": title_id, "category": category, "year": year and int(year.group(0))})
        return rows

    def bio(self) -> Any:
        bio = joined(
            self.top.css(".name-trivia-bio-text [itemprop=description] ::text, span[itemprop=description] ::text")
        )
        if not bio:
            bio = joined(self.top.css("#name-overview .media-body p ::text, .name-trivia-bio-text .inline ::text"))
        return _SEE_MORE.sub("", bio) if bio else self.ld.get("description")


def _ld_ids(value: Any) -> list[dict[str, Any]]:
    return [{"id": imdb_id(p["id"]), "name": p["name"]} for p in ld_people(value)]
