"""The record-level release anonymized/page_views (issue 15, finding 5) and the folding rule it
shares with the stats table page_views and the search categories.

The run test uses a landing written for it (the hand-made landing plus vanity, shop-name and
clinic URLs, a clinic page many persons use, a heavy user and special-care searches) and checks
the published files against what the landing holds; each check failed on the code before
tokumei/anonymize/records.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from conftest import DAY, TEST_KEY, seal_landing, write_handmade_landing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from published import read_published

from tokumei.anonymize.folding import (
    DEFAULT_SPECIAL_CARE,
    OTHER,
    SpecialCare,
    fold,
    fold_rare,
    values_to_fold,
)
from tokumei.anonymize.hierarchies import AgeHierarchy, CategoricalHierarchy
from tokumei.anonymize.policy import PolicyError, default_policy_dir, load_policy
from tokumei.anonymize.records import (
    RecordRules,
    ReleaseCheckError,
    bound_contributions,
    check_column_model,
    class_distances,
    other_rows_published,
    release_records,
)
from tokumei.stats.categories import categorize

K = 10
M = 3
HOST = "shop.example.jp"
VANITY = ("/u/takahashi.shota/wishlist", "/shops/yamada-hanako-kitchen")
RARE_CLINIC = "/clinic/fertility-consultation"
COMMON_CLINIC = "/clinic/dermatology"  # 12 persons: common, but special care
CAMPAIGN = "/campaign/black-friday"  # 12 persons once each, plus the heavy user 40 times
HEAVY = 4
TOKYO = [i for i in range(26) if i != 7]
OSAKA = [i for i in range(26, 40) if i not in (30, 31, 32, 33)]  # 30-33: no consent or opt-out


# ---------------------------------------------------------------------------------------------
# folding rule


def test_values_to_fold_takes_rare_and_special_care_values_and_never_other() -> None:
    hist = pl.LazyFrame(
        {
            "url_template": [f"{HOST}/", f"{HOST}/", f"{HOST}/u/a/wishlist", OTHER, COMMON_CLINIC],
            "persons": [6, 6, 1, 2, 40],  # partition histograms sum: "/" has 12
        }
    )
    folded = set(values_to_fold(hist, "url_template", K, DEFAULT_SPECIAL_CARE).collect()[:, 0])
    assert folded == {f"{HOST}/u/a/wishlist", COMMON_CLINIC}
    public = SpecialCare(public=frozenset({COMMON_CLINIC}))
    assert set(values_to_fold(hist, "url_template", K, public).collect()[:, 0]) == {
        f"{HOST}/u/a/wishlist"
    }


@pytest.mark.parametrize(
    ("value", "special"),
    [
        (f"{HOST}/clinic/fertility-consultation", True),
        (f"{HOST}/dental-clinics", True),
        (f"{HOST}/search/%E7%97%85%E9%99%A2", True),  # 病院, percent-encoded
        (f"{HOST}/妊活", True),
        ("ＣＬＩＮＩＣ", True),  # full width, NFKC
        (f"{HOST}/archive", False),  # hiv only at a token start
        (f"{HOST}/items/:id", False),
        (f"{HOST}/u/takahashi.shota/wishlist", False),  # rare, not special: the k rule folds it
        (None, False),
    ],
)
def test_special_care_matching(value: str | None, special: bool) -> None:
    got = pl.select(DEFAULT_SPECIAL_CARE.matches(pl.lit(value, dtype=pl.String))).item()
    assert got is special


def test_fold_replaces_listed_values_and_keeps_order() -> None:
    lf = pl.LazyFrame({"v": ["a", "b", "a", "c", None], "n": [1, 2, 3, 4, 5]})
    out = fold(lf, "v", pl.LazyFrame({"v": ["a", "c"]})).collect()
    assert out["v"].to_list() == [OTHER, "b", OTHER, OTHER, None]
    assert out["n"].to_list() == [1, 2, 3, 4, 5]


def test_fold_rare_counts_persons_not_records() -> None:
    # one person with 50 records of a page is one person: folded at k = 2
    lf = pl.LazyFrame({"p": ["x"] * 50 + ["y", "z"], "v": ["solo"] * 50 + ["shared", "shared"]})
    out = fold_rare(lf, "v", "p", 2, DEFAULT_SPECIAL_CARE).collect()
    assert set(out["v"]) == {OTHER, "shared"}


def test_search_texts_that_mention_special_care_are_other() -> None:
    texts = ["不妊治療 ベビー", "妊娠検査薬", "baby clinic", "ベビー カー", "ワイヤレスイヤホン"]
    got = pl.select(categorize(pl.Series(texts).implode().explode())).to_series().to_list()
    assert got == [OTHER, OTHER, OTHER, "kids_baby", "electronics"]


def test_policy_declares_special_care_values_and_record_rules(tmp_path: Path) -> None:
    policy = load_policy(default_policy_dir())
    assert policy.records.l >= 2 and policy.records.max_records_per_person_class == M
    keywords = set(policy.special_care_values.keywords)
    assert {"clinic", "fertility", "病", "宗教", "犯罪"} <= keywords
    # an empty keyword list would fold nothing: refused at load time, naming the file
    for f in default_policy_dir().glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    root = tmp_path / "policy.yaml"
    root.write_text(
        root.read_text(encoding="utf-8").replace("  keywords: [", "  keywords: []\n  old: ["),
        encoding="utf-8",
    )
    with pytest.raises(PolicyError, match="policy.yaml"):
        load_policy(tmp_path)


# ---------------------------------------------------------------------------------------------
# records.py on frames


def _records(n_persons: int = 30, seed: int = 1) -> pl.DataFrame:
    """Persons of two ages and genders, each with a few common pages; a heavy user; vanity."""
    rng = random.Random(seed)
    rows = []
    common = [f"{HOST}/", f"{HOST}/cart", f"{HOST}/items/:id", f"{HOST}{CAMPAIGN}"]
    for i in range(n_persons):
        p = f"p{i:03d}"
        age, gender = (30 + i % 2 * 10, "female" if i % 3 else "male")
        for t in rng.sample(common, 3):
            rows.append((p, age, gender, "mobile", t))
    rows += [("p000", 30, "male", "mobile", f"{HOST}{CAMPAIGN}")] * 60  # heavy user
    rows += [("p001", 40, "female", "mobile", f"{HOST}{VANITY[0]}")]
    rows += [("p002", 30, "female", "mobile", f"{HOST}{RARE_CLINIC}")]
    rows += [(f"p{i:03d}", 30 + i % 2 * 10, "female" if i % 3 else "male", "mobile",
              f"{HOST}{COMMON_CLINIC}") for i in range(12)]  # fmt: skip
    return pl.DataFrame(
        rows, schema=["person", "age", "gender", "device_class", "url_template"], orient="row"
    )


QIS = {
    "age": AgeHierarchy(),
    "gender": CategoricalHierarchy(),
    "device_class": CategoricalHierarchy(),
}
RULES = RecordRules(k=K, l=2, max_records_per_person_class=M, max_suppression=0.05)


def test_bound_keeps_m_records_per_person_class_distinct_values_first_order_free() -> None:
    df = _records()
    cols = ["age", "gender", "device_class"]
    a = bound_contributions(df.lazy(), "person", cols, "url_template", M).collect()
    b = bound_contributions(df.sample(fraction=1.0, shuffle=True, seed=7).lazy(), "person", cols,
                            "url_template", M).collect()  # fmt: skip
    assert a.sort(a.columns).equals(b.sort(b.columns))  # the input order decides nothing
    per = a.group_by("person", *cols).agg(pl.len(), pl.col("url_template").n_unique().alias("d"))
    assert per["len"].max() <= M
    heavy = per.filter(pl.col("person") == "p000")
    # the heavy user keeps distinct pages first: 60 campaign views do not crowd them out
    assert heavy["len"].item() == M and heavy["d"].item() == M


def test_release_records_bounds_folds_and_is_l_diverse() -> None:
    res = release_records(_records(), QIS, "person", "url_template", RULES)
    out = res.frame
    assert res.metrics["released"] and out.height > 0
    cols = list(QIS)
    persons = out.group_by("url_template").agg(pl.col("person").n_unique())
    assert persons.filter(pl.col("url_template") != OTHER)["person"].min() >= K
    assert not out["url_template"].str.contains("clinic|/u/").any()
    assert out.group_by("person", *cols).len()["len"].max() <= M
    classes = out.group_by(cols).agg(
        pl.col("person").n_unique().alias("persons"),
        pl.col("url_template").n_unique().alias("distinct"),
    )
    assert classes["persons"].min() >= K and classes["distinct"].min() >= 2
    assert 0 < res.metrics["max_person_share"] <= M / (M + K - 1)
    check_column_model([*cols, "url_template"])


def test_class_distance_is_the_total_variation_from_the_release() -> None:
    df = pl.LazyFrame({"c": ["a"] * 4 + ["b"] * 4, "v": ["x", "x", "x", "y", "y", "y", "y", "z"]})
    got = dict(class_distances(df, ["c"], "v").collect().sort("c").iter_rows())
    # release: x 3/8, y 4/8, z 1/8; a: x 3/4, y 1/4; b: y 3/4, z 1/4
    assert got["a"] == pytest.approx(0.5 * (3 / 8 + 1 / 4 + 1 / 8))
    assert got["b"] == pytest.approx(0.5 * (3 / 8 + 1 / 4 + 1 / 8))


def test_t_closeness_when_the_policy_sets_it() -> None:
    loose = release_records(_records(), QIS, "person", "url_template", RULES)
    measured = loose.metrics["max_class_distance"]
    assert 0 < measured < 1
    t = measured / 2
    tight = RecordRules(k=K, l=2, max_records_per_person_class=M, max_suppression=0.05, t=t)
    res = release_records(_records(), QIS, "person", "url_template", tight)
    if res.frame.height:
        far = class_distances(res.frame.lazy(), list(QIS), "url_template").collect()
        assert far["distance"].max() <= t
    assert res.frame.height < loose.frame.height  # the far classes were withheld


def test_no_release_when_l_diversity_cannot_hold() -> None:
    df = pl.DataFrame(
        {
            "person": [f"p{i}" for i in range(20)],
            "age": [30] * 20,
            "gender": ["female"] * 20,
            "device_class": ["mobile"] * 20,
            "url_template": [f"{HOST}/"] * 20,  # one value: no class can hold 2
        }
    )
    res = release_records(df, QIS, "person", "url_template", RULES)
    assert res.frame.height == 0 and res.metrics["released"] is False
    assert res.frame.columns == ["person", *QIS, "url_template"]
    assert all(res.frame.schema[q] == pl.String for q in QIS)  # the schema GX validates


def test_a_column_without_a_model_is_never_published() -> None:
    with pytest.raises(ReleaseCheckError, match="referrer"):
        check_column_model(["age", "gender", "url_template", "referrer"])


# ---------------------------------------------------------------------------------------------
# a whole run on a landing written for it


MOBILE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


def _event(
    i: int, path: str, h: int, event: str = "page_view", ua: str = MOBILE_UA, **extra: str
) -> str:
    return json.dumps(
        {
            "ts": f"{DAY}T{10 + h % 12:02d}:{h % 60:02d}:00+09:00",
            "event": event,
            "cookie_id": f"cookie-{i:04d}",
            "user_id": f"user-{i:04d}",
            "session_id": f"s3-{i}",
            "user_agent": ua,
            **({"url": f"https://{HOST}{path}"} if path else {}),
            **extra,
        },
        ensure_ascii=False,
    )


def write_records_landing(root: Path) -> tuple[Path, dict[str, set[int]], dict[str, int]]:
    """The hand-made landing plus this test's page views; returns the landing, the users of
    each template and each user's views of the campaign page."""
    landing = write_handmade_landing(root)
    users: dict[str, set[int]] = {}
    views: dict[int, int] = {}
    lines: list[str] = []

    def view(i: int, path: str, times: int = 1, desktop: bool = False) -> None:
        for h in range(times):
            lines.append(_event(i, path, h, ua=DESKTOP_UA if desktop else MOBILE_UA))
        users.setdefault(f"{HOST}{path}", set()).add(i)
        if path == CAMPAIGN:
            views[i] = views.get(i, 0) + times

    for i in TOKYO:
        view(i, "/")
        view(i, "/cart")
    for i in TOKYO[9:21]:  # a desktop class of 12 persons next to the mobile ones
        view(i, "/", desktop=True)
        view(i, "/cart", desktop=True)
    # the Osaka persons view only /items/:id (the hand-made landing's page views): on their
    # own they are a class with one url_template value, which l-diversity must not publish
    for i in TOKYO[9:21]:
        view(i, CAMPAIGN)
        view(i, COMMON_CLINIC)
        lines.append(_event(i, "", 0, event="search", search_query="不妊治療 ベビー"))
    view(HEAVY, CAMPAIGN, 40)
    view(1, VANITY[0])
    view(2, VANITY[1])
    view(3, RARE_CLINIC)
    (landing / "events" / f"date={DAY}" / "part-2.jsonl").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    seal_landing(landing)
    users.setdefault(f"{HOST}/items/:id", set()).update(TOKYO + OSAKA)
    return landing, users, views


