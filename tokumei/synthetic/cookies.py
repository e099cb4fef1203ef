"""The daily cookies export: every cookie seen that day, with its consent banner answers.

``last_seen`` is the cookie's last event of the day, so the partition date is the JST date of
``last_seen`` like every other source's timestamp. Consents of logged-in users' cookies follow
the user's consents in the operational DB; a few cookies never answered the banner (null).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tokumei.synthetic.common import ts_strings
from tokumei.synthetic.devices import Agents
from tokumei.synthetic.people import Population

COOKIE_COLUMNS = (
    "cookie_id", "user_id", "first_seen", "last_seen", "consent_analytics", "consent_ads",
)


def cookies_day(pop: Population, agents: Agents, agent_last_seen: np.ndarray) -> pl.DataFrame:
    """Rows for the agents whose cookie appeared in the day's events."""
    seen = np.flatnonzero(agent_last_seen >= 0)
    user = agents.user[seen]
    user_ids = pl.Series(pop.user_id, dtype=pl.String)
    consent = agents.cookie_consent[seen]
    return pl.DataFrame({
        "cookie_id": agents.frame["cookie_id"].gather(seen),
        "user_id": user_ids.gather(np.maximum(user, 0)),
        "first_seen": ts_strings(agents.first_seen_ms[seen]),
        "last_seen": ts_strings(agent_last_seen[seen]),
        "consent_analytics": consent["consent_analytics"],
        "consent_ads": consent["consent_ads"],
    }).with_columns(
        pl.when(pl.Series(user >= 0)).then(pl.col("user_id")).alias("user_id"),
    ).select(COOKIE_COLUMNS)
