"""Parsers on the real saved pages of both layouts."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from crawler.extract import main as extract_main
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import PageError, detect, parse_page
from tests.conftest import FIXTURES, expected_cases, extract, page_file, read_page
from tests.expectations import mismatches

ALL_PAGES = sorted(FIXTURES.glob("*/*.html"))


@pytest.mark.parametrize("expected", expected_cases())
def test_hand_checked_facts(expected: dict[str, Any]) -> None:
    document = extract(page_file(expected["layout"], expected["file"]))
    assert mismatches(document, expected) == []


def test_every_expected_file_is_checked() -> None:
    assert len(expected_cases()) == 41


# Our own expectations, read off the pages by hand, for fields expected/ does not cover.
OWN_EXPECTATIONS = {
    ("current", "tt0133093"): {
        "title_type": "movie",
        "metascore": 73,
        "certificate": "R",
        "release_date": "1999-03-31",
        "release_country": "United States",
        "countries": ["United States", "Australia"],
        "languages": ["English"],
        "aspect_ratio": "2.39 : 1",
        "awards_summary": {
            "wins": 42,
            "nominations": 52,
            "prestigious": {"award": "Oscar", "wins": 4, "nominations": 0},
        },
        "budget": {"amount": 63_000_000, "currency": "USD", "estimated": False},
        "gross": {"amount": 467_222_728, "currency": "USD", "estimated": False, "region": "worldwide"},
        "sound_mix": ["Dolby Digital", "SDDS", "Dolby Atmos"],
        "popularity_rank": 244,
        "top_rank": 16,
        "poster_url": "https://m.media-amazon.com/images/M/MV5BNzQzOTk3OTAtNDQ0Zi00ZTVkLWI0MTEtMDllZjNkYzNjNTc4L2ltYWdlXkEyXkFqcGdeQXVyNjU0OTQ0OTY@._V1_.jpg",
        "user_reviews": 4949,
        "critic_reviews": 256,
    },
    ("legacy", "tt0133093"): {
        "metascore": 73,
        "release_country": "United States",
        "countries": ["United States", "Australia"],
        "aspect_ratio": "2.35 : 1",
        "awards_summary": {
            "wins": 37,
            "nominations": 44,
            "prestigious": {"award": "Oscar", "wins": 4, "nominations": 0},
        },
        "budget": {"amount": 63_000_000, "currency": "USD", "estimated": True},
        "gross": {"amount": 171_383_253, "currency": "USD", "estimated": False, "region": "domestic"},
        "sound_mix": ["DTS", "Dolby Digital", "SDDS"],
        "akas": ["Matrix"],
        "filming_locations": ["AON Tower, Kent Street, Sydney, New South Wales, Australia"],
        "popularity_rank": 248,
        "top_rank": 18,
        "poster_url": "https://m.media-amazon.com/images/M/MV5BMTkxNDYxOTA4M15BMl5BanBnXkFtZTgwNTk0NzQxMTE@._V1_.jpg",
    },
    ("legacy", "tt0119698"): {
        "original_title": "Mononoke-hime",
        "budget": {"amount": 2_400_000_000, "currency": "JPY", "estimated": True},
        "languages": ["Japanese"],
        "taglines": ["Live on."],
    },
    ("legacy", "tt0087544"): {"original_title": "Kaze no tani no Naushika", "sound_mix": ["Mono"]},
    ("legacy", "tt0959621"): {
        "title_type": "tvEpisode",
        "series": {
            "series_id": "tt0903747",
            "series_title": "Breaking Bad",
            "season": 1,
            "episode": 1,
            "series_start_year": None,
            "series_end_year": None,
            "previous_episode": None,
            "next_episode": "tt1054724",
        },
    },
    ("current", "tt2016511"): {
        "title_type": "tvEpisode",
        "series": {
            "series_id": "tt0412142",
            "series_title": "House",
            "season": 8,
            "episode": 3,
            "series_start_year": 2004,
            "series_end_year": 2012,
            "previous_episode": "tt2015677",
            "next_episode": "tt2021267",
        },
    },
    ("legacy", "tt0149460"): {
        "title_type": "tvSeries",
        "year": 1999,
        "end_year": 2013,
        "certificate": "TV-14",
        "series": {"episodes": 124, "seasons": 7},
    },
    ("current", "tt13396124"): {
        "title_type": "tvSeries",
        "series": {"episodes": 7, "seasons": 2},
        "votes": None,
        "top_rank": None,
    },
    ("current", "tt1839596"): {"top_rank": None},  # "Top Rated" #1101: below the Top 250
    ("legacy", "tt3291150"): {"poster_url": None},  # IMDb's logo stands in for the missing poster
    ("legacy", "tt0332452"): {"certificate": "R", "runtime_minutes": 163, "taglines": ["For Love"], "akas": ["Troya"]},
    ("legacy", "tt1853728"): {
        "certificate": "R",
        "gross": {"amount": 64_008_000, "currency": "USD", "estimated": False, "region": "domestic"},
    },
    ("current", "nm0000138"): {
        "alternate_names": ["Leonardo Di Caprio", "Leo DiCaprio"],
        "birth_place": "Hollywood, Los Angeles, California, USA",
        "professions": ["Producer", "Actor", "Writer"],
    },
    ("legacy", "nm0186505"): {
        "alternate_names": ["Brian Cranston", "Lee Stone"],
        "headshot_url": "https://m.media-amazon.com/images/M/MV5BMTA2NjEyMTY4MTVeQTJeQWpwZ15BbWU3MDQ5NDAzNDc@._V1_.jpg",
        "birth_place": "Canoga Park, California, USA",
        "professions": ["Actor", "Producer", "Director"],
    },
    ("legacy", "nm1212722"): {
        "known_for": ["tt2084970", "tt1211837", "tt1408101", "tt1355683"],
        "birth_place": "Hammersmith, London, England, UK",  # the mobile layout's #personal-details
    },
    ("legacy", "tt0903747"): {"title_type": "tvSeries", "series": {"episodes": 62, "seasons": 5}},
}


@pytest.mark.parametrize(
    ("key", "fields"), list(OWN_EXPECTATIONS.items()), ids=lambda v: "/".join(v) if isinstance(v, tuple) else ""
)
def test_own_expectations(key: tuple[str, str], fields: dict[str, Any]) -> None:
    document = extract(page_file(key[0], f"{key[1]}.html"))
    assert {name: document[name] for name in fields} == fields


NO_NOTES = {"as_name": None, "uncredited": False, "voice": False, "episodes": None, "years": None, "notes": []}


def cast_member(layout: str, page_id: str, person_id: str) -> dict[str, Any]:
    return next(m for m in extract(page_file(layout, f"{page_id}.html"))["cast"] if m["id"] == person_id)


@pytest.mark.parametrize(
    ("layout", "page_id", "person_id", "characters", "notes"),
    [
        ("legacy", "tt0133093", "nm0336802", ["Choi"], {"as_name": "Marc Gray"}),
        ("current", "tt0133093", "nm0336802", ["Choi"], {"as_name": "Marc Gray"}),
        ("legacy", "tt0076759", "nm0377120", ["Red Leader"], {"as_name": "Drewe Hemley"}),
        ("current", "tt0076759", "nm0377120", ["Red Leader"], {"as_name": "Drewe Hemley"}),
        ("legacy", "tt1839596", "nm4372817", [], {"as_name": "Rajinder Sharma"}),  # a note and no character
        ("legacy", "tt3291150", "nm0001356", [], {"notes": ["rumored"]}),
        ("legacy", "tt0095327", "nm1863342", ["Additional Voices"],
         {"as_name": "Susan Koozin", "voice": True, "notes": ["Sentai Filmworks dub"]}),
        ("current", "tt0245429", "nm0153738", ["Chihiro"], {"voice": True, "notes": ["English version"]}),
        ("current", "tt2016511", "nm5185990", ["Patient"], {"uncredited": True}),
        ("legacy", "tt0903747", "nm0186505", ["Walter White"], {"episodes": 62, "years": {"start": 2008, "end": 2013}}),
        ("legacy", "tt1375666", "nm3637500", ["Phillipa (3 years)"], {}),  # part of the name, as IMDb has it
        ("current", "tt0076759", "nm0000402", ["Princess Leia Organa"], {}),
    ],
)  # fmt: skip
def test_credit_notes_are_attributes_of_the_cast_entry_not_characters(
    layout: str, page_id: str, person_id: str, characters: list[str], notes: dict[str, Any]
) -> None:
    member = cast_member(layout, page_id, person_id)
    assert {key: member[key] for key in ("characters", *NO_NOTES)} == {"characters": characters, **NO_NOTES, **notes}


def test_no_character_holds_a_credit_note() -> None:
    notes = re.compile(r"\((?:as |uncredited|voice|rumored|\d+ episodes)|\bdub\)")
    for path in ALL_PAGES:
        for member in extract(path).get("cast") or []:
            assert not [c for c in member["characters"] if notes.search(c)], (path.name, member)


def test_cast_keeps_billing_order_and_characters() -> None:
    for layout in ("current", "legacy"):
        cast = extract(page_file(layout, "tt0133093.html"))["cast"]
        assert [m["order"] for m in cast] == list(range(len(cast)))
        assert cast[0] == {"id": "nm0000206", "name": "Keanu Reeves", "characters": ["Neo"], "order": 0, **NO_NOTES}
    futurama = extract(page_file("legacy", "tt0149460.html"))["cast"][0]
    assert futurama["characters"] == ["Philip J. Fry"]  # "(124 episodes, 1999-2013)" is not a character
    assert (futurama["episodes"], futurama["years"]) == (124, {"start": 1999, "end": 2013})
    star_wars = extract(page_file("current", "tt0076759.html"))["cast"]  # 2022 cached-answers variant
    assert [m["id"] for m in star_wars[:3]] == ["nm0000434", "nm0000148", "nm0000402"]


def test_person_filmography() -> None:
    for layout, name, credit in [
        ("legacy", "nm0186505", {"title_id": "tt2267968", "category": "actor", "year": 2015}),
        ("legacy", "nm0000129", {"title_id": "tt0790724", "category": "actor", "year": 2013}),
        ("legacy", "nm1212722", {"title_id": "tt1211837", "category": "actor", "year": 2016}),
        ("current", "nm0000138", {"title_id": "tt1375666", "category": "actor", "year": 2010}),
    ]:
        assert credit in extract(page_file(layout, f"{name}.html"))["filmography"]


def test_mobile_credits_read_the_same_where_a_cell_holds_nested_matches() -> None:
    """The 2016 mobile page's credits are read a column at a time; a label inside a label is read as before."""
    label = """<span class="filmo-first ">
                                        Known For
                                    </span>"""
    nested = '<span class="filmo-first "><span>Known For</span></span>'
    whole = extract(page_file("legacy", "nm1212722.html"))
    changed = variant("legacy", "nm1212722", (label, nested))
    assert changed["known_for"] == whole["known_for"] and "tt2084970" in whole["known_for"]
    assert changed["filmography"] == whole["filmography"] and len(whole["filmography"]) > 20