@pytest.mark.slow
def test_run_publishes_no_rare_or_special_care_template_and_bounded_l_diverse_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokumei.infra.settings import Settings
    from tokumei.pipeline import steps

    landing, users, campaign_views = write_records_landing(tmp_path / "landing")
    monkeypatch.setenv("TOKUMEI_PSEUDONYM_KEY", TEST_KEY)
    out = tmp_path / "out"
    settings = Settings(landing=landing, db_url=f"sqlite:///{landing / 'ops.db'}", out=out)
    steps.run_all(settings.resolved(), DAY, isolate=False)
    anon = read_published(out, "anonymized", "page_views")
    assert anon.height > 0
    published = set(anon["url_template"])
    # no vanity, shop-name or clinic template, however many persons used it
    for path in (*VANITY, RARE_CLINIC, COMMON_CLINIC):
        assert f"{HOST}{path}" not in published, path
    assert not anon["url_template"].str.contains("clinic").any()
    # every published template was used by at least k persons of the landing
    for t in published - {OTHER}:
        assert len(users.get(t, ())) >= K, t
    # the heavy user adds at most M campaign records: the class is not their history
    campaign = anon.filter(pl.col("url_template") == f"{HOST}{CAMPAIGN}").height
    assert campaign <= sum(min(v, M) for v in campaign_views.values())
    # distinct 2-diversity of url_template in every published class
    qis = ["age", "gender", "prefecture", "device_class"]
    assert anon.group_by(qis).agg(pl.col("url_template").n_unique())["url_template"].min() >= 2
    # the stats table folds with the same rule: the common clinic page is no row there either
    pv = read_published(out, "stats", "page_views")
    assert not pv["url_template"].str.contains("clinic|/u/|/shops/").any()
    # a special-care search is no kids_baby search
    sv = read_published(out, "stats", "search_volume")
    kb = sv.filter(pl.col("category") == "kids_baby")["persons"].to_list()
    assert all(p in (None, 0) for p in kb)
    # the run record reports the bound as a share, not as a count of persons
    rec = json.loads(next((out / "reports").rglob("manifest.json")).read_text(encoding="utf-8"))[
        "anonymized"
    ]
    assert 0 < rec["max_person_share"] <= M / (M + K - 1)


