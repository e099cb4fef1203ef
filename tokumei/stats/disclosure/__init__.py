"""Table disclosure control: small-cell suppression that stays suppressed.

``protect_table`` suppresses cells under the threshold (``primary``), adds complementary
suppressions so that no suppressed cell can be recovered from the margins of the same table
(``secondary``), proves it with a linear-programming attacker (``attacker``) and optionally
rounds the published values (``rounding``). ``noise`` offers differentially private counts
(OpenDP core measurements) as an alternative to suppression, with the budget recorded. See each
module's docstring for the model and its limits; ``protect`` for consistency across releases.
``release`` protects and audits a whole release as one linear system built from the relations
each table declares (``TableSpec.relations``; ADR 0001): ``protect_release`` and
``audit_release``.
"""

from tokumei.stats.disclosure._structure import additive_margins
from tokumei.stats.disclosure.attacker import attack
from tokumei.stats.disclosure.noise import (
    BudgetEntry,
    Ledger,
    NoiseResult,
    bound_contributions,
    dp_counts,
    noise_counts,
)
from tokumei.stats.disclosure.primary import flag_primary, primary_expr
from tokumei.stats.disclosure.protect import ProtectionResult, UnsafeTableError, protect_table
from tokumei.stats.disclosure.release import audit as audit_release
from tokumei.stats.disclosure.release import protect_release
from tokumei.stats.disclosure.rounding import round_counts, round_expr

__all__ = [
    "BudgetEntry",
    "Ledger",
    "NoiseResult",
    "ProtectionResult",
    "UnsafeTableError",
    "additive_margins",
    "attack",
    "audit_release",
    "bound_contributions",
    "dp_counts",
    "flag_primary",
    "noise_counts",
    "primary_expr",
    "protect_release",
    "protect_table",
    "round_counts",
    "round_expr",
]
