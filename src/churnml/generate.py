"""A synthetic B2B SaaS customer base that follows the data contract.

The generator is the embedded default that makes churnml runnable without data of
one's own. It simulates every account day by day with a few latent quantities and
causal stories a customer success manager would recognise:

* **Onboarding quality** ``q`` sets how fast milestones are reached; until the
  account reaches *first value* its engagement stays low, so poor onboarding means
  weak adoption and a risky first renewal.
* **Health** ``H`` is a mean-reverting latent state. It is hurt by a **champion
  leaving** (a sudden shock), by **friction episodes** (more tickets, slow
  resolutions), by **difficult support experiences** (low effort scores) and by a
  backlog of long-open tickets.
* **Engagement** ``E`` (share of the account's would-be users who use the product)
  follows health with a lag; daily active users, events and feature use follow
  engagement, so usage and its trend fall before churn.
* **Churn concentrates at renewals** (``contract_end``; monthly and annual terms by
  default, any mix per segment through ``GeneratorConfig.terms``, e.g. quarterly or
  multi-year):
  some weeks before the term ends the customer decides, with a probability driven
  by health, engagement, recent difficult experiences, a lost champion and tenure.
  Customers who decide to leave disengage before the term ends. A small hazard of
  sudden closure (not predictable) and a few win-backs exist too.
* **Expansion** happens when seats run full on a healthy account (the would-be user
  pool grows with the customer's company); **contraction** at renewal when many
  seats sit unused.
* **NPS** is a weak, noisy signal; CES answers follow the effort of real tickets.
* Segments (SMB / Mid-Market / Enterprise) differ in size, price, term and risk.

Everything is vectorised over accounts and deterministic per seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
PLANS = ("Starter", "Pro", "Business", "Enterprise")
PLAN_PRICE = np.array([20.0, 35.0, 50.0, 62.0])  # per seat per month
FEATURES = ("reports", "dashboards", "integrations", "automations", "api")
MILESTONES = ("kickoff", "admin_setup", "integration_live", "first_value", "training_complete")
MILESTONE_DUE = np.array([5, 14, 30, 35, 60])  # days after signup
PRIORITIES = np.array(["low", "normal", "high", "urgent"])
CATEGORIES = np.array(["how-to", "bug", "integration", "billing", "performance", "access"])
INDUSTRIES = np.array(
    [
        "Software",
        "Healthcare",
        "Finance",
        "Retail",
        "Manufacturing",
        "Education",
        "Media",
        "Logistics",
        "Real Estate",
        "Professional Services",
    ]
)
REGIONS = np.array(["North America", "EMEA", "APAC", "LATAM"])
CSMS = {
    "SMB": ["Priya Natarajan", "Tom O'Hara", "Lena Fischer"],
    "Mid-Market": ["Marcus Bell", "Sofia Alvarez", "Kenji Watanabe", "Chloé Martin"],
    "Enterprise": ["Grace Okafor", "Daniel Novak", "Aisha Rahman"],
}
_NAME_A = np.array(
    [
        "Blue",
        "North",
        "Bright",
        "Iron",
        "Silver",
        "Quantum",
        "Green",
        "Summit",
        "Cedar",
        "Atlas",
        "Nova",
        "Harbor",
        "Pioneer",
        "Vertex",
        "Maple",
        "Orbit",
        "Crimson",
        "Delta",
        "Echo",
        "Falcon",
        "Granite",
        "Horizon",
        "Lumen",
        "Meridian",
        "Oak",
        "Prism",
        "Redwood",
        "Sierra",
        "Tidal",
        "Union",
    ]
)
_NAME_B = np.array(
    [
        "Analytics",
        "Logistics",
        "Health",
        "Labs",
        "Systems",
        "Foods",
        "Dynamics",
        "Works",
        "Capital",
        "Media",
        "Robotics",
        "Energy",
        "Partners",
        "Retail",
        "Studios",
        "Networks",
        "Bio",
        "Learning",
        "Freight",
        "Software",
    ]
)
_NAME_C = np.array(["Inc", "Ltd", "GmbH", "LLC", "Group", "Co", "SA", "AG", "BV", "Pty"])
# names with characters that must stay text on a page (ampersands and apostrophes are ordinary in company names)
_ODD_NAMES = np.array(
    [
        "Smith & Sons",
        "Acme Widgets",
        "The Best Bakery",
        "O'Reilly & Partners",
        "Ben & Jerry's Tools",
        "Müller Technik",
        "A&B Prime Co",
        "Scriptorium Ltd",
    ]
)
# the same draws as hostile text (markup, quotes, a script tag): for tests of escaping, never the demo
_HOSTILE_NAMES = np.array(
    [
        "Smith & Sons",
        "<Acme> Widgets",
        'The "Best" Bakery',
        "O'Reilly & Partners",
        "Ben & Jerry's Tools",
        "Müller <Technik>",
        'A&B "Prime" Co',
        "<script>alert(1)</script> Ltd",
    ]
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Settings of a synthetic base (all documented in ``churnml generate --help``).

    ``terms``: the contract-term mix per segment, ``{segment: {term_days: share}}`` (shares
    of a segment sum to 1), or one ``{term_days: share}`` mix for every segment, or a
    preset name of :data:`TERM_PRESETS`; ``None`` is :data:`DEFAULT_TERMS` (the demo's
    monthly and annual mix). :func:`parse_terms` reads the text form.

    ``end``: the last day of the data, a date or ``"yesterday"`` (:func:`resolve_end`); the fixed
    default keeps a seed's base the same from day to day (``churnml generate`` uses ``yesterday``).

    ``hostile_names``: about 3% of the names carry markup and quotes (``<script>alert(1)</script> Ltd``,
    ``Müller <Technik>``), for tests that every page and file keeps a name as text; off by default,
    so a demo base holds only plausible company names. Everything else is the same base either way.
    """

    accounts: int = 5000
    seed: int = 42
    end: str = "2026-10-31"
    years: float = 3.0
    terms: Mapping | str | None = None
    hostile_names: bool = False


