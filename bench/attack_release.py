"""Red-team attack on a multi-day tokumei release, from the published files alone (issue 15).

Why: issue 15's "Done when" is a claim about what an outside attacker can learn from every
published file, manifest and report of a run of consecutive days. This script checks it the way
the outside reviewer did, with code that shares nothing with tokumei's protection or audit code
(it never imports tokumei.stats.disclosure nor any tokumei module: it drives the CLI as a
subprocess, reads Parquet/JSON/HTML/Markdown outputs, and computes the truth from the landing
data itself with Polars, following docs/data_dictionary.md).

Steps: generate a landing, plant what the generator does not create (a 210 kg person, a lone
90+ 'other' person weighing in on some days, a group all in one weight band, vanity/clinic URLs,
a heavy browser, a huge purchase), run every day with `tokumei run --no-isolate-steps`, then
attack. `--reuse` keeps a finished landing and every day already published.

    TOKUMEI_PSEUDONYM_KEY=... .venv/bin/python bench/attack_release.py --work /tmp/r1 --reuse
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

REPO = Path(__file__).resolve().parents[1]
PY = str(REPO / ".venv" / "bin" / "python")
K = 10  # the policy's min_cell and k: the protection range an attacker must not beat
JST = dt.timezone(dt.timedelta(hours=9))

# ---------------------------------------------------------------------------------------------
# Landing: generate and plant
# ---------------------------------------------------------------------------------------------

PLANT_MARK = "_generator/planted_attack.json"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
VANITY_URLS = [
    "https://shop.example.jp/u/takahashi.shota/wishlist",
    "https://shop.example.jp/shops/yamada-hanako-kitchen",
    "https://shop.example.jp/clinic/fertility-consultation",
]
COMMON_URLS = [
    "https://shop.example.jp/",
    "https://shop.example.jp/items/123456",
    "https://shop.example.jp/category/pet",
    "https://shop.example.jp/mypage?ref=mail",
    "https://shop.example.jp/cart",
]


def _uid(tag: str, i: int = 0) -> str:
    return f"usr_plant{tag}{i:04d}"


def plant_people(days: list[dt.date]) -> dict[str, dict[str, Any]]:
    """The planted persons: who they are and what they do (the truth the attacker targets)."""
    people: dict[str, dict[str, Any]] = {}
    every = [d.isoformat() for d in days]
    # 1. a 210 kg man aged 40-44 who weighs in every other day, among 14 peers who weigh in
    # daily (so that his cell publishes a mean and the persons differ by one between days)
    people[_uid("heavy")] = dict(
        gender="male", birth="1984-05-01", pref="東京都", postal="100-0001",
        weigh_days=every[::2], weight=210.0, fat=38.0, role="outlier",
    )
    for i in range(14):
        people[_uid("peer", i)] = dict(
            gender="male", birth=f"1984-0{1 + i % 9}-2{i % 8}", pref="埼玉県",
            postal="330-0001", weigh_days=every, weight=66.0 + 1.3 * i, fat=15.0 + 0.9 * i,
            role="peer",
        )
    # 1b. 40 women 30-34 who weigh in daily, spread so that some bands of each partition are
    # published and some are small (the two-partition relation of finding 1)
    wts = [52.0 + 0.3 * i for i in range(25)] + [62.0 + 0.5 * i for i in range(12)] + [72.0,
                                                                                      74.0, 76.0]
    fats = [26.0 + 0.1 * i for i in range(20)] + [31.0 + 0.2 * i for i in range(11)] + [
        21.0 + 0.3 * i for i in range(9)]
    for i in range(40):
        people[_uid("women", i)] = dict(
            gender="female", birth=f"1994-0{1 + i % 9}-1{i % 9}", pref="福岡県",
            postal="810-0001", weigh_days=every, weight=wts[i], fat=fats[(i * 7) % 40],
            role="partition",
        )
    # 2. the only 90+ 'other' person: weighs in (and is active) on some days only
    lone_days = [d.isoformat() for i, d in enumerate(days) if i % 3 == 0 or i % 7 == 2]
    people[_uid("lone")] = dict(
        gender="other", birth="1931-03-03", pref="秋田県", postal="010-0001",
        weigh_days=lone_days, weight=47.5, fat=31.0, role="lone",
    )
    # 3. a group all in one weight band: 12 'other' persons aged 80-84, all 60-69 kg
    for i in range(12):
        people[_uid("homog", i)] = dict(
            gender="other", birth=f"1944-0{1 + i % 9}-1{i % 9}", pref="長野県",
            postal="380-0001", weigh_days=[d.isoformat() for d in days],
            weight=61.0 + 0.6 * i, fat=12.0 + 2.2 * i, role="homogeneous",
        )
    # 4. three women 45-49 on mobile with vanity, shop-name and clinic pages on one day
    for i in range(3):
        people[_uid("vanity", i)] = dict(
            gender="female", birth="1979-06-0" + str(i + 1), pref="神奈川県",
            postal="220-0001", weigh_days=[], role="vanity", vanity_day=days[13].isoformat(),
            vanity_url=VANITY_URLS[i],
        )
    # 5. a heavy browser (60 page views a day) and a huge purchase
    people[_uid("heavyb")] = dict(
        gender="female", birth="1990-02-02", pref="大阪府", postal="530-0001",
        weigh_days=[], role="heavy_browser",
    )
    people[_uid("whale")] = dict(
        gender="male", birth="1970-07-07", pref="愛知県", postal="450-0001",
        weigh_days=[], role="whale", purchase_day=days[9].isoformat(), amount=980000,
    )
    return people


def _event(ts: dt.datetime, uid: str, n: int, url: str, ua: str, event: str = "page_view",
           amount: int | None = None) -> dict[str, Any]:
    return {
        "ts": ts.isoformat(timespec="milliseconds"), "event": event,
        "cookie_id": f"{zlib.crc32(uid.encode()):08x}-aaaa-4bbb-8ccc-{n:012d}",
        "session_id": f"{zlib.crc32(uid.encode()):08x}{ts.date():%Y%m%d}" + "0" * 16,
        "user_id": uid, "ip": "203.0.113.7", "user_agent": ua, "url": url,
        "referrer": None, "search_query": None, "inquiry_text": None, "lat": None, "lon": None,
        "device_id": None, "app_version": None, "amount_jpy": amount,
    }


def plant(landing: Path, days: list[dt.date]) -> dict[str, dict[str, Any]]:
    """Append planted persons to ops.db and planted lines to the landing (format of generate)."""
    mark = landing / PLANT_MARK
    if mark.exists():
        return json.loads(mark.read_text())
    people = plant_people(days)
    db = sqlite3.connect(landing / "ops.db")
    for uid, p in people.items():
        db.execute(
            "insert into users (user_id, email, username, full_name, full_name_kana, birth_date,"
            " gender, occupation, postal_code, prefecture, address, phone, my_number,"
            " card_number, created_at) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (uid, f"{uid}@example.com", uid[-12:], "植田 花子", "ウエダ ハナコ", p["birth"],
             p["gender"], "会社員", p["postal"], p["pref"], p["pref"] + "中央1-1-1",
             "090-0000-0000", None, None, "2020-01-01 00:00:00"),
        )
        for purpose, granted in (("analytics", 1), ("ads", 0), ("location", 0)):
            db.execute("insert into consents values (?,?,?,?)",
                       (uid, purpose, granted, "2020-01-01 00:00:00"))
    db.commit()
    db.close()
    rng = np.random.default_rng(20261001)
    for day in days:
        iso = day.isoformat()
        events: list[dict[str, Any]] = []
        meas: list[dict[str, Any]] = []
        for uid, p in people.items():
            base = dt.datetime(day.year, day.month, day.day, 7, 0, tzinfo=JST)
            if iso in p["weigh_days"]:
                w = p["weight"] + float(rng.normal(0, 0.3))
                meas.append({"device_id": f"plant-scale-{uid[-8:]}", "user_id": uid,
                             "ts": (base + dt.timedelta(minutes=3)).isoformat(
                                 timespec="milliseconds"),
                             "weight_kg": round(w, 1), "body_fat_pct": p["fat"]})
                for j, url in enumerate(COMMON_URLS[:3]):
                    events.append(_event(base + dt.timedelta(minutes=10 + j), uid, j, url,
                                         IPHONE))
            if p.get("vanity_day") == iso:
                for j, url in enumerate([p["vanity_url"], *COMMON_URLS[:2]]):
                    events.append(_event(base + dt.timedelta(minutes=20 + j), uid, j, url,
                                         IPHONE))
            if p["role"] == "heavy_browser":
                for j in range(60):
                    url = COMMON_URLS[j % 5] if j % 3 else f"https://shop.example.jp/items/{j}"
                    events.append(_event(base + dt.timedelta(minutes=j), uid, j, url, WINDOWS))
            if p.get("purchase_day") == iso:
                events.append(_event(base, uid, 0, COMMON_URLS[4], WINDOWS))
                events.append(_event(base + dt.timedelta(minutes=2), uid, 1,
                                     "https://shop.example.jp/checkout/complete?order=x",
                                     WINDOWS, event="purchase", amount=p["amount"]))
        for sub, rows in (("events", events), ("measurements", meas)):
            if rows:
                out = landing / sub / f"date={iso}" / "part-90000.jsonl"
                out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
                seal(out.parent)
    mark.write_text(json.dumps(people, ensure_ascii=False, indent=1))
    return people


def seal(folder: Path) -> None:
    """Rewrite the day's `_SUCCESS.json` as docs/landing.md specifies (written here from the
    document, not with tokumei's code: the planted file is part of the producer's day)."""
    import hashlib

    files = []
    for f in sorted(folder.iterdir()):
        if f.name.startswith(("_", ".")) or not f.is_file():
            continue
        data = f.read_bytes()
        text = gzip.decompress(data) if f.name.endswith(".gz") else data
        lines = text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)
        files.append({"name": f.name, "bytes": len(data), "lines": lines,
                      "sha256": hashlib.sha256(data).hexdigest()})
    tmp = folder / "_SUCCESS.json.tmp"
    tmp.write_text(json.dumps({"format": 1, "producer": "attack_release plant", "files": files}))
    tmp.replace(folder / "_SUCCESS.json")


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def run_days(landing: Path, out: Path, days: list[dt.date], reuse: bool,
             code: Path) -> dict[str, float]:
    """Run each day in order (the same key and --out); a published day is kept with --reuse.

    `code` is the source tree the runs import (cwd comes first on sys.path with -m): a
    `git archive` of a commit keeps the attacked code fixed while others edit the work tree.
    """
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1")
    timings: dict[str, float] = {}
    for day in days:
        iso = day.isoformat()
        if reuse and (out / "reports" / f"date={iso}" / "manifest.json").exists():
            continue
        t0 = time.perf_counter()
        proc = subprocess.run(
            [PY, "-m", "tokumei.cli", "run", "--landing", str(landing), "--out", str(out),
             "--date", iso, "--no-isolate-steps"],
            env=env, capture_output=True, text=True, cwd=code,
        )
        timings[iso] = time.perf_counter() - t0
        print(f"run {iso}: rc={proc.returncode} {timings[iso]:.1f} s", flush=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit(f"run {iso} failed")
    return timings



# ---------------------------------------------------------------------------------------------
# What the attacker reads
# ---------------------------------------------------------------------------------------------


def load_published(out: Path) -> dict[str, pl.DataFrame]:
    """Every partition of every published table, one frame per table (date as in the file)."""
    tables: dict[str, pl.DataFrame] = {}
    for kind in ("stats", "anonymized"):
        for tdir in sorted((out / "published" / kind).glob("*")):
            parts = []
            for f in sorted(tdir.glob("date=*/part-0.parquet")):
                df = pl.read_parquet(f)
                day = f.parent.name.removeprefix("date=")
                if "date" not in df.columns:
                    df = df.with_columns(pl.lit(day).str.to_date().alias("date"))
                parts.append(df)
            if parts:
                tables[f"{kind}/{tdir.name}"] = pl.concat(parts, how="diagonal_relaxed")
    return tables


def load_manifests(out: Path) -> dict[str, dict[str, Any]]:
    return {d.name.removeprefix("date="): json.loads((d / "manifest.json").read_text())
            for d in sorted((out / "reports").glob("date=*")) if (d / "manifest.json").exists()}


def printed_interval(v: Any) -> tuple[float, float]:
    """What a printed count can stand for, read as the attacker reads it (rule in the manifest):
    an integer n is [n - 50, n + 49] for row counts rounded to 100, '< 100' is [1, 99]."""
    if isinstance(v, str):
        m = re.fullmatch(r"<\s*(\d+)", v.strip())
        if m:
            return 1.0, float(m.group(1)) - 1
        raise ValueError(v)
    if v == 0:
        return 0.0, 0.0
    return max(0.0, float(v) - 50), float(v) + 49


# ---------------------------------------------------------------------------------------------
# The truth (scoring only): recomputed from the landing, following docs/data_dictionary.md
# ---------------------------------------------------------------------------------------------


def _age_band(birth: dt.date | None, on: dt.date) -> str:
    if birth is None:
        return "unknown"
    age = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    if age >= 90:
        return "90+"
    lo = age // 5 * 5
    return f"{lo}-{lo + 4}"


def _band(x: float, measure: str) -> str:
    if measure == "weight":
        if x < 40:
            return "<40"
        if x >= 100:
            return "100+"
        lo = int(x // 10 * 10)
        return f"{lo}-{lo + 9}"
    if x < 10:
        return "<10"
    if x >= 40:
        return "40+"
    lo = int(x // 5 * 5)
    return f"{lo}-{lo + 4}"


def _read_lines(files: list[Path]) -> list[dict[str, Any]]:
    """JSON objects of JSON Lines files; a malformed or non-UTF-8 line is skipped alone."""
    rows = []
    for f in files:
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rb") as fh:  # type: ignore[operator]
            for raw in fh:
                try:
                    r = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    continue
                if isinstance(r, dict):
                    rows.append(r)
    return rows


def allowed_users(landing: Path) -> dict[str, tuple[dt.date | None, str]]:
    """Users with analytics consent and no rights request: (birth date, gender)."""
    db = sqlite3.connect(landing / "ops.db")
    ok = {u for (u,) in db.execute(
        "select user_id from consents where purpose='analytics' and granted=1")}
    ok -= {u for (u,) in db.execute("select user_id from rights_requests")}
    users = {}
    for uid, birth, gender in db.execute("select user_id, birth_date, gender from users"):
        if uid in ok:
            b = dt.date.fromisoformat(birth[:10]) if birth else None
            users[uid] = (b, gender if gender in ("male", "female", "other") else "unknown")
    db.close()
    return users


def truth_measurements(landing: Path, days: list[dt.date]) -> pl.DataFrame:
    """One row per (day, person): age band, gender, daily mean weight and body fat."""
    users = allowed_users(landing)
    rows = []
    for day in days:
        files = sorted((landing / "measurements" / f"date={day.isoformat()}").glob("part-*"))
        per: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for r in _read_lines(files):
            uid, w, f = r.get("user_id"), r.get("weight_kg"), r.get("body_fat_pct")
            ts = str(r.get("ts") or "")
            if uid not in users or not isinstance(w, (int, float)) or not ts.startswith(
                    day.isoformat()) or not isinstance(f, (int, float)):
                continue
            per[uid].append((float(w), float(f)))
        for uid, vals in per.items():
            birth, gender = users[uid]
            rows.append({"date": day, "person": uid, "age_band": _age_band(birth, day),
                         "birth": birth, "gender": gender,
                         "weight": float(np.mean([v[0] for v in vals])),
                         "fat": float(np.mean([v[1] for v in vals]))})
    return pl.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# The joint LP over all tables of all releases
# ---------------------------------------------------------------------------------------------


class System:
    """Cells of every release as LP variables (suppressed) or constants (published)."""

    def __init__(self) -> None:
        self.index: dict[tuple[Any, ...], int] = {}
        self.known: dict[tuple[Any, ...], float] = {}
        self.rows: list[tuple[dict[int, float], float, float, str]] = []

    def cell(self, key: tuple[Any, ...], value: Any) -> None:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            self.index.setdefault(key, len(self.index))
        else:
            self.known[key] = float(value)

    def has(self, key: tuple[Any, ...]) -> bool:
        return key in self.index or key in self.known

    def add(self, terms: list[tuple[tuple[Any, ...], float]], lo: float, hi: float,
            relation: str) -> None:
        """lo <= sum(coef * cell) <= hi; known cells move to the bounds."""
        coefs: dict[int, float] = defaultdict(float)
        shift = 0.0
        for key, c in terms:
            if key in self.known:
                shift += c * self.known[key]
            elif key in self.index:
                coefs[self.index[key]] += c
            else:
                return  # a cell the release does not have: relation not applicable
        coefs = {i: c for i, c in coefs.items() if c != 0}
        if coefs:
            self.rows.append((coefs, lo - shift, hi - shift, relation))

    def solve(self, time_budget: float = 900.0, cap: float | None = None
              ) -> dict[tuple[Any, ...], tuple[float, float]]:
        """Min and max of every suppressed cell, component by component (HiGHS).

        With `cap`, every hidden person count is assumed primary (<= cap, i.e. min_cell - 1),
        as an attacker who knows the suppression rule assumes; a component where that is
        contradicted (a complementary cell >= min_cell) falls back to no cap, and
        `self.contradicted` counts such components.
        """
        self.contradicted = 0
        n = len(self.index)
        parent = list(range(n))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for coefs, *_ in self.rows:
            it = iter(coefs)
            a = find(next(it))
            for j in it:
                b = find(j)
                if a != b:
                    parent[b] = a
        comps: dict[int, list[int]] = defaultdict(list)
        for i in range(n):
            comps[find(i)].append(i)
        rows_of: dict[int, list[int]] = defaultdict(list)
        for r, (coefs, *_) in enumerate(self.rows):
            rows_of[find(next(iter(coefs)))].append(r)
        keys = {i: k for k, i in self.index.items()}
        result: dict[tuple[Any, ...], tuple[float, float]] = {}
        t0 = time.perf_counter()
        for root, members in comps.items():
            rws = rows_of.get(root, [])
            # a component whose relations hold no constant cannot narrow a cell
            if not any(self.rows[r][1] > 0 or np.isfinite(self.rows[r][2]) and self.rows[r][2]
                       != 0 for r in rws) or time.perf_counter() - t0 > time_budget:
                for i in members:
                    result[keys[i]] = (0.0, np.inf)
                continue
            local = {g: j for j, g in enumerate(members)}
            data, ri, ci, b_ub = [], [], [], []
            row = 0
            for r in rws:
                coefs, lo, hi, _ = self.rows[r]
                for sign, bound in ((1.0, hi), (-1.0, -lo)):
                    if not np.isfinite(bound):
                        continue
                    for g, c in coefs.items():
                        data.append(sign * c)
                        ri.append(row)
                        ci.append(local[g])
                    b_ub.append(bound)
                    row += 1
            a_ub = coo_matrix((data, (ri, ci)), shape=(row, len(members))).tocsr()
            b = np.array(b_ub)
            bnds = [(0.0, cap if cap is not None and self._is_count(keys[g]) else None)
                    for g in members]
            probe = linprog(np.zeros(len(members)), A_ub=a_ub, b_ub=b, bounds=bnds,
                            method="highs")
            if probe.status == 2 and cap is not None:
                self.contradicted += 1
                bnds = [(0.0, None)] * len(members)
            elif probe.status == 2:
                raise SystemExit(f"attacker system infeasible around {keys[members[0]][:2]}")
            for g in members:
                c = np.zeros(len(members))
                c[local[g]] = 1.0
                lo = linprog(c, A_ub=a_ub, b_ub=b, bounds=bnds, method="highs")
                hi = linprog(-c, A_ub=a_ub, b_ub=b, bounds=bnds, method="highs")
                result[keys[g]] = (float(lo.fun) if lo.status == 0 else 0.0,
                                   float(-hi.fun) if hi.status == 0 else np.inf)
        return result

    @staticmethod
    def _is_count(key: tuple[Any, ...]) -> bool:
        """A person count (not a session count or an amount)."""
        return key[-1] not in ("amount", "sessions")



PRICE_LO = {"<1000": 0, "1000-4999": 1000, "5000-9999": 5000, "10000-49999": 10000,
            "50000+": 50000}


def _rows(tables: dict[str, pl.DataFrame], name: str) -> list[dict[str, Any]]:
    df = tables.get(f"stats/{name}")
    return [] if df is None else df.to_dicts()


def build_system(tables: dict[str, pl.DataFrame], manifests: dict[str, dict[str, Any]]
                 ) -> tuple[System, list[str]]:
    """Every relation the attacker knows (data dictionary) or reasonably assumes, as one LP."""
    s = System()
    assumed: list[str] = []
    ms = _rows(tables, "measurements_summary")
    for r in ms:
        s.cell(("ms", r["date"], r["age_band"], r["gender"]), r["persons"])
    by_day: dict[dt.date, list[tuple[Any, ...]]] = defaultdict(list)
    for r in ms:
        by_day[r["date"]].append(("ms", r["date"], r["age_band"], r["gender"]))
    for day, keys in by_day.items():
        kept = manifests.get(day.isoformat(), {}).get("sources", {}).get("measurements", {})
        if "kept" in kept:  # persons measured <= measurement rows kept (printed)
            s.add([(k, 1.0) for k in keys], 0.0, printed_interval(kept["kept"])[1],
                  "ms: sum(persons) <= printed measurements kept")
    mt = _rows(tables, "measurement_trends")
    groups: dict[tuple[Any, ...], dict[str, list[tuple[Any, ...]]]] = defaultdict(
        lambda: defaultdict(list))
    for r in mt:
        key = ("mt", r["date"], r["month"], r["age_band"], r["gender"], r["measure"], r["band"])
        s.cell(key, r["persons"])
        groups[(r["date"], r["month"], r["age_band"], r["gender"])][r["measure"]].append(key)
    for (_, month, age, gender), by in groups.items():
        w, f = by["weight"], by["body_fat"]
        s.add([(k, 1.0) for k in w] + [(k, -1.0) for k in f], 0, 0,
              "mt: weight bands and body-fat bands partition the same persons")
        days = [d for d in by_day if d.strftime("%Y-%m") == month]
        for d in days:  # a person measured on a day of the month is in the month's group
            s.add([(("ms", d, age, gender), 1.0)] + [(k, -1.0) for k in w], -np.inf, 0,
                  "mt >= ms of each day of the month (age band assumed stable)")
        s.add([(k, 1.0) for k in w] + [(("ms", d, age, gender), -1.0) for d in days],
              -np.inf, 0, "mt <= sum of ms over the month's days")
    assumed.append("ms day cell <= month trend group (a birthday inside the month breaks it)")
    # active users: day, week, month
    dau = _rows(tables, "daily_active_users")
    dkeys: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for r in dau:
        k = ("dau", r["date"], r["prefecture"], r["age_band"], r["gender"])
        s.cell(k, r["persons"])
        dkeys[(r["prefecture"], r["age_band"], r["gender"])].append(k)
    for name, per in (("weekly_active_users", "week"), ("monthly_active_users", "month")):
        for r in _rows(tables, name):
            k = (name[:3], r["date"], r[per], r["prefecture"], r["age_band"], r["gender"])
            s.cell(k, r["persons"])
            if per == "week":
                start = dt.date.fromisocalendar(int(r["week"][:4]), int(r["week"][6:]), 1)
                inside = [x for x in dkeys[(r["prefecture"], r["age_band"], r["gender"])]
                          if start <= x[1] <= start + dt.timedelta(days=6)]
            else:
                inside = [x for x in dkeys[(r["prefecture"], r["age_band"], r["gender"])]
                          if x[1].strftime("%Y-%m") == r["month"]]
            s.add([(k, 1.0)] + [(x, -1.0) for x in inside], -np.inf, 0,
                  f"{per} <= sum of its days")
            for x in inside:
                s.add([(x, 1.0), (k, -1.0)], -np.inf, 0, f"{per} >= each of its days (assumed)")
    assumed.append("week/month cell >= day cell (attributes of the latest day; rarely differ)")
    # sessions
    sess: dict[tuple[Any, ...], dict[str, tuple[Any, ...]]] = defaultdict(dict)
    for r in _rows(tables, "sessions"):
        g = (r["date"], r["device_class"], r["os_family"])
        for col in ("persons", "sessions"):
            s.cell(("ses", *g, r["duration_band"], col), r[col])
        s.add([(("ses", *g, r["duration_band"], "persons"), 1.0),
               (("ses", *g, r["duration_band"], "sessions"), -1.0)], -np.inf, 0,
              "sessions >= persons")
        sess[g][r["duration_band"]] = g
    for g, bands in sess.items():
        parts = [b for b in bands if b != "all"]
        s.add([(("ses", *g, "all", "sessions"), 1.0)]
              + [(("ses", *g, b, "sessions"), -1.0) for b in parts], 0, 0,
              "sessions: all = sum(bands)")
        s.add([(("ses", *g, "all", "persons"), 1.0)]
              + [(("ses", *g, b, "persons"), -1.0) for b in parts], -np.inf, 0,
              "persons: all <= sum(bands)")
        for b in parts:
            s.add([(("ses", *g, b, "persons"), 1.0), (("ses", *g, "all", "persons"), -1.0)],
                  -np.inf, 0, "persons: band <= all")
    # funnel and page_views
    pv: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for r in _rows(tables, "page_views"):
        k = ("pv", r["date"], r["url_template"], r["device_class"])
        s.cell(k, r["persons"])
        pv[(r["date"], r["device_class"])].append(k)
    for r in _rows(tables, "funnel"):
        g = (r["date"], r["device_class"])
        for col in ("persons_page_view", "persons_signup", "persons_purchase"):
            s.cell(("fun", *g, col), r[col])
        s.add([(("fun", *g, "persons_signup"), 1.0), (("fun", *g, "persons_page_view"), -1.0)],
              -np.inf, 0, "funnel order")
        s.add([(("fun", *g, "persons_purchase"), 1.0), (("fun", *g, "persons_signup"), -1.0)],
              -np.inf, 0, "funnel order")
        if pv[g]:
            s.add([(("fun", *g, "persons_page_view"), 1.0)] + [(k, -1.0) for k in pv[g]],
                  -np.inf, 0, "funnel page_view <= sum of page_views rows")
            for k in pv[g]:
                s.add([(k, 1.0), (("fun", *g, "persons_page_view"), -1.0)], -np.inf, 0,
                      "page_views row <= funnel page_view")
    # the record-level release against stats page_views: a class's persons are disjoint from
    # another class's of the same device class (global recoding of per-person QIs), and one
    # person gives at most m = 3 records per class (policy, printed in the manifest), so n rows
    # of a template in a class prove >= ceil(n / 3) of its persons viewed it on that device
    rec = tables.get("anonymized/page_views")
    if rec is not None and {"device_class", "url_template"} <= set(rec.columns):
        qi = [c for c in ("age", "gender", "prefecture", "device_class") if c in rec.columns]
        per = (rec.filter(pl.col("device_class").cast(pl.String) != "*")
               .group_by("date", *qi, "url_template").len()
               .with_columns(((pl.col("len") + 2) // 3).alias("lb"))
               .group_by("date", "device_class", "url_template").agg(pl.col("lb").sum()))
        for r in per.to_dicts():
            s.add([(("pv", r["date"], r["url_template"], r["device_class"]), 1.0)],
                  float(r["lb"]), np.inf,
                  "page_views cell >= sum over record classes of ceil(rows / 3)")
    # revenue, day and month
    rv: dict[tuple[str, str], list[dt.date]] = defaultdict(list)
    for r in _rows(tables, "revenue"):
        s.cell(("rev", r["date"], r["price_band"], "persons"), r["persons"])
        s.cell(("rev", r["date"], r["price_band"], "amount"), r["total_amount_jpy"])
        s.add([(("rev", r["date"], r["price_band"], "amount"), 1.0),
               (("rev", r["date"], r["price_band"], "persons"), -PRICE_LO[r["price_band"]])],
              -500, np.inf, "amount >= persons x band floor")
        rv[(r["date"].strftime("%Y-%m"), r["price_band"])].append(r["date"])
    for r in _rows(tables, "monthly_revenue"):
        g = (r["date"], r["price_band"])
        s.cell(("mrev", *g, "persons"), r["persons"])
        s.cell(("mrev", *g, "amount"), r["total_amount_jpy"])
        days = rv[(r["month"], r["price_band"])]
        s.add([(("mrev", *g, "persons"), 1.0)]
              + [(("rev", d, r["price_band"], "persons"), -1.0) for d in days], -np.inf, 0,
              "month persons <= sum of days")
        for d in days:
            s.add([(("rev", d, r["price_band"], "persons"), 1.0), (("mrev", *g, "persons"), -1.0)],
                  -np.inf, 0, "month persons >= each day")
        tol = 500.0 * (len(days) + 1)
        s.add([(("mrev", *g, "amount"), 1.0)]
              + [(("rev", d, r["price_band"], "amount"), -1.0) for d in days], -tol, tol,
              "month amount = sum of days (each rounded to 1,000)")
    # retention cohorts
    coh: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for r in _rows(tables, "retention_cohorts"):
        g = (r["date"], r["signup_month"])
        kc = ("ret", *g, r["weeks_since_signup"], "cohort_persons")
        kp = ("ret", *g, r["weeks_since_signup"], "persons")
        s.cell(kc, r["cohort_persons"])
        s.cell(kp, r["persons"])
        s.add([(kp, 1.0), (kc, -1.0)], -np.inf, 0, "cohort_persons >= persons")
        coh[g].append(kc)
    for keys in coh.values():
        for a, b in zip(keys, keys[1:], strict=False):
            s.add([(a, 1.0), (b, -1.0)], 0, 0, "cohort_persons equal on every week")
    return s, assumed


def candidates(lo: float, hi: float) -> float:
    """Number of integers in [lo, hi] (inf when unbounded)."""
    if not np.isfinite(hi):
        return np.inf
    return float(np.floor(hi + 1e-6) - np.ceil(lo - 1e-6) + 1)



_ID = re.compile(r"[0-9]+|[0-9a-fA-F]{8,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                 r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|.*@.*|(?:[^0-9]*[0-9]){3}.*")


def _template(url: str) -> str:
    """URL -> host/path template as the data dictionary describes it (id-like segments -> :id:
    digits, long hex, UUIDs, @, three or more digits; query dropped; trailing / dropped)."""
    u = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url.strip())
    u = re.sub(r"[?#].*$", "", u)
    host, _, path = u.partition("/")
    path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segs = [(":id" if _ID.fullmatch(x) else x) for x in path.split("/")]
    return host.split(":")[0].lower() + "/".join(segs)


def cookie_owners(landing: Path) -> dict[str, str]:
    """cookie_id -> user_id from the cookies landing (person = user, else cookie)."""
    owners: dict[str, str] = {}
    for f in sorted((landing / "cookies").glob("date=*/part-*")):
        for r in _read_lines([f]):
            if r.get("cookie_id") and r.get("user_id"):
                owners[str(r["cookie_id"])] = str(r["user_id"])
    return owners


def _device_class(ua: str | None) -> str:
    """Device class of a user agent as the data dictionary describes it (ua-parser + tokens);
    written here again so that the truth does not come from the code under attack."""
    if not ua:
        return "unknown"
    from ua_parser import parse

    r = parse(ua)
    browser = r.user_agent.family if r.user_agent else "Other"
    os_family = r.os.family if r.os else "Other"
    device = r.device.family if r.device else "Other"
    low = ua.lower()
    if "bot" in (browser or "").lower() or "bot" in low or "spider" in low:
        return "bot"
    if "ipad" in low or "tablet" in low or ("android" in low and "mobile" not in low):
        return "tablet"
    if "mobi" in low or device == "iPhone" or os_family == "iOS":
        return "mobile"
    if os_family in {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "macOS"}:
        return "desktop"
    return "other"


def truth_page_views(landing: Path, days: list[dt.date]) -> dict[tuple[Any, ...], int]:
    """Distinct persons per (day, url_template, device_class): person = user, else the
    cookie's user, else the cookie (anonymous cookies without a known owner are counted; the
    banner-consent filter is not modelled, so anonymous counts can be slightly high)."""
    users = allowed_users(landing)
    owners = cookie_owners(landing)
    dc_cache: dict[str, str] = {}
    out: dict[tuple[Any, ...], int] = {}
    for day in days:
        cells: dict[tuple[str, str], set[str]] = defaultdict(set)
        for r in _read_lines(sorted((landing / "events" / f"date={day.isoformat()}").glob(
                "part-*"))):
            if r.get("event") != "page_view" or not r.get("url"):
                continue
            uid = r.get("user_id") or owners.get(str(r.get("cookie_id")))
            if uid is not None and uid not in users:
                continue
            person = uid or f"cookie:{r.get('cookie_id')}"
            ua = r.get("user_agent")
            key = str(ua)
            if key not in dc_cache:
                dc_cache[key] = _device_class(ua)
            cells[(_template(str(r["url"])), dc_cache[key])].add(person)
        for (t, d), ps in cells.items():
            out[("pv", day, t, d)] = len(ps)
    return out


def attack_lp(tables: dict[str, pl.DataFrame], manifests: dict[str, dict[str, Any]],
              truth: pl.DataFrame, true_pv: dict[tuple[Any, ...], int]) -> dict[str, Any]:
    t0 = time.perf_counter()
    system, assumed = build_system(tables, manifests)
    bounds = system.solve()
    seconds = time.perf_counter() - t0
    capped = system.solve(cap=K - 1)
    contradicted = system.contradicted
    # the truth of the measurement tables, for scoring
    true_ms = {("ms", r["date"], r["age_band"], r["gender"]): r["n"] for r in truth.group_by(
        "date", "age_band", "gender").agg(pl.len().alias("n")).to_dicts()}
    true_mt: dict[tuple[Any, ...], int] = defaultdict(int)
    if "stats/measurement_trends" in tables:
        for end in tables["stats/measurement_trends"]["date"].unique().to_list():
            month = truth.filter(pl.col("date").dt.strftime("%Y-%m") == end.strftime("%Y-%m"))
            per = month.group_by("person").agg(pl.col("weight").mean(), pl.col("fat").mean(),
                                               pl.col("birth").first(), pl.col("gender").first())
            for r in per.to_dicts():
                a = _age_band(r["birth"], end)
                mth = end.strftime("%Y-%m")
                true_mt[("mt", end, mth, a, r["gender"], "weight", _band(r["weight"], "weight"))] += 1
                true_mt[("mt", end, mth, a, r["gender"], "body_fat", _band(r["fat"], "fat"))] += 1
    per_table: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    narrowed: list[dict[str, Any]] = []
    for key, (lo, hi) in capped.items():
        if System._is_count(key) and candidates(lo, hi) < K:
            t = per_table[key[0]]
            t["primary_assumed_below_10"] += 1
            tv = true_pv.get(key) if key[0] == "pv" and key[2] != "other" else None
            if tv is not None:
                t["primary_scored"] += 1
                t["primary_truth_inside"] += int(lo - 1e-6 <= tv <= hi + 1e-6)
            if len(narrowed) < 40:
                narrowed.append({"cell": [str(x) for x in key], "lo": lo, "hi": hi,
                                 "truth": tv, "variant": "primary assumed"})
    for key, (lo, hi) in bounds.items():
        tab = key[0]
        col_amount = key[-1] == "amount"
        t = per_table[tab + (":amount" if col_amount else "")]
        t["suppressed"] += 1
        n = candidates(lo, hi)
        if col_amount:
            if np.isfinite(hi):
                t["bounded"] += 1
            continue
        if n < K:
            t["narrowed_below_10"] += 1
            if n == 1:
                t["exact"] += 1
            truth_v = true_ms.get(key, true_mt.get(key) if tab == "mt" else true_pv.get(key))
            if tab in ("ms", "mt") and truth_v is None:
                truth_v = 0
            if truth_v is not None:
                t["scored"] += 1
                t["truth_inside"] += int(lo - 1e-6 <= truth_v <= hi + 1e-6)
            narrowed.append({"cell": [str(x) for x in key], "lo": lo, "hi": hi,
                             "truth": truth_v, "variant": "sound"})
        if lo >= 1 - 1e-6:
            t["proved_nonzero"] += 1
    return {"variables": len(system.index), "relations": len(system.rows),
            "relation_kinds": sorted({r[3] for r in system.rows}), "assumed": assumed,
            "seconds": round(seconds, 1), "primary_contradicted_components": contradicted,
            "per_table": {k: dict(v) for k, v in
                                                         per_table.items()},
            "narrowed_examples": narrowed[:25], "narrowed_total": len(narrowed),
            "bounds": bounds}


def attack_existence(tables: dict[str, pl.DataFrame], bounds: dict[tuple[Any, ...], Any],
                     truth: pl.DataFrame, people: dict[str, dict[str, Any]],
                     days: list[dt.date]) -> dict[str, Any]:
    """Follow the lone (90+, other) person: row presence, values, LP bounds, records."""
    lone = next(u for u, p in people.items() if p["role"] == "lone")
    active = set(people[lone]["weigh_days"]) & {d.isoformat() for d in days}
    ms = tables["stats/measurements_summary"].filter(
        (pl.col("age_band") == "90+") & (pl.col("gender") == "other"))
    row_days = {d.isoformat() for d in ms["date"].to_list()}
    published = {r["date"].isoformat(): r["persons"] for r in ms.to_dicts()
                 if r["persons"] is not None}
    proved = [d.isoformat() for d in days
              if bounds.get(("ms", d, "90+", "other"), (0, 0))[0] >= 1 - 1e-6]
    dau = tables["stats/daily_active_users"].filter(
        (pl.col("age_band") == "90+") & (pl.col("gender") == "other"))
    dau_rows_by_day = dau.group_by("date").len()["len"].unique().to_list()
    rec = tables.get("anonymized/page_views")
    rec_days = []
    if rec is not None:
        hit = rec.filter(pl.col("gender").cast(pl.String) == "other").filter(
            pl.col("age").cast(pl.String).str.contains("90"))
        rec_days = sorted({d.isoformat() for d in hit["date"].to_list()})
    guess_row = {d.isoformat() for d in days} == row_days
    return {
        "days": len(days), "active_days": len(active),
        "ms_row_every_day": guess_row,
        "ms_row_days_matching_activity": sum(
            (d.isoformat() in row_days) == (d.isoformat() in active) for d in days),
        "ms_cell_published_days": len(published),
        "lp_proves_presence_days": len(proved),
        "lp_presence_correct": sum(d in active for d in proved),
        "dau_rows_per_day_for_group": dau_rows_by_day,
        "record_rows_90plus_other_days": len(rec_days),
        "record_days_matching_activity": sum(d in active for d in rec_days),
    }


def attack_homogeneity(tables: dict[str, pl.DataFrame],
                       bounds: dict[tuple[Any, ...], Any]) -> dict[str, Any]:
    """Published groups whose persons are provably all in one band (or > 90 % in one)."""
    mt = tables.get("stats/measurement_trends")
    found: list[str] = []
    groups = 0
    if mt is not None:
        for (date, month, age, gender, measure), g in mt.group_by(
                "date", "month", "age_band", "gender", "measure"):
            pub = g.filter(pl.col("persons").is_not_null())
            if pub.height == 0:
                continue
            groups += 1
            top = pub.sort("persons", descending=True).row(0, named=True)
            rest_max = sum(
                bounds.get(("mt", date, month, age, gender, measure, r["band"]), (0, np.inf))[1]
                for r in g.to_dicts() if r["band"] != top["band"] and r["persons"] is None
            ) + sum(r["persons"] for r in pub.to_dicts() if r["band"] != top["band"])
            if top["persons"] / (top["persons"] + rest_max) > 0.9:
                found.append(f"{month} {age} {gender} {measure}: {top['band']} holds "
                             f">= {top['persons'] / (top['persons'] + rest_max):.0%}")
    # revenue, daily and monthly: the day's (month's) purchasers over price bands
    rev_groups, rev_found, hidden_days, hidden_told = 0, [], 0, []
    for name, key in (("stats/revenue", "rev"), ("stats/monthly_revenue", "mrev")):
        rv = tables.get(name)
        if rv is None:
            continue
        for (date,), g in rv.group_by("date"):
            pub = g.filter(pl.col("persons").is_not_null())
            if pub.height == 0:
                if key == "rev":
                    hidden_days += 1
                    # a day hidden whole: may the LP prove one of its bands >= 10 (which
                    # rules out "all small" and points at the band that made it homogeneous)?
                    big = [r["price_band"] for r in g.to_dicts()
                           if bounds.get((key, date, r["price_band"], "persons"), (0, 0))[0]
                           >= K - 1e-6]
                    if big:
                        hidden_told.append(f"{date}: {big}")
                continue
            rev_groups += 1
            top = pub.sort("persons", descending=True).row(0, named=True)
            rest_max = sum(
                bounds.get((key, date, r["price_band"], "persons"), (0, np.inf))[1]
                for r in g.to_dicts() if r["price_band"] != top["price_band"]
                and r["persons"] is None
            ) + sum(r["persons"] for r in pub.to_dicts() if r["price_band"] != top["price_band"])
            share = top["persons"] / (top["persons"] + rest_max)
            if share > 0.9:
                rev_found.append(f"{name} {date}: {top['price_band']} holds >= {share:.0%}")
    return {"published_groups": groups, "homogeneous": found,
            "revenue_published_groups": rev_groups, "revenue_homogeneous": rev_found,
            "revenue_days_hidden_whole": hidden_days,
            "revenue_hidden_days_with_a_band_proven_large": hidden_told}


def attack_means(tables: dict[str, pl.DataFrame], people: dict[str, dict[str, Any]]
                 ) -> dict[str, Any]:
    """Estimate the 210 kg man's weight from persons x (mean - median) and day differences."""
    heavy = next(p for p in people.values() if p["role"] == "outlier")
    ms = tables["stats/measurements_summary"]
    cell = ms.filter((pl.col("age_band") == "40-44") & (pl.col("gender") == "male"))
    est = cell.filter(pl.col("weight_mean_kg").is_not_null()
                      & pl.col("weight_median_kg").is_not_null()).with_columns(
        (pl.col("weight_median_kg") + pl.col("persons")
         * (pl.col("weight_mean_kg") - pl.col("weight_median_kg"))).alias("est"))
    all_est = ms.filter(pl.col("weight_mean_kg").is_not_null()
                        & pl.col("weight_median_kg").is_not_null()).with_columns(
        (pl.col("weight_median_kg") + pl.col("persons")
         * (pl.col("weight_mean_kg") - pl.col("weight_median_kg"))).alias("est"))
    # day-to-day: the mean of the persons who joined, (n_a m_a - n_b m_b) / (n_a - n_b),
    # between any two days of the cell whose persons differ by one or two
    diffs = []
    rows = [r for r in cell.sort("date").to_dicts()
            if r["persons"] is not None and r["weight_mean_kg"] is not None]
    for a in rows:
        for b in rows:
            if 1 <= a["persons"] - b["persons"] <= 2:
                diffs.append((a["persons"] * a["weight_mean_kg"]
                              - b["persons"] * b["weight_mean_kg"]) / (a["persons"]
                                                                      - b["persons"]))
    return {
        "true_kg": heavy["weight"],
        "cell_days_with_mean": est.height,
        "cell_max_mean_kg": cell["weight_mean_kg"].max(),
        "max_estimate_in_cell_kg": None if est.height == 0 else round(est["est"].max(), 1),
        "max_estimate_any_cell_kg": None if all_est.height == 0 else round(
            all_est["est"].max(), 1),
        "max_day_difference_kg": round(max(diffs), 1) if diffs else None,
        "days_with_mean_any_cell": all_est.height,
        "max_published_mean_kg": ms["weight_mean_kg"].max(),
    }


