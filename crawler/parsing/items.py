"""Typed items: one per IMDb page kind. Field meanings are in ``docs/schema.md``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 3


@dataclass
class TitleItem:
    """A title page (movie, series, episode…), normalised."""

    imdb_id: str | None = None
    layout: str | None = None
    fetched_via: str | None = None  # "http" or "browser": how the crawl got the page (not part of its content)
    title: str | None = None
    original_title: str | None = None
    title_type: str | None = None
    year: int | None = None
    end_year: int | None = None
    rating: float | None = None
    votes: int | None = None
    votes_rounded: bool = False  # votes read from a rounded figure ("1.9M"): not an exact count
    metascore: int | None = None
    popularity_rank: int | None = None
    top_rank: int | None = None  # rank in IMDb's Top 250 (movies or TV), null outside it
    user_reviews: int | None = None
    critic_reviews: int | None = None
    certificate: str | None = None
    runtime_minutes: int | None = None
    genres: list[str] = field(default_factory=list)
    release_date: str | None = None
    release_date_precision: str | None = None  # "day", "month" or "year": how much of the date the page gave
    release_country: str | None = None
    plot: str | None = None
    storyline: str | None = None
    directors: list[dict[str, Any]] = field(default_factory=list)
    writers: list[dict[str, Any]] = field(default_factory=list)
    stars: list[dict[str, Any]] = field(default_factory=list)
    cast: list[dict[str, Any]] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    taglines: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    akas: list[str] = field(default_factory=list)
    filming_locations: list[str] = field(default_factory=list)
    budget: dict[str, Any] | None = None
    gross: dict[str, Any] | None = None
    companies: list[dict[str, Any]] = field(default_factory=list)
    sound_mix: list[str] = field(default_factory=list)
    color: list[str] = field(default_factory=list)
    aspect_ratio: str | None = None
    awards_summary: dict[str, Any] | None = None
    series: dict[str, Any] | None = None
    poster_url: str | None = None
    schema_version: int = SCHEMA_VERSION


@dataclass
class PersonItem:
    """A person (name) page, normalised."""

    imdb_id: str | None = None
    layout: str | None = None
    fetched_via: str | None = None  # "http" or "browser": how the crawl got the page (not part of its content)
    name: str | None = None
    birth_date: str | None = None
    birth_date_precision: str | None = None
    birth_place: str | None = None
    death_date: str | None = None
    death_date_precision: str | None = None
    death_place: str | None = None
    alternate_names: list[str] = field(default_factory=list)
    headshot_url: str | None = None
    professions: list[str] = field(default_factory=list)
    known_for: list[str] = field(default_factory=list)
    filmography: list[dict[str, Any]] = field(default_factory=list)
    bio: str | None = None
    schema_version: int = SCHEMA_VERSION


def collection_for(item: Any) -> str:
    """The MongoDB collection an item is stored in."""
    return "people" if isinstance(item, PersonItem) else "titles"