# term mix per segment: the demo's (monthly and annual terms only)
DEFAULT_TERMS = {"SMB": {30: 0.6, 365: 0.4}, "Mid-Market": {30: 0.2, 365: 0.8}, "Enterprise": {365: 1.0}}
# other shapes of base, for tests and studies; every segment's mix is listed
TERM_PRESETS = {
    "default": DEFAULT_TERMS,
    "monthly": {"SMB": {30: 1.0}, "Mid-Market": {30: 1.0}, "Enterprise": {30: 1.0}},
    "annual": {"SMB": {365: 1.0}, "Mid-Market": {365: 1.0}, "Enterprise": {365: 1.0}},
    "quarterly": {
        "SMB": {30: 0.3, 90: 0.5, 365: 0.2},
        "Mid-Market": {90: 0.4, 365: 0.6},
        "Enterprise": {90: 0.2, 365: 0.8},
    },
    "multi-year": {
        "SMB": {30: 0.4, 365: 0.6},
        "Mid-Market": {365: 0.6, 730: 0.4},
        "Enterprise": {365: 0.3, 730: 0.3, 1095: 0.4},
    },
    "mixed": {
        "SMB": {30: 0.4, 90: 0.2, 365: 0.4},
        "Mid-Market": {30: 0.1, 90: 0.2, 365: 0.5, 730: 0.2},
        "Enterprise": {365: 0.5, 730: 0.25, 1095: 0.25},
    },
}

# intercepts of the renewal decision (per renewal) for monthly and annual terms; other
# terms interpolate in log(term) between them (shorter terms) or add log(term / 365)
# (multi-year terms: one decision covers more time, so it is more often a no)
_LOGIT_MONTHLY = -6.0
_LOGIT_ANNUAL = -2.95


def renewal_intercept(term_days):
    """Intercept of the renewal decision's logit for a term of ``term_days`` (array-wise)."""
    t = np.asarray(term_days, dtype=float)
    short = _LOGIT_MONTHLY + (_LOGIT_ANNUAL - _LOGIT_MONTHLY) * np.log(np.maximum(t, 1) / 30) / np.log(365 / 30)
    out = np.where(t <= 365, short, _LOGIT_ANNUAL + np.log(t / 365))
    out = np.where(t == 30, _LOGIT_MONTHLY, np.where(t == 365, _LOGIT_ANNUAL, out))
    return out


def decision_lead_days(term_days):
    """How many days before the term ends the customer decides (array-wise)."""
    t = np.asarray(term_days)
    return np.where(t <= 31, 10, np.where(t <= 92, 25, np.where(t <= 365, 50, 90)))


def resolve_terms(terms) -> dict[str, dict[int, float]]:
    """The term mix per segment for ``GeneratorConfig.terms`` (checked; ``ValueError`` names the problem)."""
    if terms is None:
        return DEFAULT_TERMS
    if isinstance(terms, str):
        return parse_terms(terms)
    terms = dict(terms)
    if terms and all(not isinstance(v, Mapping) for v in terms.values()):
        terms = dict.fromkeys(SEGMENTS, terms)  # one mix for every segment
    unknown = sorted(set(map(str, terms)) - set(SEGMENTS))
    if unknown:
        raise ValueError(f"terms: unknown segment(s) {unknown}; segments are {list(SEGMENTS)}")
    out = {}
    for seg in SEGMENTS:
        mix = terms.get(seg, DEFAULT_TERMS[seg])
        clean: dict[int, float] = {}
        for t, share in dict(mix).items():
            days, share = int(t), float(share)
            if days != float(t) or not 7 <= days <= 3650:
                raise ValueError(f"terms: {seg} term {t!r} must be a whole number of days in 7..3650")
            if not (share >= 0):
                raise ValueError(f"terms: {seg} share of the {days}-day term must be >= 0, got {share}")
            clean[days] = clean.get(days, 0.0) + share
        total = sum(clean.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"terms: the shares of {seg} must sum to 1, got {total:g} ({clean})")
        out[seg] = clean
    return out


