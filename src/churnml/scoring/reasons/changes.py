"""What changed since the last score, attributed to reasons in points.

Each score keeps ledger columns (:func:`ledger_columns`: the probability explained, its
components and the strongest reason indicators); between two scores of the same accounts,
:func:`attribute_change` splits the change into parts that add up exactly, and
:func:`what_changed` says it in words with its largest causes.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator
from churnml.scoring.reasons.components import CHANGE_UNITS, COMPONENTS, account_ids, components, is_reason
from churnml.scoring.reasons.words import displayed, formatter

LEDGER_REASONS = 15
"""How many reason indicators (largest points in size) each ledger row keeps by default."""


def ledger_column_names(k: int = LEDGER_REASONS) -> list[str]:
    """The ledger columns :func:`ledger_columns` gives."""
    return ["explains", "points_base", *(f"points_{c}" for c in COMPONENTS), "days_to_renewal"] + [
        f"reason_{i}_{x}" for i in range(1, k + 1) for x in ("feature", "points", "value")
    ]


def ledger_columns(
    points: pd.DataFrame,
    X: pd.DataFrame,
    p0: float,
    defs: dict[str, Indicator],
    *,
    explains: str = "churn_90d",
    k: int = LEDGER_REASONS,
) -> pd.DataFrame:
    """What the ledger keeps of a score to explain the next change (indexed by account_id).

    ``explains`` names the probability explained (a change is only attributed between scores
    of the same one); ``points_base`` and ``points_<component>`` add up to it; the ``k`` reason
    indicators with the largest points in size as ``reason_<i>_feature``, ``_points``,
    ``_value``; ``days_to_renewal`` for the timing words.
    """
    ids = account_ids(points.index)
    comp = components(points, defs)
    out = {"explains": np.full(len(points), explains, dtype=object), "points_base": np.full(len(points), float(p0))}
    for c in COMPONENTS:
        out[f"points_{c}"] = comp[c].to_numpy()
    out["days_to_renewal"] = (
        X["days_to_renewal"].to_numpy(dtype="float64") if "days_to_renewal" in X else np.full(len(points), np.nan)
    )
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
    fmt, label = formatter(ind), ind.label
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
        prev["explains"].to_numpy(dtype=object) == current["explains"].to_numpy(dtype=object)
    )
    rows = np.flatnonzero(ok)
    prev, cur = prev.iloc[rows], current.iloc[rows]
    n = len(rows)
    fa, pa, va = _kept(prev)
    fb, pb, vb = _kept(cur)
    codes, names = pd.factorize(np.concatenate([fa.ravel(), fb.ravel()]), use_na_sentinel=True)
    names = np.asarray(names, dtype=object)
    F = max(len(names), 1)
    ca, cb = codes[: fa.size].reshape(fa.shape), codes[fa.size :].reshape(fb.shape)
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
    parts = {
        "acc": [acc_i],
        "item": [np.full(m, "reason", dtype=object)],
        "feature": [names[feat_i] if len(names) else np.full(0, None, dtype=object)],
        "points": [delta],
        "previous_value": [u_va],
        "value": [u_vb],
        "previous_kept": [has_a],
        "kept": [has_b],
    }
    named = np.bincount(acc_i, weights=delta, minlength=n)
    renew_a, renew_b = prev["days_to_renewal"].to_numpy(float), cur["days_to_renewal"].to_numpy(float)
    nan, no = np.full(n, np.nan), np.zeros(n, dtype=bool)
    extra = [
        ("timing", cur["points_timing"].to_numpy(float) - prev["points_timing"].to_numpy(float), renew_a, renew_b, ~no),
        ("profile", cur["points_profile"].to_numpy(float) - prev["points_profile"].to_numpy(float), nan, nan, no),
        ("model", cur["points_base"].to_numpy(float) - prev["points_base"].to_numpy(float), nan, nan, no),
    ]
    for _, d, _, _, _ in extra:
        named = named + d
    extra.append(("other", _total(cur) - _total(prev) - named, nan, nan, no))
    for item, d, a, b, kept in extra:
        for key, val in (
            ("acc", np.arange(n)),
            ("item", np.full(n, item, dtype=object)),
            ("feature", np.full(n, None, dtype=object)),
            ("points", d),
            ("previous_value", a),
            ("value", b),
            ("previous_kept", kept),
            ("kept", kept),
        ):
            parts[key].append(val)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["acc"] = rows[out["acc"]] if n else out["acc"].astype(int)
    return out, ok


def attribute_change(
    previous: pd.DataFrame, current: pd.DataFrame, defs: dict[str, Indicator] | None = None
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
        out[sel] = [
            _change_words(ind, x, y, u, v) if ind else str(f)
            for x, y, u, v in zip(a[sel].tolist(), b[sel].tolist(), ka[sel].tolist(), kb[sel].tolist())
        ]
    sel = np.flatnonzero(item == "timing")
    out[sel] = [
        f"timing: renewal {x:.0f} -> {y:.0f} days away" if x == x and y == y else "timing"
        for x, y in zip(a[sel].tolist(), b[sel].tolist())
    ]
    for name, words in (
        ("profile", "account profile (size, plan, seats)"),
        ("model", "model updated"),
        ("other", "other small changes"),
    ):
        out[item == name] = words
    return out


def what_changed(
    previous: pd.DataFrame,
    current: pd.DataFrame,
    defs: dict[str, Indicator],
    *,
    previous_date,
    top: int = 3,
    min_points: float = 1.0,
    what: str = "risk",
) -> pd.Series:
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
    dates = (
        previous_date.reindex(ids)
        if isinstance(previous_date, pd.Series)
        else pd.Series(pd.Timestamp(previous_date), index=ids)
    )
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
            out.append(
                f"{what} {p_then[i]:.0%} -> {p_now[i]:.0%} since {date[i]}, now measured as {e_now[i]} "
                f"(was {e_then[i]}): no breakdown"
            )
        else:
            head = f"{what} {_pts(p_now[i] - p_then[i])} pts since {date[i]} ({p_then[i]:.0%} -> {p_now[i]:.0%})"
            out.append(head + (": " + ", ".join(causes[i]) if i in causes else ""))
    return pd.Series(out, index=ids, name="what_changed")