# ---------------------------------------------------------------------------------------------
# property: whatever the records, the release has the properties or is empty

PAGES = [f"{HOST}/", f"{HOST}/cart", f"{HOST}/items/:id", f"{HOST}/u/x/wishlist", COMMON_CLINIC]


@st.composite
def record_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(12, 60))
    rows = []
    for i in range(n):
        age = draw(st.sampled_from([25, 31, 38, 47, 62]))
        gender = draw(st.sampled_from(["female", "male", "other"]))
        views = draw(st.lists(st.sampled_from(PAGES), min_size=1, max_size=12))
        device = draw(st.sampled_from(["mobile", "desktop"]))
        rows += [(f"p{i:03d}", age, gender, device, v) for v in views]
    return pl.DataFrame(
        rows, schema=["person", "age", "gender", "device_class", "url_template"], orient="row"
    )


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(record_frames(), st.integers(1, 4), st.integers(2, 3))
def test_release_properties_hold_for_any_records(df: pl.DataFrame, m: int, l: int) -> None:  # noqa: E741
    rules = RecordRules(k=5, l=l, max_records_per_person_class=m, max_suppression=0.2)
    out = release_records(df, QIS, "person", "url_template", rules).frame
    if out.height == 0:
        return
    cols = list(QIS)
    per_value = out.group_by("url_template").agg(pl.col("person").n_unique().alias("p"))
    assert (per_value.filter(pl.col("url_template") != OTHER)["p"] >= 5).all()
    assert not out["url_template"].is_in([COMMON_CLINIC]).any()
    assert out.group_by("person", *cols).len()["len"].max() <= m
    classes = out.group_by(cols).agg(
        pl.col("person").n_unique().alias("persons"),
        pl.col("url_template").n_unique().alias("distinct"),
    )
    assert classes["persons"].min() >= 5 and classes["distinct"].min() >= l
    # every released record is one of the input's, QIs generalized: no record is invented
    assert out.height <= df.height
    assert set(out["person"]) <= set(df["person"])