def attack_records(landing: Path, tables: dict[str, pl.DataFrame], days: list[dt.date]
                   ) -> dict[str, Any]:
    """url_template values of the record release used by fewer than k persons that day."""
    rec = tables.get("anonymized/page_views")
    users = allowed_users(landing)
    owners = cookie_owners(landing)
    rare: list[str] = []
    special: list[str] = []
    single_value_classes = 0
    classes = 0
    for day in days:
        pub = set() if rec is None else set(
            rec.filter(pl.col("date") == day)["url_template"].unique().to_list())
        files = sorted((landing / "events" / f"date={day.isoformat()}").glob("part-*"))
        persons: dict[str, set[str]] = defaultdict(set)
        for r in _read_lines(files):
            uid = r.get("user_id") or owners.get(str(r.get("cookie_id")))
            if r.get("event") == "page_view" and uid in users and r.get("url"):
                persons[_template(str(r["url"]))].add(str(uid))
        for t in pub:
            if t == "other":
                continue
            n = len(persons.get(t, ()))
            if n < K:
                rare.append(f"{day} {t} ({'0' if n == 0 else '< 10'} persons)")
            if re.search(r"clinic|takahashi|yamada|fertility", t):
                special.append(f"{day} {t}")
        if rec is not None:
            d = rec.filter(pl.col("date") == day)
            qi = [c for c in ("age", "gender", "prefecture", "device_class") if c in d.columns]
            g = d.group_by(qi).agg(pl.col("url_template").n_unique().alias("v"))
            classes += g.height
            single_value_classes += g.filter(pl.col("v") < 2).height
    return {"rare_published_templates": rare[:20], "rare_total": len(rare),
            "special_or_vanity_published": special, "classes": classes,
            "classes_with_one_value": single_value_classes,
            "unmatched_note": "templates the truth never saw count as 0 persons (my template "
                              "rule may differ from tokumei's; such rows are checked by hand)"}