def parse_terms(spec: str) -> dict[str, dict[int, float]]:
    """Read a term mix: a preset name (``default``, ``monthly``, ``annual``, ``quarterly``,
    ``multi-year``, ``mixed``), ``30:0.5,365:0.5`` (every segment), or per segment
    ``SMB=30:0.6,365:0.4;Mid-Market=365:1;Enterprise=365:0.5,1095:0.5`` (segments left
    out keep the demo's mix)."""
    spec = spec.strip()
    if spec in TERM_PRESETS:
        return resolve_terms(TERM_PRESETS[spec])

    def mix(text):
        out = {}
        for part in filter(None, (x.strip() for x in text.split(","))):
            days, _, share = part.partition(":")
            try:
                out[int(days)] = float(share)
            except ValueError:
                raise ValueError(f"terms: cannot read {part!r} in {spec!r}; write DAYS:SHARE, e.g. 365:0.5") from None
        return out

    if "=" not in spec:
        if ":" not in spec:
            raise ValueError(
                f"terms: unknown preset {spec!r}; presets are {sorted(TERM_PRESETS)}, "
                f"or write DAYS:SHARE pairs such as 30:0.5,365:0.5"
            )
        return resolve_terms(mix(spec))
    per = {}
    for block in filter(None, (x.strip() for x in spec.split(";"))):
        seg, _, text = block.partition("=")
        per[seg.strip()] = mix(text)
    return resolve_terms(per)


def resolve_end(end: str, today=None) -> pd.Timestamp:
    """The last day of a generated base: ``"yesterday"`` (the day before ``today``, default the real
    today: a fresh base scores as of today, so its pages are never old), ``"today"``, or a date."""
    day = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    text = str(end).strip().lower()
    if text == "yesterday":
        return day - pd.Timedelta(days=1)
    if text == "today":
        return day
    try:
        return pd.Timestamp(end).normalize()
    except (ValueError, TypeError):
        raise ValueError(f"end must be a date YYYY-MM-DD, 'yesterday' or 'today', not {end!r}") from None


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def generate(cfg: GeneratorConfig) -> dict[str, pd.DataFrame]:
    """Simulate a customer base and return the six contract tables as DataFrames."""
    if cfg.accounts < 1:
        raise ValueError("accounts must be >= 1")
    if cfg.years <= 0.25:
        raise ValueError("years must be > 0.25")
    rng = np.random.default_rng(cfg.seed)
    end = resolve_end(cfg.end)
    n_days = round(cfg.years * 365) + 1
    start = end - pd.Timedelta(days=n_days - 1)
    n = cfg.accounts
    sim = _Simulation(rng, n, n_days, start.day_of_week, resolve_terms(cfg.terms))
    sim.run()
    return sim.tables(start, _HOSTILE_NAMES if cfg.hostile_names else _ODD_NAMES)


def _draw_terms(u: np.ndarray, seg: np.ndarray, terms: dict[str, dict[int, float]]) -> np.ndarray:
    """Each account's term from its uniform draw ``u``: the segment's terms in the order
    given, each taking its share of [0, 1) (so the demo's mix reproduces ``u < p_monthly``)."""
    out = np.empty(len(u), np.int64)
    for s, name in enumerate(SEGMENTS):
        m = seg == s
        days = np.array(list(terms[name].keys()), np.int64)
        cum = np.cumsum(list(terms[name].values()))
        out[m] = days[np.minimum(np.searchsorted(cum, u[m], side="right"), len(days) - 1)]
    return out


