"""Reasons: why an account's probability is what it is, in words that agree with the numbers.

Everything here works on what any churnml model gives, per account: the points of each
feature in probability points (``points``: rows = accounts, columns = features, plus any
extra *timing* columns a model adds), the probability ``p`` they explain and the base ``p0``
(``p0 + points.sum(axis=1) == p``), the feature frame ``X`` and the indicator definitions
(:func:`churnml.features.indicators_for`). ``how_to_lower`` also takes ``predict(X) -> p``.
The functions are pure (no files, no config) and work on arrays per indicator, so batch
scoring can explain every account. See docs/reasons.md for the rules in words.

* **Timing is context, not a cause.** Calendar indicators (:data:`TIMING_FEATURES`, any
  indicator about the renewal month, every model column that is not an indicator) form one
  ``timing`` component, said as a timing line (:func:`timing_lines`). Static attributes
  (segment, industry, region, plan, size, declared attributes) form a ``profile``
  component. Neither is ever a reason. :func:`components` splits the points so that
  ``p0 + components.sum(axis=1) == p`` still holds.
* **Words that agree with the numbers.** A reason quotes its value against references that
  explain its direction: the level of healthy accounts of the same segment
  (:func:`healthy_levels`) and the account's own level three months ago. A reference is
  shown only when the value is on the side the points need (:func:`side`); a reason whose
  value is on the healthy side of every reference is left out (the model's points come from
  an interaction the words cannot explain). :func:`disagrees` is the check.
* **Plays that fit** (:func:`parse_playbook`, :func:`assign_plays`): a play only for a
  reason worth ``min_points``, at most once per account, honouring ``when`` conditions and
  ``excludes`` across churn and expansion plays.
* **What changed** (:func:`ledger_columns`, :func:`what_changed`): the change since the last
  score, attributed to reasons in points.
* **How to lower it** (:func:`how_to_lower`): the model re-predicted with a reason moved to
  its healthy level (the model's answer, not a causal promise).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnml.errors import ChurnmlError
from churnml.features._registry import FAMILIES, Indicator
from churnml.scoring.explain import _formatter, displayed, plain_missing, select_drivers

# --- which indicator is what ---------------------------------------------------------------------
TIMING = "timing"
PROFILE = "profile"
COMPONENTS = (*FAMILIES, TIMING, PROFILE)
"""The parts a probability is split into: the five families' behavioural and commercial-state
indicators, the calendar (``timing``) and who the account is (``profile``)."""

TIMING_FEATURES = frozenset({"days_to_renewal", "term_length_days", "tenure_days", "days_since_mrr_change"})
"""Indicators of the calendar: they say *when* risk falls due, not *why*. ``tenure_days`` is
the account's age; ``days_since_mrr_change`` counts days since the commercial terms last moved
(mostly since the last renewal). Any indicator whose name mentions ``renewal`` (a renewal
month, say) and any model column that is not an indicator (``months_ahead``, ``window``) is
timing too (:func:`component_of`)."""

CHANGE_UNITS = ("relative change", "score points")
"""Units of indicators that are already a change: they are not compared with their own past."""

ALL_SEGMENTS = "(all segments)"
"""The row of :func:`healthy_levels` used for an account whose segment has too few healthy peers."""


def component_of(name: str, defs: dict[str, Indicator]) -> str:
    """The component a model column's points belong to: ``timing``, ``profile`` or its family.

    Timing: :data:`TIMING_FEATURES`, any other indicator whose name mentions ``renewal``, and
    any column that is not an indicator (extra inputs of a model). Profile: categorical
    indicators, declared account attributes, and commercial indicators without a risk
    direction (MRR, seats, price per seat).
    """
    ind = defs.get(name)
    if ind is None or name in TIMING_FEATURES:
        return TIMING
    if ind.kind == "categorical" or ind.sql is not None or (ind.family == "commercial" and ind.risk == "context"):
        return PROFILE
    return TIMING if "renewal" in name else ind.family


def is_reason(name: str, defs: dict[str, Indicator]) -> bool:
    """Whether a column can be a reason: a numeric behavioural or commercial-state indicator
    with a risk direction (``low`` or ``high``). Indicators without a direction (``context``:
    weekday share, survey answer counts) stay in their family's points but are never a reason,
    since no words can say which of their sides is healthy."""
    ind = defs.get(name)
    return (ind is not None and component_of(name, defs) in FAMILIES and ind.kind == "numeric"
            and ind.risk in ("low", "high"))


def components(points: pd.DataFrame, defs: dict[str, Indicator]) -> pd.DataFrame:
    """Points per component (columns :data:`COMPONENTS`, in that order): each row adds up to the
    row's total points, so ``p0 + components(points).sum(axis=1) == p``."""
    comp = np.array([component_of(c, defs) for c in points.columns], dtype=object)
    P = points.to_numpy(dtype="float64")
    return pd.DataFrame({c: P[:, comp == c].sum(axis=1) for c in COMPONENTS}, index=points.index)


def _ids(index: pd.Index) -> np.ndarray:
    return np.asarray(index.get_level_values("account_id") if isinstance(index, pd.MultiIndex) else index)


def _segments(X: pd.DataFrame, segment_col: str) -> np.ndarray:
    if segment_col not in X:
        return np.full(len(X), None, dtype=object)
    s = X[segment_col].astype("object")
    return s.where(s.notna(), None).to_numpy(dtype=object)


def _stem(name: str) -> str:
    """An indicator's name without its window ("active_users_per_seat_7d" -> "active_users_per_seat")."""
    return re.sub(r"_\d+d$", "", name)


def _label(ind: Indicator) -> str:
    return ind.label[0].upper() + ind.label[1:]


# --- timing line ------------------------------------------------------------------------------------
def _term_words(days: float) -> str:
    if days < 20:
        return f"{days:.0f}-day term"
    m = int(round(days / 30.44))
    return {1: "monthly term", 3: "quarterly term", 12: "annual term"}.get(
        m, f"{m // 12}-year term" if m % 12 == 0 else f"{m}-month term")