SMALL = re.compile(
    r"(?<![\d.,\-/:<=])([1-9])(?![\d.,%:/])\s*(persons?|records?|rows?|people|users?|人(?!1日)|件(?!の)|名)",
    re.IGNORECASE)
NOT_A_COUNT = re.compile(r"per person|1人1日|1行が1件|each|at most|<= \d|\\<=")


def attack_small_counts(out: Path) -> dict[str, Any]:
    """Counts 1-9 of persons/records/rows printed in manifest, report, Data Docs, notice."""
    hits: list[str] = []
    for f in sorted((out / "reports").rglob("*")):
        if f.suffix not in (".json", ".html", ".md") or "static" in f.parts:
            continue
        text = f.read_text(errors="replace")
        if f.suffix == ".html":
            text = re.sub(r"<[^>]+>", " ", text)
        for m in SMALL.finditer(text):
            ctx = text[max(0, m.start() - 60): m.end() + 20].replace("\n", " ")
            if not NOT_A_COUNT.search(text[max(0, m.start() - 12): m.end() + 12]):
                hits.append(f"{f.relative_to(out)}: ...{ctx}...")
        if f.name == "manifest.json":
            name = str(f.relative_to(out))

            def walk(o: Any, path: str, name: str = name) -> None:
                if isinstance(o, dict):
                    for k, v in o.items():
                        walk(v, f"{path}.{k}", name)
                elif isinstance(o, list):
                    for i, v in enumerate(o):
                        walk(v, f"{path}[{i}]", name)
                elif (isinstance(o, int) and not isinstance(o, bool) and 1 <= o <= 9
                      and re.search(r"person|record|kept|input|quarantin|excluded|withheld"
                                    r"|class_size|suppressed(?!_cells)", path, re.IGNORECASE)
                      and not re.search(r"histogram\[\d+\]\[1\]|cells|transformation|"
                                        r"max_records_per", path)):
                    hits.append(f"{name}: {path} = {o}")
            walk(json.loads(text), "")
    return {"hits": len(hits), "examples": hits[:25]}