def test_records_of_cells_the_statistics_table_suppressed_are_withheld() -> None:
    """Finding A of bench/results/attack.md: n records of a template on a device prove at least
    n / m persons in that page_views cell; a suppressed cell must not get such a bound."""
    base = _records()
    tablet = pl.DataFrame(
        [(f"p{i:03d}", 30 + i % 2 * 10, "female" if i % 3 else "male", "tablet", f"{HOST}{t}")
         for i in range(12) for t in ("/", "/cart")],  # fmt: skip
        schema=base.schema,
        orient="row",
    )
    records = pl.concat([base, tablet])
    templates = [f"{HOST}/", f"{HOST}/cart", f"{HOST}/items/:id", f"{HOST}{CAMPAIGN}", OTHER]
    hidden = (pl.col("url_template") == f"{HOST}/") & (pl.col("device_class") == "tablet")
    stats_table = pl.DataFrame(
        [(t, d, 25) for t in templates for d in ("mobile", "tablet")],
        schema={"url_template": pl.String, "device_class": pl.String, "persons": pl.Int64},
        orient="row",
    ).with_columns(pl.when(hidden).then(None).otherwise(pl.col("persons")).alias("persons"))
    res = release_records(records, QIS, "person", "url_template", RULES, stats_table)
    # the same release as if the suppressed cell's records had never been there
    expected = release_records(records.filter(~hidden), QIS, "person", "url_template", RULES)
    assert res.metrics["released"] and res.frame.height > 0
    assert res.frame.sort(res.frame.columns).equals(expected.frame.sort(res.frame.columns))
    assert not res.frame.equals(release_records(records, QIS, "person", "url_template", RULES).frame)
    assert res.metrics["withheld_records"] >= 12


def test_other_rows_stay_only_where_the_tables_other_cells_are_published() -> None:
    table = pl.DataFrame(
        {
            "url_template": [OTHER, OTHER, "/a"],
            "device_class": ["mobile", "tablet", "tablet"],
            "persons": [15, None, None],
        }
    )
    rows = pl.DataFrame(
        {
            "url_template": [OTHER, OTHER, OTHER, "/a"],
            "device_class": ["mobile", "tablet", "*", "tablet"],
        }
    )
    kept = rows.filter(other_rows_published(table, "url_template", "device_class"))
    # other on mobile is published; on tablet and on the generalized device it is not
    assert kept.rows() == [(OTHER, "mobile"), ("/a", "tablet")]
