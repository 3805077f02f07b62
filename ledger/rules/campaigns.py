"""Campaigns: for a range of business days, members get a multiple of the top-up bonus or of the
points a purchase earns ("double bonus during the May holiday"). Pure: the rules that use them get
the campaigns running on the request's business day in their View and ask here for the multiplier.
"""

from dataclasses import dataclass

CAMPAIGN_KINDS = ("bonus", "points")
# Multipliers are whole percent (200 is twice), so money never meets a float; at most ten times,
# a cap that stops a typo (2000 for 200) from giving away twenty times the bonus.
NO_MULTIPLIER_PCT = 100
MAX_MULTIPLIER_PCT = 1000


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    name: str
    kind: str            # "bonus" or "points"
    multiplier_pct: int  # 100..1000
    first_day: str       # business days, YYYY-MM-DD, both included
    last_day: str
    is_ended: bool = False

    def runs_on(self, business_day: str) -> bool:
        return not self.is_ended and self.first_day <= business_day <= self.last_day


def multiplier_pct(campaigns, kind: str, business_day: str) -> int:
    """The multiplier for ``kind`` on ``business_day``: the largest of the campaigns running then
    (campaigns do not stack, as bonus tiers do not), or 100 when none is."""
    return max((c.multiplier_pct for c in campaigns if c.kind == kind and c.runs_on(business_day)),
               default=NO_MULTIPLIER_PCT)


def multiplied(amount: int, pct: int) -> int:
    """``amount`` times ``pct`` percent, rounded down (the park never gives a fraction of a fen)."""
    return amount * pct // 100