CORE = ("imdb_id", "year", "title_type")
BOTH_LAYOUTS = sorted(
    p.stem for p in (FIXTURES / "current").glob("tt*.html") if (FIXTURES / "legacy" / p.name).exists()
)


@pytest.mark.parametrize("page_id", BOTH_LAYOUTS)
def test_both_layouts_agree_on_core_fields(page_id: str) -> None:
    """Captures years apart: ratings move, but identity, year, type, runtime and people barely do.

    IMDb itself edited some facts between captures (Grave of the Fireflies lost a
    minute of runtime; Eli Roth's director credit for the film-within-the-film of
    Inglourious Basterds was dropped), so runtime may differ by a minute or two
    and the directors must overlap rather than match.
    """
    current = extract(page_file("current", f"{page_id}.html"))
    legacy = extract(page_file("legacy", f"{page_id}.html"))
    for name in CORE:
        if legacy[name] is not None and current[name] is not None:
            assert legacy[name] == current[name], name
    if legacy["runtime_minutes"] and current["runtime_minutes"]:
        assert abs(legacy["runtime_minutes"] - current["runtime_minutes"]) <= 2
    if legacy["directors"]:
        assert {d["id"] for d in legacy["directors"]} & {d["id"] for d in current["directors"]}
    titles = {current["title"], current["original_title"]}
    assert legacy["title"] in titles or legacy["original_title"] in titles
    assert set(legacy["genres"]) & set(current["genres"])