class _Simulation:
    """Day-by-day simulation; every array is indexed by account."""

    def __init__(self, rng: np.random.Generator, n: int, n_days: int, start_weekday: int = 0, terms=None):
        self.rng, self.n, self.n_days = rng, n, n_days
        self.start_weekday = start_weekday  # 0 = Monday, the weekday of simulation day 0
        r = rng
        # --- static attributes -------------------------------------------------------
        self.seg = r.choice(3, size=n, p=[0.6, 0.3, 0.1])
        # signups grow over time (density ~ exp(0.7 t)) over all but the last month
        u = r.random(n)
        g = 0.7
        span = n_days - 31
        self.signup = np.floor(np.log1p(u * (np.exp(g) - 1)) / g * span).astype(np.int64)
        seats_mu = np.array([np.log(8), np.log(45), np.log(260)])[self.seg]
        seats_sd = np.array([0.55, 0.5, 0.6])[self.seg]
        lo, hi = np.array([2, 15, 80])[self.seg], np.array([40, 300, 3000])[self.seg]
        self.seats = np.clip(np.round(np.exp(r.normal(seats_mu, seats_sd))), lo, hi).astype(np.int64)
        plan = np.where(
            self.seg == 0,
            np.where(r.random(n) < 0.7, 0, 1),
            np.where(self.seg == 1, np.where(r.random(n) < 0.75, 1, 2), 3),
        )
        self.plan = plan.astype(np.int64)
        self.discount = np.where(
            self.seg == 2, r.uniform(0.7, 0.95, n), np.where(self.seg == 1, r.uniform(0.85, 1.0, n), 1.0)
        )
        self.term = _draw_terms(r.random(n), self.seg, terms or DEFAULT_TERMS)
        q = r.beta(2.4, 1.8, n) + np.array([0.0, 0.05, 0.12])[self.seg]
        self.q = np.clip(q, 0.0, 1.0)
        self.base_h = r.normal(np.array([-0.15, 0.0, 0.2])[self.seg], 0.55)
        self.growth = r.normal(0.12, 0.15, n)  # yearly growth of would-be users
        self.weekend = r.uniform(0.05, 0.3, n)
        self.epu = r.lognormal(np.log(14), 0.35, n)  # events per active user per day
        self.depth = r.uniform(0.6, 1.4, (len(FEATURES), n))
        self.tk_base = np.array([0.02, 0.06, 0.18])[self.seg] * r.lognormal(0, 0.4, n)
        # --- onboarding milestones (first contract only) -----------------------------
        self._milestones()
        # --- dynamic state -----------------------------------------------------------
        self.alive = np.zeros(n, bool)
        self.H = self.base_h.copy()
        self.E = np.full(n, 0.1)
        self.P = self.seats * r.uniform(0.6, 1.0, n)  # would-be users
        self.decided = np.zeros(n, bool)
        self.renewal = np.full(n, -1, np.int64)
        self.champ_day = np.full(n, -10_000, np.int64)
        self.friction_until = np.full(n, -1, np.int64)
        self.diff = np.zeros(n)  # EWMA count of difficult support experiences
        self.tk_ewma = np.zeros(n)  # EWMA count of all tickets (same decay)
        # a difficult experience hurts a small account's health more than a large one's
        self.size_norm = np.sqrt(1 + 30 * self.tk_base * np.sqrt(self.seats / 10))
        self.diff_hit = 0.2 / self.size_norm**2
        self.comeback = np.full(n, -1, np.int64)
        self.adopted = r.random((len(FEATURES), n)) < np.array([0.5, 0.4, 0.0, 0.15, 0.1])[:, None]
        horizon = n_days + 400
        self.long_open_delta = np.zeros((horizon, n), np.int16)
        self.long_open = np.zeros(n, np.int64)
        # --- outputs -----------------------------------------------------------------
        self.sub_rows: list[tuple] = []
        self.usage_chunks: list[tuple] = []
        self.ticket_chunks: list[dict] = []
        self.nps_chunks: list[tuple] = []

    # ---------------------------------------------------------------------------------
    def _milestones(self):
        r, n = self.rng, self.n
        k = len(MILESTONES)
        q = self.q[:, None]
        # relative delay vs the plan: good onboarding finishes early, poor one late
        factor = np.exp(r.normal(0.5 - 1.3 * q, 0.45, (n, k)))
        days = np.round(MILESTONE_DUE[None, :] * factor).astype(np.int64)
        days = np.maximum.accumulate(days, axis=1)  # milestones happen in order
        never_p = np.clip(0.02 + 0.5 * (1 - q) ** 2 * np.array([0.0, 0.3, 0.8, 1.0, 1.2])[None, :], 0, 0.9)
        never = r.random((n, k)) < never_p
        never = np.logical_or.accumulate(never, axis=1)  # nothing after a stalled step
        self.ms_done = np.where(never, -1, self.signup[:, None] + days)
        self.ms_has_due = (self.seg[:, None] > 0) | (r.random((n, 1)) < 0.6)
        self.ms_has_due = np.broadcast_to(self.ms_has_due, (n, k))
        # SMB self-serve accounts often have no planned onboarding at all
        self.ms_present = np.broadcast_to(~((self.seg == 0) & (r.random(n) < 0.15))[:, None], (n, k))
        fv = self.ms_done[:, MILESTONES.index("first_value")]
        self.fv_day = np.where(fv < 0, 10**9, fv)
        integ = self.ms_done[:, MILESTONES.index("integration_live")]
        self.integ_day = np.where(integ < 0, 10**9, integ)

    # ---------------------------------------------------------------------------------
    def _sub_row(self, idx, day, mrr_zero=False):
        mrr = 0.0 if mrr_zero else None
        for a in np.atleast_1d(idx):
            m = 0.0 if mrr_zero else round(float(self.seats[a] * PLAN_PRICE[self.plan[a]] * self.discount[a]), 2)
            ce = -1 if mrr_zero else int(self.renewal[a])
            self.sub_rows.append(
                (int(a), int(day), m if mrr is None else mrr, int(self.seats[a]), int(self.plan[a]), ce)
            )

    def run(self):
        r, n = self.rng, self.n
        for d in range(self.n_days):
            # --- signups and win-backs --------------------------------------------
            new = np.flatnonzero(self.signup == d)
            if new.size:
                self.alive[new] = True
                self.renewal[new] = d + self.term[new]
                self._sub_row(new, d)
            back = np.flatnonzero(self.comeback == d)
            if back.size:
                self.alive[back] = True
                self.decided[back] = False
                self.comeback[back] = -1
                self.H[back] = self.base_h[back] + 0.3
                self.E[back] = 0.3
                self.seats[back] = np.maximum(2, np.round(self.seats[back] * r.uniform(0.5, 1.0, back.size))).astype(
                    np.int64
                )
                self.P[back] = self.seats[back] * r.uniform(0.6, 0.9, back.size)
                self.renewal[back] = d + self.term[back]
                self._sub_row(back, d)
            al = self.alive
            if not al.any():
                continue
            # --- shocks -------------------------------------------------------------
            champ = al & (r.random(n) < 1 / 1100)
            self.H[champ] -= 1.1
            self.champ_day[champ] = d
            fr_start = al & (self.friction_until < d) & (r.random(n) < np.array([1 / 700, 1 / 500, 1 / 420])[self.seg])
            self.friction_until[fr_start] = d + r.integers(20, 100, n)[fr_start]
            friction = self.friction_until >= d
            # --- latent health and engagement --------------------------------------
            self.long_open += self.long_open_delta[d]
            self.H += (self.base_h - self.H) / 120 + r.normal(0, 0.035, n)
            self.H -= 0.01 * friction + 0.004 * np.minimum(self.long_open / self.size_norm, 5)
            valued = d >= self.fv_day
            tenure = d - self.signup
            target = _sigmoid(0.5 + 1.5 * self.H + 2.2 * (self.q - 0.5))
            target = target * np.where(valued, 1.0, np.where(tenure < 120, 0.45, 0.3))
            target *= np.where(d - self.champ_day < 150, 0.7, 1.0)
            target *= np.where(self.decided, 0.25, 1.0)
            self.E += (target - self.E) / 22 + r.normal(0, 0.01, n)
            self.E = np.clip(self.E, 0.01, 1.0)
            self.P *= np.exp((self.growth + 0.15 * np.tanh(self.H)) / 365)
            # feature adoption: integrations after the integration milestone; others grow with engagement
            self.adopted[2] |= d >= self.integ_day
            grow = r.random((len(FEATURES), n)) < (0.004 * self.E)[None, :]
            self.adopted |= grow & ~self.decided[None, :]
            drop = r.random((len(FEATURES), n)) < np.where(self.decided | (self.E < 0.2), 0.02, 0.0005)[None, :]
            self.adopted &= ~drop
            # --- usage ---------------------------------------------------------------
            wd = (d + self.start_weekday) % 7  # 0 = Monday; Saturday and Sunday are the weekend
            wk = np.where(wd >= 5, self.weekend, 1.0)
            users = np.where(al, np.minimum(self.P * self.E, self.seats), 0.0)
            active = r.binomial(np.round(users).astype(np.int64), np.clip(0.55 * wk, 0, 1))
            on = np.flatnonzero(active > 0)
            if on.size:
                act = active[on]
                ev = r.poisson(act * self.epu[on] * (0.6 + 0.8 * self.E[on]))
                lam = (
                    act[None, :]
                    * self.depth[:, on]
                    * self.adopted[:, on]
                    * np.array([0.8, 1.2, 0.5, 0.6, 2.0])[:, None]
                )
                feats = r.poisson(lam)
                self.usage_chunks.append((d, on, act, ev, feats))
            # --- support tickets -----------------------------------------------------
            lam_t = (
                self.tk_base
                * np.sqrt(self.seats / 10)
                * (1 + 2.5 * friction)
                * np.where(self.decided, 0.4, 1.0)
                * np.where(tenure < 60, 1.6, 1.0)
            )
            nt = r.poisson(np.where(al, lam_t, 0.0))
            if nt.any():
                self._tickets(d, np.repeat(np.arange(n), nt), friction)
            self.diff *= 1 - 1 / 60
            self.tk_ewma *= 1 - 1 / 60
            # --- NPS (weak, noisy) ----------------------------------------------------
            nps = np.flatnonzero(al & (r.random(n) < 1 / 100))
            if nps.size:
                score = np.clip(np.round(7.2 + 0.35 * self.H[nps] + r.normal(0, 2.3, nps.size)), 0, 10)
                self.nps_chunks.append((d, nps, score))
            # --- sudden closure (not predictable) ------------------------------------
            close = np.flatnonzero(al & (r.random(n) < 1 / (365 * 30)))
            if close.size:
                self._churn(close, d)
            # --- renewal decisions and renewals --------------------------------------
            lead = decision_lead_days(self.term)
            dec = np.flatnonzero(self.alive & ~self.decided & (self.renewal - d == lead))
            if dec.size:
                self._decide(dec, d)
            ren = np.flatnonzero(self.alive & (self.renewal == d))
            if ren.size:
                self._renew(ren, d)
            # --- mid-term expansion when seats run full ------------------------------
            chk = self.alive & ~self.decided & ((d - self.signup) % 30 == 15)
            full = chk & (0.92 * self.seats < self.P * self.E) & (self.H > -0.4)
            exp_p = np.array([0.12, 0.12, 0.1])[self.seg]
            grow_idx = np.flatnonzero(full & (r.random(n) < exp_p))
            if grow_idx.size:
                need = self.P[grow_idx] * self.E[grow_idx] * r.uniform(1.15, 1.5, grow_idx.size)
                self.seats[grow_idx] = np.maximum(np.ceil(need), np.ceil(self.seats[grow_idx] * 1.1)).astype(np.int64)
                self._sub_row(grow_idx, d)

    def _tickets(self, d, acc, friction):
        r = self.rng
        k = acc.size
        fr = friction[acc]
        pr_p = np.where(fr[:, None], [[0.1, 0.45, 0.3, 0.15]], [[0.25, 0.55, 0.15, 0.05]])
        c = pr_p.cumsum(1)
        pr = (r.random(k)[:, None] > c).sum(1)
        cat = r.choice(len(CATEGORIES), size=k, p=[0.3, 0.25, 0.12, 0.08, 0.1, 0.15])
        hours = r.lognormal(np.log(18) + 0.9 * fr - 0.25 * pr + 0.2 * (cat == 1), 1.0)
        opened = d + r.random(k) * 0.999
        closed = opened + hours / 24
        reopened = r.random(k) < 0.05 + 0.08 * fr
        closed = closed + reopened * r.lognormal(np.log(3), 0.6, k)  # extra days after a reopen
        first_resp = r.lognormal(np.log(np.array([600, 240, 60, 20])[pr]) + 0.5 * fr, 0.7)
        effort = 5.4 - 1.1 * np.log1p(closed - opened) - 1.0 * fr - 0.8 * reopened + r.normal(0, 1.0, k)
        ces = np.clip(np.round(effort), 1, 7)
        difficult = ces <= 3
        np.add.at(self.diff, acc, difficult)
        np.add.at(self.tk_ewma, acc, 1.0)
        np.add.at(self.H, acc, -self.diff_hit[acc] * difficult)
        # tickets open longer than 3 days count as backlog (they irritate the customer)
        long_ = (closed - opened) > 3
        if long_.any():
            la = acc[long_]
            start = np.minimum(d + 3, self.long_open_delta.shape[0] - 1)
            stop = np.minimum(np.ceil(closed[long_]).astype(np.int64), self.long_open_delta.shape[0] - 1)
            np.add.at(self.long_open_delta, (np.full(la.size, start), la), 1)
            np.add.at(self.long_open_delta, (stop, la), -1)
        self.ticket_chunks.append(
            {
                "acc": acc,
                "opened": opened,
                "closed": closed,
                "pr": pr,
                "cat": cat,
                "first_resp": first_resp,
                "ces": ces,
                "csat_lat": effort,
            }
        )

    def _decide(self, idx, d):
        r = self.rng
        tenure_y = (d - self.signup[idx]) / 365
        logit = (
            renewal_intercept(self.term[idx])
            + np.array([0.3, 0.0, -0.8])[self.seg[idx]]
            - 1.2 * self.H[idx]
            - 3.0 * (self.E[idx] - 0.6)
            + 4.5 * ((self.diff[idx] + 0.25) / (self.tk_ewma[idx] + 1.0) - 0.22)
            + 0.35 * np.minimum(self.long_open[idx] / self.size_norm[idx], 3)
            + 0.6 * (d - self.champ_day[idx] < 200)
            + 0.7 * (d < self.fv_day[idx])
            - 0.3 * np.minimum(tenure_y, 3)
        )
        self.decided[idx] = r.random(idx.size) < _sigmoid(logit)

    def _churn(self, idx, d):
        r = self.rng
        self._sub_row(idx, d, mrr_zero=True)
        self.alive[idx] = False
        self.decided[idx] = False
        self.renewal[idx] = -1
        wb = idx[r.random(idx.size) < 0.07]
        self.comeback[wb] = d + r.integers(45, 300, wb.size)

    def _renew(self, idx, d):
        r = self.rng
        leaving = self.decided[idx]
        stay = idx[~leaving]
        if leaving.any():
            self._churn(idx[leaving], d)
        if not stay.size:
            return
        used = self.P[stay] * self.E[stay]
        # contraction: many seats unused at renewal
        # (terms between monthly and annual: in proportion to the term, so about as often per year)
        shrink_p = np.where(self.term[stay] <= 31, 0.08, 0.5 * np.minimum(self.term[stay] / 365, 1.0))
        shrink = (used < 0.55 * self.seats[stay]) & (r.random(stay.size) < shrink_p)
        new_seats = np.where(shrink, np.maximum(np.ceil(used * 1.15), 2), self.seats[stay])
        # expansion at renewal: seats running full on a healthy account
        grow_p = np.where(self.term[stay] <= 31, 0.1, 0.5 * np.minimum(self.term[stay] / 365, 1.0))
        grow = (used > 0.9 * self.seats[stay]) & (self.H[stay] > -0.3) & (r.random(stay.size) < grow_p)
        new_seats = np.where(grow, np.ceil(np.maximum(used * 1.3, self.seats[stay] * 1.12)), new_seats)
        up = (self.plan[stay] < 2) & (self.H[stay] > 0.3) & (r.random(stay.size) < 0.08)
        self.plan[stay] = self.plan[stay] + up
        self.seats[stay] = new_seats.astype(np.int64)
        self.renewal[stay] = d + self.term[stay]
        self._sub_row(stay, d)

    # ---------------------------------------------------------------------------------
    def tables(self, start: pd.Timestamp, odd_names: np.ndarray = _ODD_NAMES) -> dict[str, pd.DataFrame]:
        r = self.rng
        n, n_days = self.n, self.n_days
        ids = np.array([f"A{i:06d}" for i in range(n)], dtype=object)
        day = lambda x: (start + pd.to_timedelta(np.asarray(x), unit="D")).astype("datetime64[us]")  # noqa: E731
        # accounts --------------------------------------------------------------------
        names = (
            _NAME_A[r.integers(0, len(_NAME_A), n)].astype(object)
            + " "
            + _NAME_B[r.integers(0, len(_NAME_B), n)].astype(object)
            + " "
            + _NAME_C[r.integers(0, len(_NAME_C), n)].astype(object)
        )
        odd = r.random(n) < 0.03
        names[odd] = odd_names[r.integers(0, len(odd_names), odd.sum())]
        seg_names = np.array(SEGMENTS, dtype=object)[self.seg]
        csm = np.empty(n, dtype=object)
        for segment, people in CSMS.items():
            m = seg_names == segment
            csm[m] = np.array(people, dtype=object)[r.integers(0, len(people), m.sum())]
        csm[(self.seg == 0) & (r.random(n) < 0.1)] = None  # tech-touch accounts without a named CSM
        accounts = pd.DataFrame(
            {
                "account_id": ids,
                "name": names,
                "segment": seg_names,
                "industry": INDUSTRIES[r.integers(0, len(INDUSTRIES), n)].astype(object),
                "region": REGIONS[r.choice(len(REGIONS), n, p=[0.5, 0.3, 0.15, 0.05])].astype(object),
                "csm_owner": csm,
                "signup_date": day(self.signup).date,
            }
        )
        accounts["signup_date"] = pd.to_datetime(accounts["signup_date"])
        # subscriptions -----------------------------------------------------------------
        s = np.array(self.sub_rows, dtype=object).reshape(-1, 6)
        sa, sd, sm, ss, sp, sc = (s[:, i] for i in range(6))
        sc = np.asarray(sc, dtype=np.int64)
        subs = pd.DataFrame(
            {
                "account_id": ids[sa.astype(np.int64)],
                "effective_date": day(sd.astype(np.int64)),
                "mrr": sm.astype(float),
                "seats": ss.astype(np.int64),
                "plan": np.array(PLANS, dtype=object)[sp.astype(np.int64)],
                "contract_end": pd.Series(day(np.where(sc < 0, 0, sc))).where(sc >= 0),
            }
        )
        # a churned account (mrr 0) holds no plan or seats
        subs.loc[subs["mrr"] == 0, ["seats"]] = 0
        subs = subs.sort_values(["account_id", "effective_date"], kind="stable")
        # a same-day double row (e.g. closure and renewal) keeps the last event of the day
        subs = subs.drop_duplicates(["account_id", "effective_date"], keep="last").reset_index(drop=True)
        # usage -----------------------------------------------------------------------
        d_ = np.concatenate([np.full(c[1].size, c[0]) for c in self.usage_chunks])
        a_ = np.concatenate([c[1] for c in self.usage_chunks])
        usage = pd.DataFrame(
            {
                "account_id": ids[a_],
                "date": day(d_),
                "active_users": np.concatenate([c[2] for c in self.usage_chunks]).astype(np.int64),
                "events": np.concatenate([c[3] for c in self.usage_chunks]).astype(np.int64),
            }
        )
        feats = np.concatenate([c[4] for c in self.usage_chunks], axis=1)
        for i, f in enumerate(FEATURES):
            usage[f"feature_{f}"] = feats[i].astype(np.int64)
        usage = usage.sort_values(["account_id", "date"], kind="stable").reset_index(drop=True)
        # tickets and the surveys about them ---------------------------------------------
        tk = {k: np.concatenate([c[k] for c in self.ticket_chunks]) for k in self.ticket_chunks[0]}
        m = tk["opened"].size
        ts = lambda x: (start + pd.to_timedelta(np.round(np.asarray(x) * 86400), unit="s")).astype("datetime64[us]")  # noqa: E731
        closed_known = tk["closed"] < n_days
        tickets = pd.DataFrame(
            {
                "ticket_id": np.array([f"T{i:07d}" for i in range(m)], dtype=object),
                "account_id": ids[tk["acc"]],
                "opened_at": ts(tk["opened"]),
                "closed_at": pd.Series(ts(np.where(closed_known, tk["closed"], 0))).where(closed_known),
                "priority": PRIORITIES[tk["pr"]].astype(object),
                "category": CATEGORIES[tk["cat"]].astype(object),
                "first_response_minutes": np.round(tk["first_resp"], 1),
            }
        )
        resp = tk["closed"] + r.uniform(0.02, 2.0, m)
        ces_m = closed_known & (r.random(m) < 0.35) & (resp < n_days)
        csat_m = closed_known & (r.random(m) < 0.2) & (resp + 0.01 < n_days)
        csat = np.clip(np.round(3.9 + 0.45 * (tk["csat_lat"] - 4.5) + r.normal(0, 0.7, m)), 1, 5)
        nps_d = np.concatenate([np.full(c[1].size, c[0]) for c in self.nps_chunks]) + r.random(
            sum(c[1].size for c in self.nps_chunks)
        )
        surveys = pd.concat(
            [
                pd.DataFrame(
                    {
                        "account_id": ids[tk["acc"][ces_m]],
                        "responded_at": ts(resp[ces_m]),
                        "kind": "CES",
                        "score": tk["ces"][ces_m],
                        "ticket_id": tickets["ticket_id"].to_numpy()[ces_m],
                    }
                ),
                pd.DataFrame(
                    {
                        "account_id": ids[tk["acc"][csat_m]],
                        "responded_at": ts(resp[csat_m] + 0.01),
                        "kind": "CSAT",
                        "score": csat[csat_m],
                        "ticket_id": tickets["ticket_id"].to_numpy()[csat_m],
                    }
                ),
                pd.DataFrame(
                    {
                        "account_id": ids[np.concatenate([c[1] for c in self.nps_chunks])],
                        "responded_at": ts(nps_d),
                        "kind": "NPS",
                        "score": np.concatenate([c[2] for c in self.nps_chunks]),
                        "ticket_id": None,
                    }
                ),
            ],
            ignore_index=True,
        )
        surveys = surveys.sort_values(["account_id", "responded_at"], kind="stable").reset_index(drop=True)
        # milestones ----------------------------------------------------------------------
        k = len(MILESTONES)
        acc_rep = np.repeat(np.arange(n), k)
        present = self.ms_present.reshape(-1)
        done = self.ms_done.reshape(-1)
        due = (self.signup[:, None] + MILESTONE_DUE[None, :]).reshape(-1)
        has_due = self.ms_has_due.reshape(-1)
        keep = present & (self.signup[acc_rep] < n_days)
        done_known = (done >= 0) & (done < n_days)
        milestones = pd.DataFrame(
            {
                "account_id": ids[acc_rep],
                "milestone": np.tile(np.array(MILESTONES, dtype=object), n),
                "due_date": pd.Series(day(due)).where(has_due),
                "completed_at": pd.Series(day(np.where(done_known, done, 0))).where(done_known),
            }
        )[keep].reset_index(drop=True)
        return {
            "accounts": accounts,
            "subscriptions": subs,
            "usage": usage,
            "tickets": tickets,
            "surveys": surveys,
            "milestones": milestones,
        }


def summarize(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Yearly churn rate (churn events per account-year) and expansion events, by segment."""
    subs = tables["subscriptions"].merge(tables["accounts"][["account_id", "segment"]], on="account_id")
    end = subs["effective_date"].max()
    subs = subs.sort_values(["account_id", "effective_date"])
    nxt = subs.groupby("account_id")["effective_date"].shift(-1).fillna(end)
    live = subs["mrr"] > 0
    subs["years"] = np.where(live, (nxt - subs["effective_date"]).dt.days / 365.25, 0.0)
    prev = subs.groupby("account_id")["mrr"].shift(1)
    subs["churn"] = (subs["mrr"] == 0) & (prev > 0)
    subs["expansion"] = (prev > 0) & (subs["mrr"] >= 1.1 * prev)
    out = subs.groupby("segment").agg(
        accounts=("account_id", "nunique"),
        account_years=("years", "sum"),
        churns=("churn", "sum"),
        expansions=("expansion", "sum"),
    )
    out.loc["All"] = out.sum()
    out["churn_per_year"] = out["churns"] / out["account_years"]
    out["expansions_per_year"] = out["expansions"] / out["account_years"]
    return out