def _age_words(days: float) -> str:
    if days < 60:
        return f"{days:.0f} day{'' if round(days) == 1 else 's'}"
    months = int(days // 30.44)
    if months < 24:
        return f"{months} months"
    years, rest = divmod(months, 12)
    return f"{years} years" + (f" {rest} months" if rest else "")


def timing_lines(X: pd.DataFrame, as_of) -> list[str]:
    """The timing context of each account in words, from its calendar indicators.

    e.g. "renews in 53 days, on 2026-12-24; annual term; customer for 2 years 3 months; last
    MRR change 11 months ago". A renewal date that has passed says so ("renewal date
    2026-10-20 passed 12 days ago; no new contract end on record"); an unknown one too.
    """
    as_of = pd.Timestamp(as_of).normalize()
    n = len(X)
    col = lambda c: X[c].to_numpy(dtype="float64") if c in X else np.full(n, np.nan)  # noqa: E731
    renew, term, age, since = col("days_to_renewal"), col("term_length_days"), col("tenure_days"), \
        col("days_since_mrr_change")
    out = []
    for d, t, a, s in zip(renew.tolist(), term.tolist(), age.tolist(), since.tolist()):
        if d != d:
            parts = ["no renewal date on record"]
        else:
            date = f"{as_of + pd.Timedelta(days=d):%Y-%m-%d}"
            if d > 0:
                parts = [f"renews in {d:.0f} day{'s' if d != 1 else ''}, on {date}"]
            elif d == 0:
                parts = [f"renews today ({date})"]
            else:
                parts = [f"renewal date {date} passed {-d:.0f} day{'s' if d != -1 else ''} ago; "
                         "no new contract end on record"]
        if t == t and t > 0:
            parts.append(_term_words(t))
        if a == a:
            parts.append(f"customer for {_age_words(a)}")
        if s == s:
            parts.append(f"last MRR change {_age_words(s)} ago")
        out.append("; ".join(parts))
    return out


# --- references and the agreement check --------------------------------------------------------------
def healthy_levels(X: pd.DataFrame, healthy, defs: dict[str, Indicator], *, segment_col: str = "segment",
                   min_accounts: int = 30) -> pd.DataFrame:
    """The level of each reason indicator typical of healthy accounts: the median over the rows
    of ``X`` where ``healthy`` is true, per segment, and over all segments in the row
    :data:`ALL_SEGMENTS`. A segment with fewer than ``min_accounts`` healthy rows is left out
    (its accounts are compared with all healthy accounts).

    Which accounts are healthy is the caller's choice (docs/reasons.md): e.g. the scored
    accounts in the lower-risk half of their segment (:func:`lower_risk_half`), or the
    accounts of the newest training cutoffs that did not churn.
    """
    cols = [c for c in X.columns if is_reason(c, defs)]
    mask = np.asarray(healthy, dtype=bool)
    H = X.loc[mask, cols].astype("float64")
    seg = pd.Series(_segments(X, segment_col)[mask], index=H.index)
    counts = seg.value_counts()
    keep = counts.index[counts >= min_accounts]
    per = H[seg.isin(keep).to_numpy()].groupby(seg[seg.isin(keep)].to_numpy()).median()
    total = H.median().to_frame(ALL_SEGMENTS).T
    return pd.concat([per, total]).reindex(columns=cols)


def lower_risk_half(risk, X: pd.DataFrame, *, segment_col: str = "segment") -> np.ndarray:
    """Accounts whose ``risk`` is at or below the median of their segment: a healthy reference
    population any scoring run has, without labels. Pass the probability without its timing
    points (``p - components(points)["timing"]``), so that accounts far from their renewal do not
    pass for healthy."""
    seg = pd.Series(_segments(X, segment_col)).fillna(ALL_SEGMENTS)
    r = pd.Series(np.asarray(risk, dtype="float64"))
    return (r <= r.groupby(seg.to_numpy()).transform("median")).to_numpy()


def _level_lookup(levels: pd.DataFrame, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of ``levels`` for each account (its segment's, else :data:`ALL_SEGMENTS`, else a NaN row
    at ``len(levels)``) and whether it is the segment's own."""
    idx = pd.Index(levels.index)
    own = idx.get_indexer(pd.Index(seg, dtype=object))
    fallback = idx.get_indexer([ALL_SEGMENTS])[0]
    fallback = len(idx) if fallback < 0 else fallback
    named = own >= 0
    return np.where(named, own, fallback), named & (idx.to_numpy(dtype=object)[np.maximum(own, 0)] != ALL_SEGMENTS)


def _level_matrix(levels: pd.DataFrame, cols: list[str]) -> np.ndarray:
    L = levels.reindex(columns=cols).to_numpy(dtype="float64")
    return np.vstack([L, np.full((1, len(cols)), np.nan)])


def side(ind: Indicator, values, references) -> np.ndarray:
    """Which side of its reference each value is on, as the words show them: +1 the risk side
    (above for an indicator whose ``risk`` is ``high``, below for ``low``), -1 the healthy side,
    0 when they are said alike ("0.40" and "0.40") or either is missing."""
    v, r = displayed(ind, values), displayed(ind, references)
    s = np.sign(v - r) * (1.0 if ind.risk == "high" else -1.0)
    return np.nan_to_num(s, nan=0.0).astype("int8")


def needed_side(points, target: str = "churn") -> np.ndarray:
    """The side of a reference a reason's value must be on for its words to explain its points:
    +1 (risk side) for a reason raising churn or lowering expansion, -1 otherwise."""
    up = np.asarray(points, dtype="float64") > 0
    return np.where(up == (target == "churn"), 1, -1).astype("int8")


def disagrees(ind: Indicator, values, references, points, target: str = "churn") -> np.ndarray:
    """Whether a reason's words contradict its points: it quotes a reference (not NaN) and its
    value is not strictly on the side the points need (e.g. a risk-raising "median first response
    12 min; healthy accounts 30 min"). A missing value or reference quotes no comparison."""
    v = np.asarray(values, dtype="float64")
    r = np.asarray(references, dtype="float64")
    return ~np.isnan(v) & ~np.isnan(r) & (side(ind, v, r) != needed_side(points, target))


def reason_disagrees(reasons: pd.DataFrame, defs: dict[str, Indicator]) -> np.ndarray:
    """:func:`disagrees` for each row of a reasons table, over both references it quotes."""
    out = np.zeros(len(reasons), dtype=bool)
    feat = reasons["feature"].to_numpy(dtype=object)
    tgt = reasons["target"].to_numpy(dtype=object)
    for f in pd.unique(feat):
        for t in pd.unique(tgt[feat == f]):
            sel = np.flatnonzero((feat == f) & (tgt == t))
            r = reasons.iloc[sel]
            for col in ("healthy_level", "past_value"):
                out[sel] |= disagrees(defs[f], r["value"], r[col], r["points"], t)
    return out


# --- reasons ------------------------------------------------------------------------------------------
REASON_COLUMNS = ["account_id", "target", "rank", "direction", "family", "feature", "value", "healthy_level",
                  "past_value", "points", "text"]


def reason_texts(ind: Indicator, values, healthy=None, past=None, *, peers=None,
                 past_label: str = "three months ago") -> list[str]:
    """Reasons in words, one per value, quoting the references given (NaN: not quoted).

    ``healthy`` are healthy levels, said "healthy <peers> accounts: <level>" (``peers``: the
    segment name, or None for all healthy accounts); ``past`` the account's own earlier level,
    said "down from <level> three months ago". A value already a change (a trend) is said with
    its sign. A missing value is said in plain words.

    e.g. "Active users per seat (7 days): 0.10, down from 0.60 three months ago; healthy SMB
    accounts: 0.40"; "Change in active users (last 30 vs previous 30 days): -42%; healthy
    accounts: +2%"; "MRR change over 90 days: no data (no MRR 90 days ago: the account is newer,
    or was not paying then)".
    """
    n = len(values)
    v = np.asarray(values, dtype="float64")
    h = np.full(n, np.nan) if healthy is None else np.asarray(healthy, dtype="float64")
    q = np.full(n, np.nan) if past is None else np.asarray(past, dtype="float64")
    peers = [None] * n if peers is None else list(peers)
    fmt, label = _formatter(ind), _label(ind)
    missing = f"{label}: no data ({plain_missing(ind)})"
    vd, qd = displayed(ind, v), displayed(ind, q)
    out = []
    for x, xd, hx, qx, qxd, seg in zip(v.tolist(), vd.tolist(), h.tolist(), q.tolist(), qd.tolist(), peers):
        if x != x:
            out.append(missing)
            continue
        text = f"{label}: {fmt(x)}"
        if qx == qx:
            text += f", {'down' if xd < qxd else 'up'} from {fmt(qx)} {past_label}"
        if hx == hx:
            text += f"; healthy {seg + ' ' if seg else ''}accounts: {fmt(hx)}"
        out.append(text)
    return out


def _one_window(P: np.ndarray, cols: list[str]) -> None:
    """Keep, per row and direction, only the strongest of an indicator's windows (the 7-, 30- and
    90-day active users per seat say one thing); the others are set to 0 in place."""
    stems = pd.Series([_stem(c) for c in cols])
    rows = np.arange(len(P))
    for _, g in stems.groupby(stems.to_numpy()):
        if len(g) < 2:
            continue
        G = g.index.to_numpy()
        sub = P[:, G]
        keep = np.zeros_like(sub, dtype=bool)
        keep[rows, sub.argmax(axis=1)] |= sub.max(axis=1) > 0
        keep[rows, sub.argmin(axis=1)] |= sub.min(axis=1) < 0
        P[:, G] = np.where(keep, sub, 0.0)


def select_reasons(points: pd.DataFrame, X: pd.DataFrame, defs: dict[str, Indicator], healthy: pd.DataFrame, *,
                   past: pd.DataFrame | None = None, target: str = "churn", top: int = 3, min_points: float = 0.1,
                   segment_col: str = "segment", past_label: str = "three months ago") -> pd.DataFrame:
    """The reasons of each account's probability: up to ``top`` raising it, then the one lowering it most.

    Only behavioural and commercial-state indicators with a risk direction (:func:`is_reason`)
    are ranked, by their points, and only those whose words can explain their points: a
    missing value (said in plain words), or a value strictly on the needed side
    (:func:`needed_side`) of its segment's healthy level (``healthy``, from
    :func:`healthy_levels`) or of the account's own level in ``past`` (the same indicators
    three months earlier, indexed by account_id; not used for indicators that are already a
    change). Each reason quotes exactly the references that agree with it. Reasons worth less
    than ``min_points`` probability points (0.1 = 0.001) are not reasons. An indicator measured
    over several windows gives one reason at most in each direction (its strongest window).

    Long format, :data:`REASON_COLUMNS`: ``healthy_level`` and ``past_value`` are the references
    quoted (NaN when not quoted), ``points`` in probability (0.05 = +5 points).
    """
    cols = [c for c in points.columns if is_reason(c, defs)]
    if not len(points) or not cols:
        return pd.DataFrame(columns=REASON_COLUMNS)
    ids = _ids(points.index)
    n, m = len(points), len(cols)
    P = points[cols].to_numpy(dtype="float64")
    seg = _segments(X, segment_col)
    lrow, named = _level_lookup(healthy, seg)
    L = _level_matrix(healthy, cols)
    Q = past.reindex(pd.Index(ids)).reindex(columns=cols).to_numpy(dtype="float64") if past is not None else None
    want = needed_side(P, target)
    show_h = np.zeros((n, m), dtype=bool)
    show_q = np.zeros((n, m), dtype=bool)
    ok = np.zeros((n, m), dtype=bool)
    for j, c in enumerate(cols):
        ind = defs[c]
        v = X[c].to_numpy(dtype="float64")
        show_h[:, j] = side(ind, v, L[lrow, j]) == want[:, j]
        if Q is not None and not ind.unit.startswith(CHANGE_UNITS) and not ind.unit.startswith("flag"):
            show_q[:, j] = side(ind, v, Q[:, j]) == want[:, j]
        ok[:, j] = np.isnan(v) | show_h[:, j] | show_q[:, j]
    Pm = np.where(ok & (np.abs(P) >= min_points / 100), P, 0.0)
    _one_window(Pm, cols)
    I, J, R = select_drivers(Pm, top)
    pts = P[I, J]
    value = np.full(len(I), np.nan)
    h_shown = np.where(show_h[I, J], L[lrow[I], J], np.nan)
    q_shown = np.where(show_q[I, J], Q[I, J], np.nan) if Q is not None else np.full(len(I), np.nan)
    text = np.empty(len(I), dtype=object)
    seg_words = np.where(named, seg, None)
    for j in np.unique(J):
        sel = np.flatnonzero(J == j)
        ind = defs[cols[j]]
        value[sel] = X[cols[j]].to_numpy(dtype="float64")[I[sel]]
        text[sel] = reason_texts(ind, value[sel], h_shown[sel], q_shown[sel], peers=seg_words[I[sel]],
                                 past_label=past_label)
    return pd.DataFrame({
        "account_id": ids[I], "target": target, "rank": R.astype("int64"),
        "direction": np.where(pts > 0, "raises", "lowers"),
        "family": np.array([defs[c].family for c in cols], dtype=object)[J],
        "feature": np.array(cols, dtype=object)[J], "value": value, "healthy_level": h_shown,
        "past_value": q_shown, "points": pts, "text": text,
    }, columns=REASON_COLUMNS)


# --- plays -------------------------------------------------------------------------------------------
FLAGS = ("at_risk", "expansion_candidate")
"""Built-in conditions, given per account by the caller of :func:`assign_plays`: ``at_risk``
(e.g. the high risk tier) and ``expansion_candidate`` (the accounts explained for expansion)."""

PROBABILITIES = ("churn_probability", "expansion_probability")
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
        "!=": np.not_equal}
_COND = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(-?[0-9]*\.?[0-9]+(?:[eE]-?[0-9]+)?)\s*$")
_PLAY_KEYS = {"title", "text", "for", "when", "excludes", "min_points"}


@dataclass(frozen=True)
class Condition:
    """A named test on an account: ``<indicator or probability> <op> <number>`` (false when missing)."""

    name: str
    column: str
    op: str
    value: float


@dataclass(frozen=True)
class Play:
    """One play: what a CSM does about reasons of the families or indicators in ``answers``."""

    id: str
    target: str
    title: str
    text: str
    answers: tuple[str, ...]
    when: tuple[tuple[bool, str], ...] = ()  # (negated, condition name), all must hold
    excludes: tuple[str, ...] = ()
    min_points: float | None = None  # probability points; None: the caller's default

    @property
    def words(self) -> str:
        return f"{self.title}: {self.text}"


@dataclass(frozen=True)
class Playbook:
    """A checked playbook: named conditions and plays in file order (churn first)."""

    conditions: dict
    plays: tuple[Play, ...]

    def of(self, target: str) -> list[Play]:
        return [p for p in self.plays if p.target == target]


def _known_indicators() -> dict[str, Indicator]:
    """Every built-in indicator (all tables present, with feature_* columns)."""
    from churnml.features import Context, indicators_for

    ctx = Context(feature_columns=("feature_x",), present=frozenset({"usage", "tickets", "surveys", "milestones"}))
    return {i.name: i for i in indicators_for(ctx)}


def _as_list(value, where: str, key: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    raise ChurnmlError(f"{where}: {key} must be a name or a list of names, got {value!r}")


def _unknown(name: str, known, what: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f"unknown {what} {name!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")


def parse_playbook(book, where: str) -> Playbook:
    """A playbook file's content (parsed YAML), checked, as a :class:`Playbook`.

    Format (docs/reasons.md): optional ``conditions`` (name -> "<indicator> <op> <number>"),
    then ``churn`` and ``expansion``, each a mapping of play id -> ``title``, ``text``, ``for``
    (families and/or indicators whose reasons the play answers; default: the id itself when it
    is a family, so the older family -> play files still read), and optionally ``when``
    (conditions that must hold, ``not <name>`` negates; built in: at_risk, expansion_candidate),
    ``excludes`` (play ids that cannot appear on the same account) and ``min_points``.
    Every error names the file, the key and what is wrong.
    """
    if not isinstance(book, dict):
        raise ChurnmlError(f"{where}: a playbook is a mapping with churn, expansion and optionally conditions")
    extra = sorted(set(book) - {"conditions", "churn", "expansion"})
    if extra:
        raise ChurnmlError(f"{where}: unknown top-level key(s) {extra}; expected churn, expansion, conditions")
    known = _known_indicators()
    reasons = {n for n in known if is_reason(n, known)}
    conditions = {}
    raw_cond = book.get("conditions") or {}
    if not isinstance(raw_cond, dict):
        raise ChurnmlError(f"{where}: conditions must be a mapping of name -> \"<indicator> <op> <number>\"")
    for name, expr in raw_cond.items():
        key = f"conditions.{name}"
        if name in FLAGS:
            raise ChurnmlError(f"{where}: {key}: {name} is built in; choose another name")
        m = _COND.match(expr) if isinstance(expr, str) else None
        if not m:
            raise ChurnmlError(f"{where}: {key}: {expr!r} is not \"<indicator> <op> <number>\" "
                               f"(op one of {', '.join(_OPS)}), e.g. \"peak_active_users_per_seat_30d < 0.5\"")
        col, op, num = m.groups()
        if col not in known and col not in PROBABILITIES:
            raise ChurnmlError(f"{where}: {key}: {_unknown(col, [*known, *PROBABILITIES], 'indicator')}")
        conditions[name] = Condition(name, col, op, float(num))
    plays, ids = [], {}
    for target in ("churn", "expansion"):
        section = book.get(target) or {}
        if not isinstance(section, dict):
            raise ChurnmlError(f"{where}: {target} must be a mapping of play id -> play")
        for pid, play in section.items():
            key = f"{target}.{pid}"
            if not isinstance(play, dict):
                raise ChurnmlError(f"{where}: {key} must be a mapping with title, text and for")
            bad = sorted(set(play) - _PLAY_KEYS)
            if bad:
                raise ChurnmlError(f"{where}: {key}: unknown key(s) {bad}; a play has {', '.join(sorted(_PLAY_KEYS))}")
            for k in ("title", "text"):
                if not isinstance(play.get(k), str) or not play[k].strip():
                    raise ChurnmlError(f"{where}: {key} needs a {k} (text)")
            if pid in ids:
                raise ChurnmlError(f"{where}: {key}: play id {pid!r} is used twice ({ids[pid]}.{pid}); ids are unique")
            ids[pid] = target
            answers = _as_list(play.get("for", [pid] if pid in FAMILIES else None), where, f"{key}.for")
            if not answers:
                raise ChurnmlError(f"{where}: {key} needs 'for': the families or indicators whose reasons it answers")
            for a in answers:
                if a in FAMILIES or a in reasons:
                    continue
                if a in known or a in (TIMING, PROFILE):
                    raise ChurnmlError(f"{where}: {key}.for: {a} is never a reason (timing and profile are context, "
                                       f"indicators without a risk direction have no healthy side); a play answers "
                                       f"a family ({', '.join(FAMILIES)}) or a behavioural indicator")
                what = _unknown(a, [*FAMILIES, *sorted(reasons)], "family or indicator")
                raise ChurnmlError(f"{where}: {key}.for: {what}")
            when = []
            for w in _as_list(play.get("when"), where, f"{key}.when"):
                neg = w.startswith("not ")
                name = w[4:].strip() if neg else w.strip()
                if name not in conditions and name not in FLAGS:
                    raise ChurnmlError(f"{where}: {key}.when: {_unknown(name, [*conditions, *FLAGS], 'condition')}; "
                                       f"declare it under conditions")
                when.append((neg, name))
            mp = play.get("min_points")
            if mp is not None and (isinstance(mp, bool) or not isinstance(mp, (int, float)) or mp < 0):
                raise ChurnmlError(f"{where}: {key}.min_points must be a number of points >= 0, got {mp!r}")
            plays.append(Play(pid, target, play["title"].strip(), play["text"].strip(), tuple(answers), tuple(when),
                              tuple(_as_list(play.get("excludes"), where, f"{key}.excludes")),
                              None if mp is None else float(mp)))
    for p in plays:
        for x in p.excludes:
            if x not in ids:
                raise ChurnmlError(f"{where}: {p.target}.{p.id}.excludes: {_unknown(x, ids, 'play')}")
            if x == p.id:
                raise ChurnmlError(f"{where}: {p.target}.{p.id}.excludes: a play cannot exclude itself")
    return Playbook(conditions, tuple(plays))


def family_plays(book, target: str) -> dict[str, str]:
    """For each family, the words of the first ``target`` play answering it (ignoring conditions): the
    one-play-per-family view of a playbook."""
    pb = book if isinstance(book, Playbook) else parse_playbook(book, "the playbook")
    out = {}
    for p in pb.of(target):
        for a in p.answers:
            if a in FAMILIES:
                out.setdefault(a, p.words)
    return out


def _condition_values(pb: Playbook, accounts: pd.Index, X: pd.DataFrame, flags: dict, probabilities) -> dict:
    """Each condition and flag as a boolean array over ``accounts``."""
    out = {}
    Xa = X.reindex(accounts) if not isinstance(X.index, pd.MultiIndex) else \
        X.set_axis(_ids(X.index)).reindex(accounts)
    probs = probabilities.reindex(accounts) if probabilities is not None else None
    for name, c in pb.conditions.items():
        if c.column in PROBABILITIES:
            if probs is None or c.column not in probs:
                raise ChurnmlError(f"playbook condition {name} uses {c.column}, which the caller did not give")
            v = probs[c.column].to_numpy(dtype="float64")
        elif c.column in Xa:
            v = Xa[c.column].to_numpy(dtype="float64")
        else:
            v = np.full(len(accounts), np.nan)  # the base lacks it: the condition never holds
        with np.errstate(invalid="ignore"):
            out[name] = _OPS[c.op](v, c.value) & ~np.isnan(v)
    for name in FLAGS:
        f = (flags or {}).get(name)
        if f is not None and not isinstance(f, pd.Series):
            raise TypeError(f"flag {name} must be a boolean Series indexed by account_id")
        out[name] = np.zeros(len(accounts), dtype=bool) if f is None else \
            f.astype("boolean").reindex(accounts).fillna(False).to_numpy(dtype=bool)
    return out


def assign_plays(reasons: pd.DataFrame, X: pd.DataFrame, playbook, *, min_points: float = 1.0,
                 flags: dict | None = None, probabilities: pd.DataFrame | None = None) -> pd.DataFrame:
    """``reasons`` (churn and expansion reasons, as :func:`select_reasons` gives) with the play each gets.

    Only reasons that raise their probability get a play, and only when worth at least the
    play's ``min_points`` (default ``min_points``, in probability points: 1 = 0.01). Reasons are
    served churn first, then expansion, each by rank; a reason gets the first play of its
    target (file order) that answers its indicator or family, whose ``when`` conditions hold,
    that the account has not had yet and that no play already given excludes (exclusions work
    both ways and across targets: an account never gets both "right-size seats" and "propose
    more seats"). ``flags`` gives the built-in conditions per account id (boolean Series:
    at_risk, expansion_candidate); ``probabilities`` (by account id) the probabilities conditions
    may use. Adds ``play_id`` and ``play`` ("Title: text"); empty when no play fits.
    """
    pb = playbook if isinstance(playbook, Playbook) else parse_playbook(playbook, "the playbook")
    out = reasons.copy()
    n = len(out)
    play_id = np.full(n, "", dtype=object)
    words = np.full(n, "", dtype=object)
    if n and pb.plays:
        accounts = pd.Index(pd.unique(out["account_id"].to_numpy(dtype=object)))
        acc = accounts.get_indexer(out["account_id"].to_numpy(dtype=object))
        cond = _condition_values(pb, accounts, X, flags, probabilities)
        k = len(pb.plays)
        pos = {p.id: i for i, p in enumerate(pb.plays)}
        ok = np.ones((len(accounts), k), dtype=bool)
        for i, p in enumerate(pb.plays):
            for neg, name in p.when:
                ok[:, i] &= ~cond[name] if neg else cond[name]
        excl = np.zeros((k, k), dtype=bool)
        for i, p in enumerate(pb.plays):
            for x in p.excludes:
                excl[i, pos[x]] = excl[pos[x], i] = True
        taken = np.zeros((len(accounts), k), dtype=bool)
        blocked = np.zeros((len(accounts), k), dtype=bool)
        pts = out["points"].to_numpy(dtype="float64")
        target = out["target"].to_numpy(dtype=object)
        rank = out["rank"].to_numpy()
        feat = out["feature"].to_numpy(dtype=object)
        fam = out["family"].to_numpy(dtype=object)
        raising = out["direction"].to_numpy(dtype=object) == "raises"
        for tgt in ("churn", "expansion"):
            plays = [(pos[p.id], p) for p in pb.of(tgt)]
            for r in np.unique(rank[(target == tgt) & raising]):
                slot = (target == tgt) & raising & (rank == r)  # one reason per account in a slot
                for f in pd.unique(feat[slot]):
                    rows = np.flatnonzero(slot & (feat == f))
                    family = fam[rows[0]]
                    pending = np.ones(len(rows), dtype=bool)
                    for i, p in plays:
                        if f not in p.answers and family not in p.answers:
                            continue
                        a = acc[rows]
                        floor = (min_points if p.min_points is None else p.min_points) / 100
                        give = pending & ok[a, i] & ~taken[a, i] & ~blocked[a, i] & (pts[rows] >= floor - 1e-12)
                        if give.any():
                            play_id[rows[give]] = p.id
                            words[rows[give]] = p.words
                            taken[a[give], i] = True
                            blocked[a[give]] |= excl[i]
                            pending &= ~give
    out["play_id"] = play_id
    out["play"] = words
    return out


# --- what changed ------------------------------------------------------------------------------------
LEDGER_REASONS = 15
"""How many reason indicators (largest points in size) each ledger row keeps by default."""


def ledger_column_names(k: int = LEDGER_REASONS) -> list[str]:
    """The ledger columns :func:`ledger_columns` gives."""
    return (["explains", "points_base", *(f"points_{c}" for c in COMPONENTS), "days_to_renewal"]
            + [f"reason_{i}_{x}" for i in range(1, k + 1) for x in ("feature", "points", "value")])


def ledger_columns(points: pd.DataFrame, X: pd.DataFrame, p0: float, defs: dict[str, Indicator], *,
                   explains: str = "churn_90d", k: int = LEDGER_REASONS) -> pd.DataFrame:
    """What the ledger keeps of a score to explain the next change (indexed by account_id).

    ``explains`` names the probability explained (a change is only attributed between scores
    of the same one); ``points_base`` and ``points_<component>`` add up to it; the ``k`` reason
    indicators with the largest points in size as ``reason_<i>_feature``, ``_points``,
    ``_value``; ``days_to_renewal`` for the timing words.
    """
    ids = _ids(points.index)
    comp = components(points, defs)
    out = {"explains": np.full(len(points), explains, dtype=object), "points_base": np.full(len(points), float(p0))}
    for c in COMPONENTS:
        out[f"points_{c}"] = comp[c].to_numpy()
    out["days_to_renewal"] = X["days_to_renewal"].to_numpy(dtype="float64") if "days_to_renewal" in X \
        else np.full(len(points), np.nan)
    cols = [c for c in points.columns if is_reason(c, defs)]
    P = points[cols].to_numpy(dtype="float64")
    V = X.reindex(columns=cols).to_numpy(dtype="float64")
    kk = min(k, len(cols))
    order = np.argsort(-np.abs(P), axis=1, kind="stable")[:, :kk]
    names = np.array(cols, dtype=object)
    for i in range(k):
        if i < kk:
            j = order[:, i]
            out[f"reason_{i + 1}_feature"] = names[j]
            out[f"reason_{i + 1}_points"] = np.take_along_axis(P, j[:, None], axis=1)[:, 0]
            out[f"reason_{i + 1}_value"] = np.take_along_axis(V, j[:, None], axis=1)[:, 0]
        else:
            out[f"reason_{i + 1}_feature"] = np.full(len(points), None, dtype=object)
            out[f"reason_{i + 1}_points"] = np.full(len(points), np.nan)
            out[f"reason_{i + 1}_value"] = np.full(len(points), np.nan)
    return pd.DataFrame(out, index=pd.Index(ids, name="account_id"))


def _kept(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reason indicators a ledger row kept: names, points and values as (accounts x k) arrays."""
    k = sum(1 for c in rows.columns if re.fullmatch(r"reason_\d+_feature", c))

    def get(x: str, dtype) -> np.ndarray:
        if not k:
            return np.zeros((len(rows), 0), dtype=dtype)
        return np.column_stack([rows[f"reason_{i}_{x}"].to_numpy(dtype=dtype) for i in range(1, k + 1)])

    return get("feature", object), get("points", "float64"), get("value", "float64")


def _pts(x: float) -> str:
    """Points said briefly: "+15", "-3", "+0.6"."""
    if abs(x) >= 0.0095:
        return f"{x * 100:+.0f}"
    return f"{x * 100:+.1f}" if round(x * 100, 1) else "0.0"


def _change_words(ind: Indicator, a: float, b: float, a_known: bool = True, b_known: bool = True) -> str:
    """An indicator's move in words: "active users per seat (7 days) fell 0.60 -> 0.10"; a side the
    ledger did not keep is not guessed ("... now 0.10", "... was 0.60")."""
    fmt, label = _formatter(ind), ind.label
    say = lambda x: "no data" if x != x else fmt(x)  # noqa: E731
    if not a_known:
        return f"{label} now {say(b)}"
    if not b_known:
        return f"{label} was {say(a)}"
    if a != a and b != b:
        return f"{label} still no data"
    if b != b or a != a or ind.unit.startswith(CHANGE_UNITS):
        return f"{label} {say(a)} -> {say(b)}"
    da, db = displayed(ind, [a, b])
    if da == db:
        return f"{label} still {say(b)}"
    return f"{label} {'fell' if db < da else 'rose'} {say(a)} -> {say(b)}"


CHANGE_COLUMNS = ["account_id", "item", "feature", "points", "previous_value", "value", "previous_kept", "kept"]


def _total(rows: pd.DataFrame) -> np.ndarray:
    return rows["points_base"].to_numpy(float) + sum(rows[f"points_{c}"].to_numpy(float) for c in COMPONENTS)


def _change_parts(previous: pd.DataFrame, current: pd.DataFrame) -> tuple[dict, np.ndarray]:
    """The parts of :func:`attribute_change` as arrays (``acc``: row of ``current`` of each part), and
    which rows of ``current`` have a comparable previous row."""
    prev = previous.reindex(current.index)
    ok = prev["points_base"].notna().to_numpy() & (
        prev["explains"].to_numpy(dtype=object) == current["explains"].to_numpy(dtype=object))
    rows = np.flatnonzero(ok)
    prev, cur = prev.iloc[rows], current.iloc[rows]
    n = len(rows)
    fa, pa, va = _kept(prev)
    fb, pb, vb = _kept(cur)
    codes, names = pd.factorize(np.concatenate([fa.ravel(), fb.ravel()]), use_na_sentinel=True)
    names = np.asarray(names, dtype=object)
    F = max(len(names), 1)
    ca, cb = codes[:fa.size].reshape(fa.shape), codes[fa.size:].reshape(fb.shape)
    at = lambda c: np.broadcast_to(np.arange(n)[:, None], c.shape)  # noqa: E731
    ka, kb = (at(ca) * F + ca)[ca >= 0], (at(cb) * F + cb)[cb >= 0]
    keys = np.concatenate([ka, kb])
    keys.sort()
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    m = len(keys)
    u_pa, u_pb = np.zeros(m), np.zeros(m)
    u_va, u_vb = np.full(m, np.nan), np.full(m, np.nan)
    has_a, has_b = np.zeros(m, dtype=bool), np.zeros(m, dtype=bool)
    ia, ib = np.searchsorted(keys, ka), np.searchsorted(keys, kb)
    u_pa[ia], u_va[ia], has_a[ia] = pa[ca >= 0], va[ca >= 0], True
    u_pb[ib], u_vb[ib], has_b[ib] = pb[cb >= 0], vb[cb >= 0], True
    acc_i, feat_i = keys // F, keys % F
    delta = u_pb - u_pa
    parts = {"acc": [acc_i], "item": [np.full(m, "reason", dtype=object)],
             "feature": [names[feat_i] if len(names) else np.full(0, None, dtype=object)],
             "points": [delta], "previous_value": [u_va], "value": [u_vb], "previous_kept": [has_a], "kept": [has_b]}
    named = np.bincount(acc_i, weights=delta, minlength=n)
    renew_a, renew_b = prev["days_to_renewal"].to_numpy(float), cur["days_to_renewal"].to_numpy(float)
    nan, no = np.full(n, np.nan), np.zeros(n, dtype=bool)
    extra = [("timing", cur["points_timing"].to_numpy(float) - prev["points_timing"].to_numpy(float), renew_a,
              renew_b, ~no),
             ("profile", cur["points_profile"].to_numpy(float) - prev["points_profile"].to_numpy(float), nan, nan, no),
             ("model", cur["points_base"].to_numpy(float) - prev["points_base"].to_numpy(float), nan, nan, no)]
    for _, d, _, _, _ in extra:
        named = named + d
    extra.append(("other", _total(cur) - _total(prev) - named, nan, nan, no))
    for item, d, a, b, kept in extra:
        for key, val in (("acc", np.arange(n)), ("item", np.full(n, item, dtype=object)),
                         ("feature", np.full(n, None, dtype=object)), ("points", d), ("previous_value", a),
                         ("value", b), ("previous_kept", kept), ("kept", kept)):
            parts[key].append(val)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["acc"] = rows[out["acc"]] if n else out["acc"].astype(int)
    return out, ok


def attribute_change(previous: pd.DataFrame, current: pd.DataFrame, defs: dict[str, Indicator] | None = None
                     ) -> pd.DataFrame:
    """The change of the explained probability between two scores of the same accounts, in parts.

    ``previous`` and ``current`` are :func:`ledger_columns` rows (indexed by account_id; accounts
    of ``current`` missing from ``previous``, or whose ``explains`` differ, are left out). Parts
    (``item``): each reason indicator kept in either row (``points`` = its points now minus
    then; an indicator kept in only one row counts 0 points on the other side, an error no
    larger than the smallest points that row kept), ``timing``, ``profile``, ``model`` (the base
    probability moved: another model or a refit), and ``other`` (indicators kept in neither row).
    Per account they add up exactly to the change. ``previous_kept`` / ``kept`` say whether the
    indicator was kept in each row (its value is known there).
    """
    parts, _ = _change_parts(previous, current)
    ids = current.index.to_numpy(dtype=object)
    data = {"account_id": ids[parts["acc"]], **{k: v for k, v in parts.items() if k != "acc"}}
    return pd.DataFrame(data, columns=CHANGE_COLUMNS)


def _parts_words(parts: dict, defs: dict[str, Indicator]) -> np.ndarray:
    """The words of each part of :func:`attribute_change` (computed per indicator, on arrays)."""
    item, feat = parts["item"], parts["feature"]
    out = np.empty(len(item), dtype=object)
    a, b = parts["previous_value"], parts["value"]
    ka, kb = parts["previous_kept"], parts["kept"]
    reason = item == "reason"
    for f in pd.unique(feat[reason]):
        sel = np.flatnonzero(reason & (feat == f))
        ind = defs.get(f)
        out[sel] = [_change_words(ind, x, y, u, v) if ind else str(f)
                    for x, y, u, v in zip(a[sel].tolist(), b[sel].tolist(), ka[sel].tolist(), kb[sel].tolist())]
    sel = np.flatnonzero(item == "timing")
    out[sel] = [f"timing: renewal {x:.0f} -> {y:.0f} days away" if x == x and y == y else "timing"
                for x, y in zip(a[sel].tolist(), b[sel].tolist())]
    for name, words in (("profile", "account profile (size, plan, seats)"), ("model", "model updated"),
                        ("other", "other small changes")):
        out[item == name] = words
    return out


def what_changed(previous: pd.DataFrame, current: pd.DataFrame, defs: dict[str, Indicator], *, previous_date,
                 top: int = 3, min_points: float = 1.0, what: str = "risk") -> pd.Series:
    """The change since the previous score in words, with its causes in points, per account of ``current``.

    e.g. "risk +23 pts since 2026-10-01 (12% -> 35%): active users per seat (7 days) fell 0.60 ->
    0.10 (+15), high or urgent tickets opened (90 days) rose 0 -> 3 (+6)". Causes are the parts
    of :func:`attribute_change` worth at least ``min_points`` (probability points) in size, the
    ``top`` largest first. "first score" for an account without a previous row; when the
    explained probability itself changed (another ``explains``), the change is not broken down.
    ``previous_date`` is one date or one per account (a Series by account_id).
    """
    ids = current.index
    prev = previous.reindex(ids)
    dates = previous_date.reindex(ids) if isinstance(previous_date, pd.Series) else \
        pd.Series(pd.Timestamp(previous_date), index=ids)
    date = pd.to_datetime(dates).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    has = prev["points_base"].notna().to_numpy()
    e_now, e_then = current["explains"].to_numpy(dtype=object), prev["explains"].to_numpy(dtype=object)
    p_now, p_then = _total(current), _total(prev)
    parts, same = _change_parts(previous, current)
    size = np.abs(parts["points"])
    big = np.flatnonzero(size >= min_points / 100 - 1e-12)
    big = big[np.lexsort((-size[big], parts["acc"][big]))]  # by account, largest first
    acc = parts["acc"][big]
    starts = np.r_[True, acc[1:] != acc[:-1]] if len(acc) else np.zeros(0, dtype=bool)
    first = np.maximum.accumulate(np.where(starts, np.arange(len(acc)), 0)) if len(acc) else acc
    chosen = big[np.arange(len(acc)) - first < top]
    picked = {k: v[chosen] for k, v in parts.items()}
    said = [f"{w} ({_pts(x)})" for w, x in zip(_parts_words(picked, defs).tolist(), picked["points"].tolist())]
    causes: dict[int, list[str]] = {}
    for i, w in zip(picked["acc"].tolist(), said):
        causes.setdefault(i, []).append(w)
    out = []
    for i in range(len(ids)):
        if not has[i]:
            out.append("first score")
        elif not same[i]:
            out.append(f"{what} {p_then[i]:.0%} -> {p_now[i]:.0%} since {date[i]}, now measured as {e_now[i]} "
                       f"(was {e_then[i]}): no breakdown")
        else:
            head = f"{what} {_pts(p_now[i] - p_then[i])} pts since {date[i]} ({p_then[i]:.0%} -> {p_now[i]:.0%})"
            out.append(head + (": " + ", ".join(causes[i]) if i in causes else ""))
    return pd.Series(out, index=ids, name="what_changed")


# --- everything a scoring run needs, in one call ---------------------------------------------------
@dataclass
class Explained:
    """The reasons of a scoring run's accounts (see :func:`explain_reasons`)."""

    components: pd.DataFrame  # per account: base + components = probability
    reasons: pd.DataFrame  # churn and expansion reasons with their plays (REASON_COLUMNS + play_id, play)
    timing: pd.Series  # per account: the timing line
    ledger: pd.DataFrame  # per account: ledger_columns, for the next score's what_changed


def explain_reasons(points: pd.DataFrame, p0: float, X: pd.DataFrame, defs: dict[str, Indicator], *,
                    healthy: pd.DataFrame, playbook, as_of, past: pd.DataFrame | None = None,
                    expansion_points: pd.DataFrame | None = None, at_risk: pd.Series | None = None,
                    expansion_candidate: pd.Series | None = None, probabilities: pd.DataFrame | None = None,
                    top: int = 3, play_min_points: float = 1.0, explains: str = "churn_90d",
                    ledger_k: int = LEDGER_REASONS) -> Explained:
    """Components, reasons (churn for every account of ``points``; expansion for the accounts of
    ``expansion_points``), plays, timing lines and ledger columns, from a model's points.

    ``points`` (indexed by account_id, aligned with ``X``) explain the probability that sets the
    risk tier (``explains`` names it); ``healthy`` are :func:`healthy_levels`; ``past`` the
    indicators three months earlier; ``at_risk`` / ``expansion_candidate`` boolean Series by
    account_id for the playbook's built-in conditions.
    """
    churn = select_reasons(points, X, defs, healthy, past=past, top=top)
    parts = [churn]
    if expansion_points is not None and len(expansion_points):
        Xe = X.loc[expansion_points.index]
        parts.append(select_reasons(expansion_points, Xe, defs, healthy, past=past, target="expansion", top=top))
    flags = {k: v for k, v in (("at_risk", at_risk), ("expansion_candidate", expansion_candidate)) if v is not None}
    reasons = assign_plays(pd.concat(parts, ignore_index=True), X, playbook, min_points=play_min_points,
                           flags=flags, probabilities=probabilities)
    return Explained(components(points, defs), reasons,
                     pd.Series(timing_lines(X, as_of), index=_ids(X.index), name="timing"),
                     ledger_columns(points, X, p0, defs, explains=explains, k=ledger_k))


# --- how to lower it ---------------------------------------------------------------------------------
LOWER_COLUMNS = ["account_id", "rank", "feature", "value", "level", "source", "p_from", "p_to", "cut", "p_together",
                 "text"]


def how_to_lower(X: pd.DataFrame, reasons: pd.DataFrame, healthy: pd.DataFrame, predict, p, *,
                 defs: dict[str, Indicator], at_risk, past: pd.DataFrame | None = None, moves: int = 2,
                 candidates: int = 3, min_cut: float = 1.0, segment_col: str = "segment",
                 what: str = "risk", past_label: str = "three months ago") -> pd.DataFrame:
    """For each account in ``at_risk``, the one or two reasons whose move to a healthy level would cut
    ``p`` most, measured by re-predicting (the model's answer, not a causal promise).

    Candidates are the account's ``candidates`` strongest risk-raising churn reasons with a
    known value. Each is moved to its segment's healthy level (``healthy``) when the value is on
    its risk side, else to the account's own level in ``past`` when that is healthier, else it
    is not a candidate; the indicator's other windows (``active_users_per_seat_30d`` beside
    ``_7d``) on the risk side of their healthy level move with it, so the move is coherent.
    ``predict(X) -> probabilities`` is called once per candidate rank over all accounts having
    one, and once more for the best two moves together. Moves cutting less than ``min_cut``
    points are dropped. ``X`` and ``p`` are aligned (rows = accounts, indexed by account_id).

    Long format, :data:`LOWER_COLUMNS`; ``text`` e.g. "if active users per seat (7 days) returned
    to 0.40, risk would fall from 41% to 18%".
    """
    ids = _ids(X.index)
    p = np.asarray(p, dtype="float64")
    mask = np.asarray(at_risk, dtype=bool)
    r = reasons[(reasons["target"] == "churn") & (reasons["direction"] == "raises") & reasons["value"].notna()]
    r = r.sort_values(["account_id", "rank"], kind="stable")
    r = r[r.groupby("account_id").cumcount().to_numpy() < candidates]
    row_of = pd.Index(ids).get_indexer(r["account_id"].to_numpy(dtype=object))
    r = r[(row_of >= 0)]
    row_of = row_of[row_of >= 0]
    r, row_of = r[mask[row_of]], row_of[mask[row_of]]
    if r.empty:
        return pd.DataFrame(columns=LOWER_COLUMNS)
    cols = list(healthy.columns)
    L = _level_matrix(healthy, cols)
    lrow, _ = _level_lookup(healthy, _segments(X, segment_col))
    colpos = {c: j for j, c in enumerate(cols)}
    Q = past.reindex(pd.Index(ids)) if past is not None else None
    # target level of each candidate: healthy level if the value is on its risk side, else its own past level
    feat = r["feature"].to_numpy(dtype=object)
    value = r["value"].to_numpy(dtype="float64")
    level = np.full(len(r), np.nan)
    source = np.full(len(r), "", dtype=object)
    for f in pd.unique(feat):
        sel = np.flatnonzero(feat == f)
        ind = defs[f]
        h = L[lrow[row_of[sel]], colpos[f]] if f in colpos else np.full(len(sel), np.nan)
        use_h = side(ind, value[sel], h) == 1
        level[sel[use_h]] = h[use_h]
        source[sel[use_h]] = "healthy"
        if Q is not None and f in Q and not ind.unit.startswith(CHANGE_UNITS):
            q = Q[f].to_numpy(dtype="float64")[row_of[sel]]
            use_q = ~use_h & (side(ind, value[sel], q) == 1)
            level[sel[use_q]] = q[use_q]
            source[sel[use_q]] = "past"
    # one candidate per indicator family of windows: the account's strongest (its other windows move with it)
    keep = ~np.isnan(level)
    dup = np.zeros(len(r), dtype=bool)
    dup[keep] = pd.DataFrame({"a": r["account_id"].to_numpy(dtype=object)[keep],
                              "s": [_stem(f) for f in feat[keep]]}).duplicated().to_numpy()
    keep &= ~dup
    r, row_of, feat, value, level, source = r[keep], row_of[keep], feat[keep], value[keep], level[keep], source[keep]
    rank_in = r.groupby("account_id").cumcount().to_numpy()

    def apply(Xm: pd.DataFrame, which: np.ndarray) -> np.ndarray:
        """Apply candidate ``which[i]`` to row ``i`` of ``Xm`` in place; whether other windows moved too."""
        companions = np.zeros(len(which), dtype=bool)
        rows = row_of[which]
        for f in pd.unique(feat[which]):
            sel = np.flatnonzero(feat[which] == f)
            arr = Xm[f].to_numpy(dtype="float64", copy=True)
            arr[sel] = level[which[sel]]
            Xm[f] = arr
            for c in cols:
                if c == f or _stem(c) != _stem(f) or c not in Xm:
                    continue
                cur = Xm[c].to_numpy(dtype="float64", copy=True)
                h = L[lrow[rows[sel]], colpos[c]]
                go = side(defs[c], cur[sel], h) == 1
                cur[sel[go]] = h[go]
                companions[sel[go]] = True
                Xm[c] = cur
        return companions

    p_to = np.full(len(r), np.nan)
    with_companions = np.zeros(len(r), dtype=bool)
    for k in np.unique(rank_in):  # one call per candidate rank, over every account having one
        which = np.flatnonzero(rank_in == k)
        Xm = X.iloc[row_of[which]].copy()
        with_companions[which] = apply(Xm, which)
        p_to[which] = np.asarray(predict(Xm), dtype="float64")
    cut = p[row_of] - p_to
    out = pd.DataFrame({"account_id": r["account_id"].to_numpy(dtype=object), "cand": np.arange(len(r)),
                        "feature": feat, "value": value, "level": level, "source": source, "p_from": p[row_of],
                        "p_to": p_to, "cut": cut, "companions": with_companions})
    out = out[out["cut"] >= min_cut / 100 - 1e-12].sort_values(["account_id", "cut"], ascending=[True, False],
                                                                 kind="stable")
    out = out.groupby("account_id", sort=False).head(moves).copy()
    out["rank"] = out.groupby("account_id").cumcount() + 1
    out["p_together"] = np.nan
    pairs = out.groupby("account_id", sort=False)["cand"].agg(list)
    pairs = pairs[pairs.map(len) >= 2]
    if len(pairs):  # the best two moves together: one more call
        first = np.array([c[0] for c in pairs], dtype=int)
        Xm = X.iloc[row_of[first]].copy()
        apply(Xm, first)
        apply(Xm, np.array([c[1] for c in pairs], dtype=int))
        both = pd.Series(np.asarray(predict(Xm), dtype="float64"), index=pairs.index)
        out["p_together"] = both.reindex(out["account_id"]).to_numpy()
    texts = []
    for o in out.itertuples(index=False):
        ind = defs[o.feature]
        fmt = _formatter(ind)
        t = f"if {ind.label} returned to {fmt(o.level)}"
        if o.source == "past":
            t += f" (its level {past_label})"
        if o.companions:
            t += " (and its other windows to healthy levels)"
        texts.append(t + f", {what} would fall from {o.p_from:.0%} to {o.p_to:.0%}")
    out["text"] = texts
    return out[LOWER_COLUMNS].reset_index(drop=True)


def lower_summary(lower: pd.DataFrame, what: str = "risk") -> pd.Series:
    """One line per account from :func:`how_to_lower`: its moves, and both together when there are two."""
    lines = {}
    for a, g in lower.groupby("account_id", sort=False):
        g = g.sort_values("rank")
        line = "; ".join(g["text"])
        both = g["p_together"].iloc[0]
        if len(g) > 1 and both == both:
            line += f"; both together: {what} {g['p_from'].iloc[0]:.0%} -> {both:.0%}"
        lines[a] = line
    return pd.Series(lines, name="how_to_lower", dtype=object)


# --- the done-means figures -------------------------------------------------------------------------
def reason_metrics(reasons: pd.DataFrame, defs: dict[str, Indicator], *, high_risk, min_points: float = 1.0,
                   points: pd.DataFrame | None = None, top: int = 3) -> dict:
    """Figures that say whether reasons and plays keep their rules, on a scoring run's output.

    ``reasons``: churn (and expansion) reasons with plays (:func:`assign_plays`); ``high_risk``:
    the high-risk account ids. With ``points`` (churn points of the same accounts): the share of
    high-risk accounts whose strongest raw driver is timing (what explanations without the
    timing split showed), and the share of points of each account's ``top`` strongest
    risk-raising reason candidates (one window per indicator) that the reasons leave out because
    their words could not explain them.
    """
    high = pd.Index(pd.unique(np.asarray(high_risk, dtype=object)))
    churn = reasons[reasons["target"] == "churn"]
    up = churn[churn["direction"] == "raises"]
    top1 = up[up["rank"] == 1].set_index("account_id").reindex(high)
    timing_top = top1["feature"].dropna().map(lambda f: component_of(f, defs) == TIMING)
    dis = reason_disagrees(up, defs) if len(up) else np.zeros(0, dtype=bool)
    has_play = reasons["play_id"].astype(str).str.len() > 0 if "play_id" in reasons else pd.Series(False, reasons.index)
    plays = reasons[has_play]
    out = {
        "accounts": int(reasons["account_id"].nunique()),
        "high_risk_accounts": int(len(high)),
        "high_risk_without_reason": int(top1["feature"].isna().sum()),
        "high_risk_top_reason_timing": int(timing_top.sum()),
        "high_risk_top_reason_timing_share": float(timing_top.sum() / max(len(high), 1)),
        "risk_raising_reasons": int(len(up)),
        "risk_raising_reasons_disagreeing": int(dis.sum()),
        "risk_raising_reasons_disagreeing_share": float(dis.mean()) if len(up) else 0.0,
        "plays": int(len(plays)),
        "plays_under_threshold": int((plays["points"] < min_points / 100 - 1e-12).sum()),
        "plays_repeated_on_an_account": int(plays.duplicated(["account_id", "play_id"]).sum()),
    }
    quoted = np.select([up["value"].isna(), up["healthy_level"].notna() & up["past_value"].notna(),
                        up["healthy_level"].notna()], ["missing value", "healthy and past", "healthy"], "past")
    out["risk_raising_reasons_by_reference"] = {k: int(v) for k, v in pd.Series(quoted).value_counts().items()}
    if points is not None and len(high):
        ids = _ids(points.index)
        P = points.to_numpy(dtype="float64")
        strongest = np.array(points.columns, dtype=object)[P.argmax(axis=1)]
        raw = pd.Series(strongest, index=ids).reindex(high).dropna()
        out["high_risk_raw_top_driver_timing_share"] = float(raw.map(lambda f: component_of(f, defs) == TIMING).mean())
    if points is not None:
        cand = [c for c in points.columns if is_reason(c, defs)]
        P = points[cand].to_numpy(dtype="float64", copy=True)
        _one_window(P, cand)
        best = np.clip(-np.sort(-P, axis=1)[:, :top], 0, None).sum()
        kept = up.loc[(up["rank"] <= top) & up["feature"].map(lambda f: is_reason(f, defs)), "points"].sum()
        out["risk_raising_candidate_points_left_out_share"] = float(1 - kept / best) if best > 0 else 0.0
    return out