def attack_notice(out: Path) -> dict[str, Any]:
    """Every dataset published on a day is named in that day's items_notice.md."""
    missing: list[str] = []
    checked = 0
    for rep in sorted((out / "reports").glob("date=*")):
        day = rep.name
        notice = (rep / "items_notice.md").read_text() if (rep / "items_notice.md").exists() \
            else ""
        for kind in ("stats", "anonymized"):
            for tdir in (out / "published" / kind).glob("*"):
                if (tdir / day).exists():
                    checked += 1
                    if f"{kind}/{tdir.name}" not in notice:
                        missing.append(f"{day} {kind}/{tdir.name}")
    return {"dataset_days_checked": checked, "missing": missing}


def attack(landing: Path, out: Path, days: list[dt.date], people: dict[str, dict[str, Any]]
           ) -> dict[str, Any]:
    tables = load_published(out)
    manifests = load_manifests(out)
    truth = truth_measurements(landing, days)
    true_pv = truth_page_views(landing, days)
    lp = attack_lp(tables, manifests, truth, true_pv)
    bounds = lp.pop("bounds")
    return {
        "tables": {k: v.height for k, v in tables.items()},
        "releases": len(manifests),
        "lp": lp,
        "existence": attack_existence(tables, bounds, truth, people, days),
        "homogeneity": attack_homogeneity(tables, bounds),
        "means": attack_means(tables, people),
        "records": attack_records(landing, tables, days),
        "small_counts": attack_small_counts(out),
        "notice": attack_notice(out),
    }


