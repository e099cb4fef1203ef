"""Whose row a row is, and in which pseudonym domain an id is, are the policy's (issue 16).

``person:`` (events, measurements, users), ``owner:`` (cookies, devices) and each linking key's
``domain:`` decide the person column, the rights join and the pseudonyms; the code names no
source column for them (tokumei/anonymize/person_rows.py). A policy whose blocks do not resolve
stops at load, naming the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tokumei.anonymize.policy import PolicyError, default_policy_dir, load_policy


def _edited(tmp: Path, name: str, old: str, new: str) -> Path:
    folder = tmp / "policies"
    shutil.copytree(default_policy_dir(), folder)
    path = folder / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return folder


def test_the_shipped_blocks_resolve() -> None:
    policy = load_policy(default_policy_dir())
    events = policy.source("events")
    assert events.person is not None and events.person.owners == "cookies"
    assert events.domain(events.person.fallback) == "cookie"
    assert policy.source("cookies").owner.consent == "consent_analytics"
    assert policy.persons.source == "users"
    assert policy.person_domains() == ("cookie", "device", "user")


def test_owners_without_an_owner_block_stop_the_load(tmp_path: Path) -> None:
    folder = _edited(tmp_path, "events", "owners: cookies", "owners: measurements")
    with pytest.raises(PolicyError, match="events.yaml person: owners 'measurements'"):
        load_policy(folder)


def test_a_fallback_in_another_domain_than_the_owner_key_stops_the_load(tmp_path: Path) -> None:
    folder = _edited(
        tmp_path,
        "events",
        "cookie_id:     {type: string, required: true, role: linking_key, domain: cookie}",
        "cookie_id:     {type: string, required: true, role: linking_key, domain: biscuit}",
    )
    with pytest.raises(PolicyError, match="fallback 'cookie_id' is not in the domain"):
        load_policy(folder)


def test_a_person_column_that_is_not_read_stops_the_load(tmp_path: Path) -> None:
    folder = _edited(tmp_path, "measurements", "day: ts", "day: when")
    with pytest.raises(PolicyError, match="person.day column 'when'"):
        load_policy(folder)


def test_a_domain_on_a_column_that_is_no_linking_key_stops_the_load(tmp_path: Path) -> None:
    folder = _edited(
        tmp_path,
        "events",
        "app_version:   {type: string, role: insensitive}",
        "app_version:   {type: string, role: insensitive, domain: app}",
    )
    with pytest.raises(PolicyError, match="domain is the pseudonym domain of a linking key"):
        load_policy(folder)