def test_layout_is_recorded() -> None:
    assert extract(page_file("current", "tt0133093.html"))["layout"] == "current"
    assert extract(page_file("legacy", "tt0133093.html"))["layout"] == "legacy"


@pytest.mark.parametrize("path", ALL_PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_page_parses_with_an_id_and_a_name(path: Path) -> None:
    document = extract(path)
    assert document["imdb_id"] == path.stem
    assert document.get("title") or document.get("name")
    assert document["schema_version"] == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("<html><body>Hello</body></html>", "not an IMDb"),
        (read_page(page_file("current", "tt0133093.html"))[:50_000], "truncated"),
    ],
)
def test_bad_pages_raise_page_error(text: str, message: str) -> None:
    with pytest.raises(PageError, match=message):
        parse_page(text)


def test_detect_kind_and_layout() -> None:
    assert detect(read_page(page_file("current", "nm0000138.html"))) == ("person", "current")
    assert detect(read_page(page_file("legacy", "nm0000217.html"))) == ("person", "legacy")
    assert detect(read_page(page_file("legacy", "tt0332452.html"))) == ("title", "legacy")


def test_a_legacy_page_is_known_by_its_first_200_000_characters() -> None:
    def page(head: str, late: str, at: int) -> str:  # ``late`` starting at character ``at``
        return head + "x" * (at - len(head)) + late + "</body></html>"

    title, og = "<html><head><title>IMDb</title>", '<meta property="og:type" content="video.movie"></head><body>'
    limit = 200_000
    assert detect(page(title, "overview-top", limit - len("overview-top"))) == ("title", "legacy")
    assert detect(page(title + og, "name-overview", limit - len("name-overview"))) == ("person", "legacy")
    assert detect(page(title + og, "name-overview", limit - len("name-overview") + 1)) == ("title", "legacy")
    for late in (page(title, "overview-top", limit - len("overview-top") + 1), page("<html>" + og, "IMDb", limit)):
        with pytest.raises(PageError, match="not an IMDb"):
            detect(late)