def write_results(args: argparse.Namespace, findings: dict[str, Any],
                  timings: dict[str, float], total: float) -> None:
    """Figures to bench/results/attack.md (generated section) and the raw JSON to --work."""
    raw = args.work / "attack_findings.json"
    raw.write_text(json.dumps(findings, indent=1, default=str, ensure_ascii=False))
    lp, ex, ho = findings["lp"], findings["existence"], findings["homogeneity"]
    me, rec, sc, no = (findings["means"], findings["records"], findings["small_counts"],
                       findings["notice"])
    runs = (f"{len(timings)} days run by this invocation, {sum(timings.values()):.0f} s "
            f"({np.mean(list(timings.values())):.0f} s/day)" if timings else
            "every day reused from an earlier invocation")
    lines = [
        "# Red-team attack on a multi-day release (issue 15, Done when)",
        "",
        "Generated by `bench/attack_release.py` (the attack shares no code with tokumei: it "
        "reads published Parquet, manifests, reports and notices; truth from the landing).",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"Python {platform.python_version()}",
        f"- landing: N = {args.days} days from {args.start}, U = {args.users} users, seed "
        f"{args.seed}, plus planted persons (a 210 kg man 40-44 weighing in every other day among "
        "14 peers who weigh in daily; a lone 90+ 'other' person weighing in and active on some "
        "days; 12 'other' persons 80-84 all 60-69 kg; 40 women 30-34 spread over bands so that "
        "both partitions of finding 1 publish some cells; vanity, shop-name and clinic URLs on "
        "day 14; a 60-page-views-a-day browser; a 980,000 JPY purchase)",
        f"- releases attacked: {findings['releases']}; rows read: "
        + ", ".join(f"{k} {v}" for k, v in findings["tables"].items()),
        f"- runs: {runs}; attack (truth + LP + checks): {total - sum(timings.values()):.0f} s",
        "",
        "## 1. Joint LP over every table of every release (scipy HiGHS)",
        "",
        f"{lp['variables']} suppressed cells as variables, {lp['relations']} relations, solved "
        f"per connected component in {lp['seconds']} s. Relations: "
        + "; ".join(lp["relation_kinds"]) + ". Assumed (reasonable, not published): "
        + "; ".join(lp["assumed"]) + ".",
        "",
        "| cells | suppressed | narrowed below 10 candidates | exact | proved >= 1 | "
        "scored (truth inside interval) | below 10 if every hidden count is assumed <= 9 |",
        "|---|---|---|---|---|---|---|",
    ]
    for tab, t in sorted(lp["per_table"].items()):
        lines.append(f"| {tab} | {t.get('suppressed', 0)} | {t.get('narrowed_below_10', 0)} | "
                     f"{t.get('exact', 0)} | {t.get('proved_nonzero', 0)} | "
                     f"{t.get('truth_inside', 0)}/{t.get('scored', 0)} | "
                     f"{t.get('primary_assumed_below_10', 0)} (truth inside "
                     f"{t.get('primary_truth_inside', 0)}/{t.get('primary_scored', 0)}) |")
    lines += ["", f"Narrowed cells listed: {lp['narrowed_total']} (first 25 below). Components "
              f"where 'every hidden count <= 9' is contradicted (a complementary cell is "
              f">= 10), solved without it: {lp['primary_contradicted_components']}."]
    for ex_ in lp["narrowed_examples"]:
        lines.append(f"- ({ex_['variant']}) `{' '.join(ex_['cell'])}`: "
                     f"[{ex_['lo']:.2f}, {ex_['hi']:.2f}], "
                     f"truth {'not scored' if ex_['truth'] is None else ex_['truth']}")
    lines += [
        "",
        "## 2. Existence: the only (90+, other) person",
        "",
        f"Active (weighs in) on {ex['active_days']} of {ex['days']} days. measurements_summary "
        f"row present every day: {ex['ms_row_every_day']} (row presence matches activity on "
        f"{ex['ms_row_days_matching_activity']} of {ex['days']} days, i.e. no signal when the row "
        f"is always there); cell published on {ex['ms_cell_published_days']} days; the LP proves "
        f"the cell >= 1 on {ex['lp_proves_presence_days']} days ({ex['lp_presence_correct']} "
        f"right). daily_active_users rows per day for (90+, other): "
        f"{ex['dau_rows_per_day_for_group']} (constant = full grid). Record-level rows with age "
        f"90+ and gender other: {ex['record_rows_90plus_other_days']} days.",
        "",
        "## 3. Homogeneity",
        "",
        f"measurement_trends published groups: {ho['published_groups']}; groups where the "
        f"published counts and the LP maxima of the hidden bands prove more than 90 % in one "
        f"band: {len(ho['homogeneous'])}" + ("" if not ho["homogeneous"] else
                                            ": " + "; ".join(ho["homogeneous"][:10])),
        "",
        f"revenue and monthly_revenue published groups (a day's or a month's purchasers over "
        f"price bands): {ho.get('revenue_published_groups', 0)}; proved more than 90 % in one "
        f"band: {len(ho.get('revenue_homogeneous', []))}"
        + ("" if not ho.get("revenue_homogeneous") else
           ": " + "; ".join(ho["revenue_homogeneous"][:10]))
        + f". Revenue days hidden whole: {ho.get('revenue_days_hidden_whole', 0)}; of them with "
        f"a band the LP proves >= {K} persons: "
        f"{len(ho.get('revenue_hidden_days_with_a_band_proven_large', []))}.",
        "",
        "## 4. Means: the 210 kg man (40-44, male, every other day)",
        "",
        f"His cell published a mean on {me['cell_days_with_mean']} days; largest published "
        f"mean in his cell {me['cell_max_mean_kg']} kg; median + persons x (mean - median) in "
        f"his cell: {me['max_estimate_in_cell_kg']} kg, over every cell and day: "
        f"{me['max_estimate_any_cell_kg']} kg ({me['days_with_mean_any_cell']} cell-days); "
        f"day-to-day difference estimate: {me['max_day_difference_kg']} kg; largest published "
        f"mean anywhere {me['max_published_mean_kg']} kg (truth {me['true_kg']} kg).",
        "",
        "## 5. Record-level release anonymized/page_views",
        "",
        f"Published url_template values used by fewer than k = {K} persons that day (truth): "
        f"{rec['rare_total']}" + ("" if not rec["rare_published_templates"] else
                                  " (" + "; ".join(rec["rare_published_templates"][:8]) + ")")
        + f". Vanity, shop-name or clinic templates published: "
        f"{len(rec['special_or_vanity_published'])}. Classes {rec['classes']}, classes with one "
        f"url_template value: {rec['classes_with_one_value']}.",
        "",
        "## 6. Small counts and the notice",
        "",
        f"Counts 1-9 of persons/records/rows in manifests, privacy reports, Data Docs and "
        f"notices: {sc['hits']}" + ("" if not sc["examples"] else
                                   " (" + "; ".join(sc["examples"][:8]) + ")")
        + f". Dataset-days checked against items_notice.md: {no['dataset_days_checked']}, "
        f"missing from the notice: {len(no['missing'])}"
        + ("" if not no["missing"] else " (" + "; ".join(no["missing"][:8]) + ")") + ".",
        "",
    ]
    text = "\n".join(lines)
    marker = "<!-- end of generated figures -->"
    old = args.results.read_text() if args.results.exists() else ""
    tail = old[old.index(marker):] if marker in old else marker + "\n"
    args.results.write_text(text + "\n" + tail)
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("/tmp/attack_release"))
    ap.add_argument("--start", default="2026-10-01")
    ap.add_argument("--days", type=int, default=32)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--code", type=Path, default=REPO, help="source tree the runs import")
    ap.add_argument("--runs-only", action="store_true")
    ap.add_argument("--attack-days", type=int, default=None,
                    help="attack only the first D days (their runs must exist)")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "attack.md")
    args = ap.parse_args()
    if len(os.environ.get("TOKUMEI_PSEUDONYM_KEY", "")) < 32:
        raise SystemExit("set TOKUMEI_PSEUDONYM_KEY (>= 32 characters)")
    start = dt.date.fromisoformat(args.start)
    days = [start + dt.timedelta(days=i) for i in range(args.days)]
    landing, out = args.work / "landing", args.work / "out"
    t0 = time.perf_counter()
    if not (args.reuse and (landing / "_generator" / "manifest.json").exists()):
        subprocess.run(
            [PY, "-m", "tokumei.cli", "generate", "--landing", str(landing), "--db-url",
             f"sqlite:///{landing}/ops.db", "--start", args.start, "--days", str(args.days),
             "--users", str(args.users), "--seed", str(args.seed)],
            check=True, cwd=REPO, capture_output=True,
        )
    people = plant(landing, days)
    if args.attack_days is None:
        timings = run_days(landing, out, days, args.reuse, args.code)
    else:
        timings, days = {}, days[: args.attack_days]
    if args.runs_only:
        return
    findings = attack(landing, out, days, people)
    write_results(args, findings, timings, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
