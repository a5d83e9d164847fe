"""Plays that fit: the playbook, checked, and the play each reason gets.

:func:`parse_playbook` reads a playbook file's content into a :class:`Playbook` (every error
names the file, the key and what is wrong). :func:`assign_plays` gives a play only to a
reason worth ``min_points``, at most once per account, honouring ``when`` conditions and
``excludes`` across churn and expansion plays. :func:`family_plays` is the one-play-per-family
view of a playbook.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnml.errors import ChurnmlError
from churnml.features import Context, indicators_for
from churnml.features._registry import FAMILIES, Indicator
from churnml.scoring.reasons.components import PROFILE, TIMING, account_ids, is_reason

FLAGS = ("at_risk", "expansion_candidate")
"""Built-in conditions, given per account by the caller of :func:`assign_plays`: ``at_risk``
(e.g. the high risk tier) and ``expansion_candidate`` (the accounts explained for expansion)."""

PROBABILITIES = ("churn_probability", "expansion_probability")
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal}
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
        raise ChurnmlError(f'{where}: conditions must be a mapping of name -> "<indicator> <op> <number>"')
    for name, expr in raw_cond.items():
        key = f"conditions.{name}"
        if name in FLAGS:
            raise ChurnmlError(f"{where}: {key}: {name} is built in; choose another name")
        m = _COND.match(expr) if isinstance(expr, str) else None
        if not m:
            raise ChurnmlError(
                f'{where}: {key}: {expr!r} is not "<indicator> <op> <number>" '
                f'(op one of {", ".join(_OPS)}), e.g. "peak_active_users_per_seat_30d < 0.5"'
            )
        col, op, num = m.groups()
        if col not in known and col not in PROBABILITIES:
            raise ChurnmlError(f"{where}: {key}: {_unknown(col, [*known, *PROBABILITIES], 'indicator')}")
        conditions[name] = Condition(name, col, op, float(num))
    plays: list[Play] = []
    ids: dict[str, str] = {}  # play id -> its target
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
                    raise ChurnmlError(
                        f"{where}: {key}.for: {a} is never a reason (timing and profile are context, "
                        f"indicators without a risk direction have no healthy side); a play answers "
                        f"a family ({', '.join(FAMILIES)}) or a behavioural indicator"
                    )
                what = _unknown(a, [*FAMILIES, *sorted(reasons)], "family or indicator")
                raise ChurnmlError(f"{where}: {key}.for: {what}")
            when = []
            for w in _as_list(play.get("when"), where, f"{key}.when"):
                neg = w.startswith("not ")
                name = w[4:].strip() if neg else w.strip()
                if name not in conditions and name not in FLAGS:
                    raise ChurnmlError(
                        f"{where}: {key}.when: {_unknown(name, [*conditions, *FLAGS], 'condition')}; "
                        f"declare it under conditions"
                    )
                when.append((neg, name))
            mp = play.get("min_points")
            if mp is not None and (isinstance(mp, bool) or not isinstance(mp, (int, float)) or mp < 0):
                raise ChurnmlError(f"{where}: {key}.min_points must be a number of points >= 0, got {mp!r}")
            plays.append(
                Play(
                    pid,
                    target,
                    play["title"].strip(),
                    play["text"].strip(),
                    tuple(answers),
                    tuple(when),
                    tuple(_as_list(play.get("excludes"), where, f"{key}.excludes")),
                    None if mp is None else float(mp),
                )
            )
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
    out: dict[str, str] = {}
    for p in pb.of(target):
        for a in p.answers:
            if a in FAMILIES:
                out.setdefault(a, p.words)
    return out


def _condition_values(
    pb: Playbook, accounts: pd.Index, X: pd.DataFrame, flags: dict | None, probabilities
) -> dict[str, np.ndarray]:
    """Each condition and flag as a boolean array over ``accounts``."""
    out: dict[str, np.ndarray] = {}
    Xa = (
        X.reindex(accounts)
        if not isinstance(X.index, pd.MultiIndex)
        else X.set_axis(account_ids(X.index)).reindex(accounts)
    )
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
        out[name] = (
            np.zeros(len(accounts), dtype=bool)
            if f is None
            else f.astype("boolean").reindex(accounts).fillna(False).to_numpy(dtype=bool)
        )
    return out


MATCHES = ("primary", "indicator", "family")
"""How closely a play answers a reason, closest first: ``primary`` (the reason's indicator is the first
indicator the play's ``for`` names: what the play is about), ``indicator`` (named anywhere in ``for``),
``family`` (the play answers the reason's whole family)."""


def play_matches(play: Play, feature: str, family: str, how: str) -> bool:
    """Whether ``play`` answers a reason of ``feature`` (in ``family``) as closely as ``how`` (:data:`MATCHES`)."""
    named = [a for a in play.answers if a not in FAMILIES]
    if how == "primary":
        return bool(named) and named[0] == feature
    if how == "indicator":
        return feature in named
    return family in play.answers


def assign_plays(
    reasons: pd.DataFrame,
    X: pd.DataFrame,
    playbook,
    *,
    min_points: float = 1.0,
    flags: dict | None = None,
    probabilities: pd.DataFrame | None = None,
) -> pd.DataFrame:
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

    Plays go to the reason they address: first every play whose first named indicator is a reason's
    own (:data:`MATCHES`), then plays naming the indicator anywhere, and only then the plays of a whole
    family, so "right-size seats" hangs on the seats reason, not on whichever usage reason ranks first,
    and a family's catch-all play ("adoption workshop") is left for the reasons nothing else answers.
    This one assignment is what the drivers table, the pages and ``explain`` all show.
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
        pending_all = np.ones(n, dtype=bool)
        for tgt in ("churn", "expansion"):
            plays = [(pos[p.id], p) for p in pb.of(tgt)]
            for how in MATCHES:  # the play that names the reason's indicator first, then any, then its family
                for r in np.unique(rank[(target == tgt) & raising]):
                    slot = (target == tgt) & raising & (rank == r) & pending_all  # one reason per account
                    for f in pd.unique(feat[slot]):
                        rows = np.flatnonzero(slot & (feat == f))
                        family = fam[rows[0]]
                        for i, p in plays:
                            if not play_matches(p, f, family, how):
                                continue
                            rows = rows[pending_all[rows]]
                            a = acc[rows]
                            floor = (min_points if p.min_points is None else p.min_points) / 100
                            give = ok[a, i] & ~taken[a, i] & ~blocked[a, i] & (pts[rows] >= floor - 1e-12)
                            if give.any():
                                play_id[rows[give]] = p.id
                                words[rows[give]] = p.words
                                taken[a[give], i] = True
                                blocked[a[give]] |= excl[i]
                                pending_all[rows[give]] = False
    out["play_id"] = play_id
    out["play"] = words
    return out


def play_counts(drivers: pd.DataFrame, scores: pd.DataFrame, playbook) -> pd.DataFrame:
    """How often each play of the playbook is proposed in a scoring run, in the playbook's order (plays never
    proposed included, with zeros): ``accounts`` (accounts given the play on any reason), ``high_risk_accounts``
    (of them, in the high tier), ``first_play_accounts`` (accounts whose first play, the one the call list
    shows, it is) and ``first_play_share_of_high`` (the share of high-tier accounts whose first play it is).
    ``drivers`` is the drivers table (``account_id``, ``target``, ``rank``, ``play_id``); ``scores`` has
    ``account_id`` and ``risk_tier``."""
    pb = playbook if isinstance(playbook, Playbook) else parse_playbook(playbook, "the playbook")
    d = drivers[drivers["play_id"].astype(str) != ""] if len(drivers) else drivers
    high = set(scores.loc[scores["risk_tier"] == "high", "account_id"].astype(str))
    churn = d[d["target"] == "churn"].sort_values(["account_id", "rank"], kind="stable") if len(d) else d
    first = churn.drop_duplicates("account_id") if len(churn) else churn
    rows = []
    for p in pb.plays:
        given = set(d.loc[d["play_id"] == p.id, "account_id"].astype(str)) if len(d) else set()
        firsts = set(first.loc[first["play_id"] == p.id, "account_id"].astype(str)) if len(first) else set()
        rows.append(
            {
                "play_id": p.id,
                "target": p.target,
                "title": p.title,
                "accounts": len(given),
                "high_risk_accounts": len(given & high),
                "first_play_accounts": len(firsts),
                "first_play_share_of_high": len(firsts & high) / len(high) if high else 0.0,
            }
        )
    return pd.DataFrame(rows)
