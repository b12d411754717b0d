"""World sizes and the generator's behavioural parameters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Behaviour:
    """Parameters of the purchase process shared by all scales."""

    n_styles: int = 24  # latent fashion styles; a customer's segment is (style, price tier)
    n_price_tiers: int = 3
    history_slots: int = 16  # the recent purchases a customer may buy again
    one_time_share: float = 0.15  # customers with exactly one basket
    never_buy_share: float = 0.007  # customers in customers.csv who never buy
    bulk_share: float = 0.006  # customers whose baskets are several times larger
    churn_mean_weeks: float = 300.0  # mean weeks a customer stays after joining
    activity_sigma: float = 1.25  # lognormal spread of basket rates
    mean_basket_size: float = 3.0
    repurchase_mean: float = 0.03  # mean P(an item re-buys a recent purchase)
    sibling_mean: float = 0.05  # mean P(an item is another colour of a recent purchase)
    outfit_mean: float = 0.22  # mean P(a later basket item is an outfit partner of the first)
    online_mean: float = 0.70  # mean P(a basket is bought online)
    taste_concentration: float = 6.0  # Dirichlet concentration of personal product-group taste
    popularity_sigma: float = 1.0  # lognormal spread of article base popularity
    halflife_weeks: float = 12.0  # median weeks for an article's sales to halve after its peak
    affinity_scale: float = 1.0  # spread of segment tastes over index/type/colour/pattern
    duplicate_share: float = 0.045  # items bought as 2+ identical rows


@dataclass(frozen=True)
class ScaleConfig:
    """How big a world is."""

    name: str
    n_customers: int
    n_articles: int
    txn_per_customer: float  # target mean transaction rows per customer
    image_size: tuple[int, int] = (64, 96)  # width, height
    behaviour: Behaviour = field(default_factory=Behaviour)

    def to_dict(self) -> dict:
        """Plain dict for the world's metadata file."""
        return asdict(self)


SCALES: dict[str, ScaleConfig] = {
    "tiny": ScaleConfig("tiny", n_customers=3_000, n_articles=1_000, txn_per_customer=23.0),
    "small": ScaleConfig("small", n_customers=50_000, n_articles=10_000, txn_per_customer=30.0),
    "medium": ScaleConfig("medium", n_customers=137_198, n_articles=10_554, txn_per_customer=24.0),
    # A full catalogue spreads sales over ten times more articles: sharper segment tastes, a
    # heavier popularity tail and shorter lives keep the difficulty of the real task.
    "full": ScaleConfig(
        "full",
        n_customers=1_371_980,
        n_articles=105_542,
        txn_per_customer=24.0,
        behaviour=Behaviour(affinity_scale=1.7, popularity_sigma=1.5, halflife_weeks=10.0),
    ),
}