def test_extract_command_reports_bad_pages_and_prints_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = tmp_path / "latin1.html"
    latin1.write_bytes("<html>caf\xe9</html>".encode("latin-1"))
    empty = tmp_path / "empty.html"
    empty.write_text("")
    good = page_file("legacy", "tt0903747.html")  # begins with a byte-order mark
    status = extract_main([str(latin1), str(good), str(empty)])
    out, err = capsys.readouterr()
    assert status == 1
    assert out.count("\n") == 1 and '"_id": "tt0903747"' in out
    assert "not UTF-8" in err and "empty page" in err


def test_coverage_report_lists_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    extract_main(["--coverage", *map(str, ALL_PAGES)])
    out = capsys.readouterr().out
    for name in (
        "budget",
        "gross",
        "cast",
        "akas",
        "companies",
        "awards_summary",
        "series",
        "filmography",
        "known_for",
    ):
        assert f"  {name} " in out


def variant(layout: str, page_id: str, *replacements: tuple[str, str]) -> dict[str, Any]:
    """A fixture page with parts replaced (as other pages of the same layout have them), extracted."""
    text = read_page(page_file(layout, f"{page_id}.html"))
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return asdict(load_item(parse_page(text, None)))


DJANGO_TITLE = '<meta property="og:title" content="Django Unchained (2012)"/>'


@pytest.mark.parametrize(
    ("og_title", "title_type"),
    [
        ("Django Unchained (TV Movie 2012)", "tvMovie"),
        ("Django Unchained (Video 2012)", "video"),
        ("Django Unchained (TV Special 2012)", "tvSpecial"),
        ("Django Unchained (TV Mini-Series 2012– )", "tvMiniSeries"),
        ("Django Unchained (TV Short 2012)", "tvShort"),
        ("Django Unchained (Video Game 2012)", "videoGame"),
        ("Django Unchained (2012)", "movie"),
    ],
)
def test_legacy_title_types_are_imdb_type_ids(og_title: str, title_type: str) -> None:
    document = variant("legacy", "tt1853728", (DJANGO_TITLE, f'<meta property="og:title" content="{og_title}"/>'))
    assert document["title_type"] == title_type and document["year"] == 2012


def test_a_legacy_short_film_is_typed_short() -> None:
    genre = 'href="/genre/Western"   itemprop="genre"\n    >Western</a>'
    document = variant("legacy", "tt1853728", (genre, genre.replace("Western", "Short")))
    assert "Short" in document["genres"] and document["title_type"] == "short"


def test_legacy_episode_year_comes_from_og_title() -> None:
    document = extract(page_file("legacy", "tt0959621.html"))
    assert (document["title_type"], document["year"]) == ("tvEpisode", 2008)


def test_star_box_original_title_and_worldwide_gross() -> None:
    header = '<h1 class="header" itemprop="name">\nDjango Unchained\n'
    original = header + '<span class="title-extra">Django desencadenado <i>(original title)</i></span>\n'
    gross = "Gross:</h4> $64,008,000\n(USA)"
    document = variant("legacy", "tt1853728", (header, original), (gross, "Gross:</h4> $425,368,238\n(Worldwide)"))
    assert document["original_title"] == "Django desencadenado"
    assert document["gross"] == {"amount": 425_368_238, "currency": "USD", "estimated": False, "region": "worldwide"}
    assert extract(page_file("legacy", "tt1853728.html"))["gross"]["region"] == "domestic"  # "(USA)"


def test_a_2012_2014_episode_header_gives_series_season_and_episode() -> None:
    """Episode pages of 2012-2014 name their series and number in h2.tv_header, before the title."""
    page = read_page(page_file("legacy", "tt0306414.html"))  # a 2014 page of that markup (#overview-top)
    header = ('<h2 class="tv_header">\n<a href="/title/tt9990001/?ref_=tt_ov_inf" > The Series</a>:\n'
              '<span class="nobr">Season 1, Episode 3\n</span>\n</h2>\n')  # fmt: skip
    episode = page.replace('<td id="overview-top">', '<td id="overview-top">\n' + header, 1)
    series = asdict(load_item(parse_page(episode)))["series"]
    assert {k: series[k] for k in ("series_id", "series_title", "season", "episode")} == {
        "series_id": "tt9990001", "series_title": "The Series", "season": 1, "episode": 3,
    }  # fmt: skip
