"""Credit notes: what a cast entry says besides the character's name, read apart from it.

Legacy pages write notes into the character cell: ``Choi (as Marc Gray)``,
``Additional Voices (Sentai Filmworks dub) (as Susan Koozin)``, ``(rumored)``,
``Narrator (voice) (uncredited)``, ``... 62 episodes, 2008-2013``. Current
pages give them as credit attributes (``CreditedAsCreditAttribute`` "as Marc
Gray", "voice", "uncredited", "English version") and ``episodeCredits``. Both
become the same attributes of the cast entry:

* ``as_name``: the name the person was credited under;
* ``uncredited``, ``voice``: booleans;
* ``episodes``: the number of episodes of a series the person is in, and
  ``years``: ``{"start", "end"}`` of those episodes;
* ``notes``: any other note IMDb attaches to a credit (``rumored``,
  ``archive footage``, ``Sentai Filmworks dub``, ``English version``…).

A parenthesis that is none of these stays in the character's name, as current
pages have it: ``Red Two (Wedge)``, ``Phillipa (3 years)``.
"""

from __future__ import annotations

import re
from typing import Any

from crawler.parsing.pages.base import dicts
from crawler.parsing.processors import clean_text, to_count

_PAREN = re.compile(r"\(([^()]*)\)")
_EPISODES = re.compile(
    r"^(?:\.\.\.\s*)?(\d[\d,]*)\s+episodes?(?:\s*,\s*(\d{4})(?:\s*[-–]\s*(\d{4}))?)?\s*$", re.IGNORECASE
)
# Bare episode counts of legacy series pages: "... 62 episodes, 2008-2013" with no parenthesis.
_BARE_EPISODES = re.compile(r"(?:\.\.\.\s*)?\b\d[\d,]*\s+episodes?(?:\s*,\s*\d{4}(?:\s*[-–]\s*\d{4})?)?", re.IGNORECASE)
# Notes IMDb attaches to credits, other than "as …", "voice", "uncredited" and episode counts.
KNOWN_NOTES = {
    "rumored", "unconfirmed", "archive footage", "credit only", "scenes deleted", "also archive footage",
    "singing voice", "speaking voice", "english version", "original version", "motion capture", "cameo",
    "as himself", "as herself", "as themselves", "segment",
}  # fmt: skip
_NOTE_SUFFIXES = (" dub", " version", " footage")


def empty_attributes() -> dict[str, Any]:
    return {"as_name": None, "uncredited": False, "voice": False, "episodes": None, "years": None, "notes": []}


def _apply(note: str, attributes: dict[str, Any]) -> bool:
    """Record one note (the text inside a parenthesis, or an attribute's text); False when it is no note."""
    note = clean_text(note) or ""
    lowered = note.casefold()
    episodes = _EPISODES.match(note)
    if episodes:
        attributes["episodes"] = to_count(episodes.group(1).replace(",", ""))
        if episodes.group(2):
            end = episodes.group(3) or episodes.group(2)
            attributes["years"] = {"start": int(episodes.group(2)), "end": int(end)}
    elif lowered.startswith("as ") and lowered not in KNOWN_NOTES:
        attributes["as_name"] = clean_text(note[3:])
    elif lowered == "uncredited":
        attributes["uncredited"] = True
    elif lowered == "voice" or lowered.startswith("voice:"):
        attributes["voice"] = True
        rest = clean_text(note[6:]) if ":" in note else None
        if rest:
            attributes["notes"].append(rest)
    elif lowered in KNOWN_NOTES or lowered.startswith("segment ") or lowered.endswith(_NOTE_SUFFIXES):
        attributes["notes"].append(note)
    else:
        return False
    return True


def split_character_text(text: str | None) -> tuple[list[str], dict[str, Any]]:
    """A legacy character cell: the characters' names, and the credit's attributes."""
    attributes = empty_attributes()
    if not text:
        return [], attributes

    def take(match: re.Match[str]) -> str:
        return " " if _apply(match.group(1), attributes) else match.group(0)

    def take_bare(match: re.Match[str]) -> str:
        _apply(match.group(0), attributes)
        return " "

    if "(" in text:  # most cells hold a name and nothing else: each search costs less than a substitution
        text = _PAREN.sub(take, text)
    if _BARE_EPISODES.search(text):
        text = _BARE_EPISODES.sub(take_bare, text)
    characters = [c for c in map(clean_text, text.split(" / ")) if c and c != "..."]
    return characters, attributes


def from_credit(attribute_list: Any, episode_credits: Any) -> dict[str, Any]:
    """A current-layout credit's attributes (``attributes`` and ``episodeCredits`` of its node)."""
    attributes = empty_attributes()
    for attribute in dicts(attribute_list):
        text = attribute.get("text")
        if not isinstance(text, str):
            continue
        if attribute.get("__typename") == "CreditedAsCreditAttribute" and text.lower().startswith("as "):
            attributes["as_name"] = clean_text(text[3:])
        elif not _apply(text, attributes) and clean_text(text):
            attributes["notes"].append(clean_text(text))
    if isinstance(episode_credits, dict):
        total = to_count(episode_credits.get("total"))
        attributes["episodes"] = total or None
        years = episode_credits.get("yearRange")
        if total and isinstance(years, dict) and to_count(years.get("year")):
            start = to_count(years.get("year"))
            attributes["years"] = {"start": start, "end": to_count(years.get("endYear")) or start}
    return attributes
