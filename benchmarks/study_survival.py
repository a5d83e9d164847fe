"""Study: which time-to-churn model to use, judged by a time-ordered backtest.

On one or more customer bases (generated with a seed, a size, a history length and a
contract-term mix, or read from a folder) this compares, on the **same** time-ordered
folds (``churnml.modeling.folds.make_folds`` over the 90-day labelled cutoffs):

* ``today_90d``: today's 90-day classifier (``fit_recipe``: LightGBM, later calibration slice);
* ``hazard``: the discrete-time hazard model (``churnml.modeling.survival.SurvivalModel``),
  and variants of it (``HAZARD_VARIANTS``: ``hazard_one`` has one booster for every month);
* ``stacked``: one classifier over (account, cutoff, horizon) rows with the horizon and
  the number of renewals inside it as monotone-increasing inputs (defined below);
* ``per_horizon``: today's recipe trained separately for 30, 90, 180 and 365 days (each
  with its own gap), made monotone by a running maximum.

Each fold's models learn only from what was known before its first test cutoff ``T``:
the 90-day classifier from its fit/calibration cutoffs, the others from the churn
events with the data cut at ``T - 1``. Every model scores the fold's test cutoffs; the
newest fold's models also score the cutoffs after its test block (for lead time).

Reported per base: per-horizon PR-AUC / ROC-AUC / Brier (and reliability, in the
JSON); the early-warning table (accounts whose renewal is 90-365 days away: who churns
within a year); the lead time (median days before a churn that the account first
entered the high tier = the top 10% of its cutoff, same folds for every model); the
90-day PR-AUC of each candidate against today's classifier with a paired bootstrap
over accounts; and the cost of explaining against predicting.

Usage::

    python benchmarks/study_survival.py --base demo:5000:42:3:default --base s7:3000:7:3:default \\
        --folds 8 --out outputs/study_survival

``--base NAME:ACCOUNTS:SEED:YEARS:TERMS`` generates a base (TERMS: a preset of
``churnml.generate.TERM_PRESETS``); ``--base NAME:/path/to/folder`` reads one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

HORIZONS = (30, 90, 180, 365)
_BASE_KEYS = ("accounts", "seed", "years", "terms", "path")
# the hazard model's variants: one booster for every month, or one for months 1-3 and one after
HAZARD_VARIANTS = {
    "hazard": {},  # the module's defaults
    "hazard_one": {"segments": ()},
    "hazard_own": {"last_learns_all": False},  # the later months' booster learns from later months only
    "hazard_3_6": {"segments": (3, 6)},
    "hazard_big": {"params": {"num_leaves": 15, "max_depth": 4}},
    "hazard_full": {"negative_rate": 1.0},
}
STACK_HORIZONS = (30, 60, 90, 120, 180, 270, 365)


# --- the stacked alternative -------------------------------------------------------------------
def renewals_within(days_to_renewal, term_days, h):
    """How many renewal dates fall in ``[0, h)`` after the cutoff (contract end rolled by whole terms)."""
    from churnml.modeling.survival import timing_inputs

    r0 = timing_inputs(np.zeros(len(np.atleast_1d(days_to_renewal))), 0.0, days_to_renewal, term_days)[
        "renewal_in_days"
    ]
    T = np.asarray(term_days, float)
    h = np.asarray(h, float)
    n = np.where(r0 < h, 1 + np.floor((h - 1 - r0) / np.where(T > 0, T, np.inf)), 0.0)
    return np.where(np.isnan(r0), np.nan, n)


class StackedHorizonModel:
    """One LightGBM classifier on (account, cutoff, horizon) rows: churned within ``h`` days.

    Inputs: the account's features, ``horizon_days`` and ``renewals_within`` (renewal dates in
    ``[0, h)``), both with a monotone-increasing constraint, so the curve is monotone in ``h``.
    Rows only where the window is observed (and the term did not complete inside it).
    Calendar split like :class:`SurvivalModel`: windows ending in the last
    ``calibration_days`` early-stop and calibrate (Platt scaling, slope > 0 keeps monotone).
    """

    def __init__(self, params=None, *, horizons=STACK_HORIZONS, negative_rate=0.3, grace_days=14, seed=0, threads=2):
        self.params, self.horizons, self.negative_rate = params, horizons, negative_rate
        self.grace_days, self.seed, self.threads = grace_days, seed, threads

    def _design(self, A, X, r, h):
        dtr = X["days_to_renewal"].to_numpy(float)[r]
        term = X["term_length_days"].to_numpy(float)[r]
        return np.column_stack([A[r], h, renewals_within(dtr, term, h)])

    def fit(self, X, events, *, categorical=(), calibration_days=91):
        from churnml.errors import ChurnmlError
        from churnml.modeling.encoding import CategoryCodes
        from churnml.modeling.events import churned_within
        from churnml.modeling.params import EARLY_STOPPING, MAX_ROUNDS, lgb_params
        from churnml.modeling.survival import _platt

        last_day = pd.Timestamp(events.attrs["last_day"])
        common = X.index.intersection(events.index)
        ev, Xc = events.loc[common], X.loc[common]
        cut = ev.index.get_level_values("cutoff").to_numpy("datetime64[D]")
        C = np.datetime64(last_day, "D") + 1 - calibration_days
        parts = {"fit": [], "cal": []}
        for h in self.horizons:
            y = churned_within(ev, h)
            ok = y.notna().to_numpy()
            end = cut + np.timedelta64(h, "D")
            for name, m in (("fit", ok & (end <= C - 1)), ("cal", ok & (end > C - 1))):
                r = np.flatnonzero(m)
                parts[name].append(pd.DataFrame({"r": r, "h": float(h), "y": y.to_numpy(dtype=int, na_value=0)[r]}))
        self.features_ = list(X.columns)
        self.categorical_ = [c for c in categorical if c in self.features_]
        self.encoder_ = CategoryCodes(tuple(self.categorical_)).fit(Xc)
        A = self.encoder_.transform(Xc[self.features_]).to_numpy(float)
        rng = np.random.default_rng(self.seed)
        data = {}
        for name, ps in parts.items():
            rows = pd.concat(ps, ignore_index=True)
            if rows.empty or rows["y"].sum() == 0:
                raise ChurnmlError(f"stacked: no churn in the {name} slice")
            keep = (rows["y"].to_numpy() == 1) | (rng.random(len(rows)) < self.negative_rate)
            rows = rows[keep]
            w = np.where(rows["y"].to_numpy() == 1, 1.0, 1.0 / self.negative_rate)
            data[name] = (self._design(A, Xc, rows["r"].to_numpy(), rows["h"].to_numpy()), rows["y"].to_numpy(), w)
        names = self.features_ + ["horizon_days", "renewals_within"]
        p = lgb_params(self.params, self.seed, self.threads)
        p["monotone_constraints"] = [0] * len(self.features_) + [1, 1]
        p["monotone_constraints_method"] = "advanced"
        rounds = int(p.pop("n_estimators", MAX_ROUNDS))
        cat_idx = [self.features_.index(c) for c in self.categorical_]
        (Mf, yf, wf), (Mc, yc, wc) = data["fit"], data["cal"]
        dtrain = lgb.Dataset(Mf, yf, weight=wf, feature_name=names, categorical_feature=cat_idx, free_raw_data=False)
        dvalid = lgb.Dataset(Mc, yc, weight=wc, reference=dtrain, feature_name=names, categorical_feature=cat_idx)
        self.booster_ = lgb.train(
            p,
            dtrain,
            num_boost_round=rounds,
            valid_sets=[dvalid],
            callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
        )
        self.best_ = int(self.booster_.best_iteration or rounds)
        self.cal_ = _platt(self.booster_.predict(Mc, num_iteration=self.best_, raw_score=True), yc, wc)
        return self

    def _p(self, X, h):
        A = self.encoder_.transform(X[self.features_]).to_numpy(float)
        h = np.broadcast_to(np.asarray(h, float), (len(X),))
        ok = ~np.isnan(h)
        out = np.full(len(X), np.nan)
        r = np.flatnonzero(ok)
        if len(r):
            z = self.booster_.predict(self._design(A, X, r, h[r]), num_iteration=self.best_, raw_score=True)
            out[r] = 1 / (1 + np.exp(-(self.cal_[0] * z + self.cal_[1])))
        return out

    def predict_curve(self, X, days=HORIZONS):
        return pd.DataFrame({f"churn_{d}d": self._p(X, d) for d in days}, index=X.index)

    def predict_next_renewal(self, X):
        from churnml.modeling.events import next_renewal_days

        w = next_renewal_days(X["days_to_renewal"], X["term_length_days"], self.grace_days) + self.grace_days
        return pd.Series(self._p(X, w), index=X.index)

    def explain_raw(self, X, h=365):
        A = self.encoder_.transform(X[self.features_]).to_numpy(float)
        r = np.arange(len(X))
        return self.booster_.predict(
            self._design(A, X, r, np.full(len(X), float(h))), num_iteration=self.best_, pred_contrib=True
        )


# --- one base -------------------------------------------------------------------------------------
def load_base(spec: str, cache: Path):
    from churnml.api import load_dataset
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    name, _, rest = spec.partition(":")
    if rest.startswith(("/", ".")):
        return name, load_dataset(rest), {"path": rest}
    accounts, seed, years, terms = rest.split(":")
    info = {"accounts": int(accounts), "seed": int(seed), "years": float(years), "terms": terms}
    folder = cache / f"{name}_{accounts}_{seed}_{years}_{terms}"
    if not (folder / "accounts.parquet").exists():
        tables = generate(GeneratorConfig(accounts=int(accounts), seed=int(seed), years=float(years), terms=terms))
        write_dataset(tables, folder, fmt="parquet")
    return name, load_dataset(folder), info


def per_horizon_recipe(X, events_T, T, h, features, categorical, seed, threads):
    """Today's recipe trained for horizon ``h`` on what is known before ``T`` (None if too short)."""
    from churnml.errors import ChurnmlError
    from churnml.modeling.backtest import fit_recipe
    from churnml.modeling.events import churned_within
    from churnml.modeling.folds import split_past

    y = churned_within(events_T, h)
    D = X.loc[events_T.index].assign(y=y.to_numpy())
    D = D[D["y"].notna()]
    D["y"] = D["y"].astype(bool)
    cuts = sorted(D.index.get_level_values("cutoff").unique())
    fit, cal = split_past(cuts, T, h, 3)
    if len(fit) < 2:
        return None
    try:
        model, _, _ = fit_recipe(
            D,
            fit,
            cal,
            features=features,
            categorical=categorical,
            label_cols={"churn": "y"},
            seed=seed,
            threads=threads,
        )
    except (ChurnmlError, ValueError):
        return None
    return model


def paired_bootstrap(y, p_a, p_b, groups, reps=300, seed=0):
    """PR-AUC(a) - PR-AUC(b) and its bootstrap standard error, resampling accounts (clusters)."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    codes, uniq = pd.factorize(groups)
    idx_by = pd.Series(np.arange(len(y))).groupby(codes).apply(np.asarray).to_list()
    diffs = []
    for _ in range(reps):
        pick = rng.integers(0, len(uniq), len(uniq))
        ii = np.concatenate([idx_by[i] for i in pick])
        if y[ii].min() == y[ii].max():
            continue
        diffs.append(average_precision_score(y[ii], p_a[ii]) - average_precision_score(y[ii], p_b[ii]))
    d0 = average_precision_score(y, p_a) - average_precision_score(y, p_b)
    return float(d0), float(np.std(diffs, ddof=1))


def study_base(name, ds, info, *, n_folds, seed, threads, candidates, lookback, echo=print):
    from churnml.modeling.backtest import fit_recipe
    from churnml.modeling.early_warning import lead_time
    from churnml.modeling.events import churn_events
    from churnml.modeling.folds import make_folds
    from churnml.modeling.survival import SurvivalModel
    from churnml.modeling.training import training_data

    t_start = time.perf_counter()
    td = training_data(ds, cutoffs="monthly", horizon_days=90, uplift=0.1)
    X, D = td.X, td.D
    features, categorical = td.features, td.categorical
    subs = ds.subscriptions
    last_day = ds.last_date()
    all_cuts = X.index.get_level_values("cutoff")
    events = churn_events(subs, all_cuts.unique(), last_day)
    folds = make_folds(
        D.index.get_level_values("cutoff").unique(),
        horizon_days=90,
        n_folds=n_folds,
        test_cutoffs=3,
        calibration_cutoffs=3,
    )
    echo(f"[{name}] {len(X):,} account-cutoffs, {len(folds)} folds, features {time.perf_counter() - t_start:.0f}s")
    preds = []  # rows: account_id, cutoff, fold, model, churn_30d.., next_renewal, p90_today
    costs = {}
    newest_test_end = max(folds[0].test)
    for fold in folds:
        t0 = time.perf_counter()
        T = fold.test[0]
        score_cuts = list(fold.test) + (
            [t for t in all_cuts.unique() if t > newest_test_end] if fold.index == 0 else []
        )
        Xs = X[all_cuts.isin(score_cuts)]
        base = {"fold": fold.index}
        # today's 90-day classifier
        clf, _, _ = fit_recipe(
            D,
            fold.fit,
            fold.calibrate,
            features=features,
            categorical=categorical,
            label_cols={"churn": td.label_cols["churn"]},
            seed=seed,
            threads=threads,
        )
        p90 = clf.predict_target(Xs[features], "churn")
        preds.append(pd.DataFrame({"model": "today_90d", **base, "churn_90d": p90}, index=Xs.index))
        ev_T = churn_events(subs, [t for t in all_cuts.unique() if t < T], T - pd.Timedelta(days=1))
        X_T = X[all_cuts < T]
        for cand in candidates:
            tc = time.perf_counter()
            if cand.startswith("hazard"):
                m = SurvivalModel(seed=seed, threads=threads, **HAZARD_VARIANTS[cand])
                m.fit(X_T, ev_T, categorical=categorical)
            elif cand == "stacked":
                m = StackedHorizonModel(seed=seed, threads=threads).fit(X_T, ev_T, categorical=categorical)
            elif cand == "per_horizon":
                models = {
                    h: per_horizon_recipe(X_T, ev_T, T, h, features, categorical, seed, threads) for h in HORIZONS
                }
                cols = {}
                for h in HORIZONS:
                    cols[f"churn_{h}d"] = (
                        models[h].predict_target(Xs[features], "churn")
                        if models[h] is not None
                        else np.full(len(Xs), np.nan)
                    )
                c = pd.DataFrame(cols, index=Xs.index)
                v = c.to_numpy()
                c = pd.DataFrame(
                    np.where(np.isnan(v), np.nan, np.fmax.accumulate(v, axis=1)), index=c.index, columns=c.columns
                )
                preds.append(c.assign(model=cand, fold=fold.index, next_renewal=np.nan))
                costs.setdefault(cand, []).append(time.perf_counter() - tc)
                continue
            fit_s = time.perf_counter() - tc
            c = m.predict_curve(Xs, HORIZONS)
            c["next_renewal"] = m.predict_next_renewal(Xs).to_numpy()
            preds.append(c.assign(model=cand, fold=fold.index))
            costs.setdefault(cand, []).append(fit_s)
            if fold.index == 0:
                costs[f"{cand}_model"] = m
                costs["_Xs"] = Xs
        echo(
            f"  fold {fold.index} (test {fold.test[0]:%Y-%m-%d}..{fold.test[-1]:%Y-%m-%d}): "
            f"{time.perf_counter() - t0:.0f}s"
        )
    P = pd.concat(preds)
    result = {
        "base": name,
        **info,
        "folds": len(folds),
        "rows": len(X),
        "first_test_cutoff": f"{min(t for f in folds for t in f.test):%Y-%m-%d}",
        "last_test_cutoff": f"{newest_test_end:%Y-%m-%d}",
    }
    test_cuts = sorted({t for f in folds for t in f.test})
    bt = P[P.index.get_level_values("cutoff").isin(test_cuts)]
    models = ["today_90d"] + list(candidates)
    wide = {m: bt[bt["model"] == m] for m in models}
    common = None
    for m in models:
        common = wide[m].index if common is None else common.intersection(wide[m].index)
    curves = {m: _curves(wide[m].loc[common]) for m in models}
    result.update(evaluate(curves, events, X.loc[common], models, candidates, seed))
    # per_horizon cannot give a 365-day probability until a year of labels precedes the
    # test cutoffs: it is also judged on its own rows, beside the others on the same rows
    partial = [m for m in candidates if curves[m]["churn_365d"].isna().any()]
    if partial:
        full = [m for m in models if m not in partial]
        result["full_coverage"] = evaluate(
            curves, events, X.loc[common], full, [m for m in candidates if m in full], seed
        )
    # --- lead time: walk-forward scores (test cutoffs of every fold + newest fold's tail) -------
    lead = {}
    for key, (m, col) in {
        "today_90d": ("today_90d", "churn_90d"),
        **{f"{c}_365d": (c, "churn_365d") for c in candidates},
        **{
            f"{c}_next_renewal": (c, "next_renewal")
            for c in candidates
            if not P.loc[P["model"] == c, "next_renewal"].isna().all()
        },
    }.items():
        s = P.loc[P["model"] == m, col]
        if s.isna().any():  # a model without scores on part of the span would be judged on other churns
            lead[key] = {
                "churns": 0.0,
                "median_lead_days": np.nan,
                "share_flagged": np.nan,
                "median_lead_days_flagged": np.nan,
                "share_flagged_90d_ahead": np.nan,
            }
            continue
        lead[key] = lead_time(s, events, lookback_days=lookback)
    # the same models with other tier rules (same 10% alert budget per cutoff): the hazard model's
    # own 90-day probability, and the larger of its 90-day and 12-month percentiles in the cutoff
    for c in [c for c in candidates if c.startswith("hazard")][:1]:
        part = P[P["model"] == c]
        lead[f"{c}_90d"] = lead_time(part["churn_90d"], events, lookback_days=lookback)
        pct = lambda col: part[col].groupby(level="cutoff").rank(pct=True)  # noqa: E731
        lead[f"{c}_max_90d_365d"] = lead_time(
            np.maximum(pct("churn_90d"), pct("churn_365d")), events, lookback_days=lookback
        )
    result["lead_time"] = lead
    result["_predictions"] = P
    # --- cost: explaining vs predicting the 12-month probability (newest fold's model) -----------
    Xs = costs.pop("_Xs")
    cost = {}
    for c in candidates:
        m = costs.pop(f"{c}_model", None)
        if m is None:
            continue
        Xc = Xs.iloc[: min(len(Xs), 3000)]
        t_pred = _best(lambda: m.predict_curve(Xc, (365,)))
        if isinstance(m, SurvivalModel):
            t_exp = _best(lambda: m.explain(Xc, 365))
        else:
            t_exp = _best(lambda: m.explain_raw(Xc, 365))
        cost[c] = {
            "rows": len(Xc),
            "predict_365d_s": t_pred,
            "explain_365d_s": t_exp,
            "ratio": t_exp / t_pred,
            "mean_fit_s": float(np.mean(costs[c])),
        }
    t_clf = _best(lambda: clf.predict_target(Xs.iloc[:3000][features], "churn"))
    cost["today_90d"] = {"rows": min(len(Xs), 3000), "predict_s": t_clf}
    result["cost"] = cost
    result["seconds"] = time.perf_counter() - t_start
    return result


def _curves(w: pd.DataFrame) -> pd.DataFrame:
    """A model's predictions as curve columns; the 90-day classifier's probability stands in for
    every horizon (its ranking at other horizons is what the issue measures)."""
    out = {}
    for h in HORIZONS:
        c = f"churn_{h}d"
        out[c] = w[c] if c in w.columns and not w[c].isna().all() else w["churn_90d"]
    out["next_renewal"] = w["next_renewal"] if "next_renewal" in w.columns else np.nan
    out["fold"] = w["fold"]
    return pd.DataFrame(out, index=w.index)


def evaluate(curves: dict, events, X, models, candidates, seed) -> dict:
    """Per-horizon metrics, 90-day PR-AUC against today's, early-warning and within-a-year tables,
    every model on the same rows (where all of them have a probability for that horizon)."""
    from churnml.modeling.early_warning import early_warning_table, horizon_metrics
    from churnml.modeling.events import churned_within
    from churnml.modeling.metrics import binary_metrics

    res, per = {}, {m: {} for m in models}
    idx = X.index
    ev = events.reindex(idx)
    arr = 12.0 * X["mrr"].to_numpy(float)
    for h in HORIZONS:
        col = f"churn_{h}d"
        ok = np.logical_and.reduce([curves[m][col].notna().to_numpy() for m in models])
        for m in models:
            tab, rel = horizon_metrics(curves[m].loc[ok, [col]], ev[ok], [h], arr[ok])
            x = {k: float(tab.loc[h, k]) for k in ("n", "base_rate", "pr_auc", "roc_auc", "brier", "top_decile_lift")}
            x["own_horizon"] = bool(m != "today_90d" or h == 90)
            x["reliability"] = rel[h].round(5).to_dict(orient="list") if len(rel[h]) else {}
            per[m][int(h)] = x
    res["per_horizon"] = per
    y90 = churned_within(ev, 90)
    ok = y90.notna().to_numpy()
    yy = y90.to_numpy(dtype=float, na_value=np.nan)[ok]
    acc = idx.get_level_values("account_id")[ok]
    p_today = curves["today_90d"]["churn_90d"].to_numpy(float)[ok]
    res["pr_auc_90d_vs_today"] = {}
    for m in candidates:
        p_m = curves[m]["churn_90d"].to_numpy(float)[ok]
        d, se = paired_bootstrap(yy, p_m, p_today, acc, seed=seed)
        f_of = curves[m]["fold"].to_numpy()[ok]
        per_fold = {
            int(f): binary_metrics(yy[f_of == f], p_m[f_of == f])["pr_auc"]
            - binary_metrics(yy[f_of == f], p_today[f_of == f])["pr_auc"]
            for f in np.unique(f_of)
        }
        res["pr_auc_90d_vs_today"][m] = {
            "difference": d,
            "bootstrap_se": se,
            "per_fold": per_fold,
            "today": float(binary_metrics(yy, p_today)["pr_auc"]),
            "candidate": float(binary_metrics(yy, p_m)["pr_auc"]),
        }
    scores = {"today_90d": curves["today_90d"]["churn_90d"]}
    for m in candidates:
        scores[f"{m}_365d"] = curves[m]["churn_365d"]
        if not curves[m]["next_renewal"].isna().all():
            scores[f"{m}_next_renewal"] = curves[m]["next_renewal"]
    res["early_warning"] = early_warning_table(scores, events, X).round(5).to_dict(orient="index")
    res["within_year_all_rows"] = (
        early_warning_table(scores, events, X, renewal_from=-(10**6), renewal_to=10**6).round(5).to_dict(orient="index")
    )
    return res


def _best(fn, repeat=3):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def print_evaluation(r, echo=print):
    echo("per horizon (pooled backtest, rows whose window is observed): PR-AUC / ROC-AUC / Brier  [n, churn rate]")
    for m, per in r["per_horizon"].items():
        cells = []
        for h in HORIZONS:
            x = per[str(h)] if str(h) in per else per[h]
            tag = "" if x["own_horizon"] else "*"
            cells.append(
                f"{h}d {x['pr_auc']:.3f}/{x['roc_auc']:.3f}/{x['brier']:.4f}{tag} [{x['n']:.0f}, {x['base_rate']:.3f}]"
            )
        echo(f"  {m:<12} " + "  ".join(cells))
    echo("  (* = the 90-day probability used as the score for that horizon)")
    echo("90-day PR-AUC minus today's (paired bootstrap over accounts):")
    for m, x in r["pr_auc_90d_vs_today"].items():
        folds = ", ".join(f"{v:+.3f}" for v in x["per_fold"].values())
        echo(f"  {m:<12} {x['difference']:+.4f} (se {x['bootstrap_se']:.4f}); per fold {folds}")
    echo("early warning (renewal 90-365 days after the cutoff; churn within 365 days):")
    for s, x in r["early_warning"].items():
        echo(
            f"  {s:<24} n {x['n']:.0f}  rate {x['base_rate']:.3f}  ROC-AUC {x['roc_auc']:.3f}  "
            f"PR-AUC {x['pr_auc']:.3f}  top-decile lift {x['top_decile_lift']:.2f}"
        )
    echo("who churns within a year (all rows):")
    for s, x in r["within_year_all_rows"].items():
        echo(
            f"  {s:<24} n {x['n']:.0f}  rate {x['base_rate']:.3f}  ROC-AUC {x['roc_auc']:.3f}  "
            f"PR-AUC {x['pr_auc']:.3f}  top-decile lift {x['top_decile_lift']:.2f}"
        )


def print_result(r, echo=print):
    echo(
        f"\n=== {r['base']} ({', '.join(f'{k}={v}' for k, v in r.items() if k in _BASE_KEYS)}; "
        f"{r['folds']} folds, test cutoffs {r['first_test_cutoff']}..{r['last_test_cutoff']}) ==="
    )
    print_evaluation(r, echo)
    if "full_coverage" in r:
        echo("--- the same, without the models that lack a probability on part of the rows (more rows) ---")
        print_evaluation(r["full_coverage"], echo)
    echo("lead time (high tier = top 10% of each cutoff; churns with a full year scored before them):")
    for s, x in r["lead_time"].items():
        echo(
            f"  {s:<24} churns {x['churns']:.0f}  median lead {x['median_lead_days']:.0f} d  flagged "
            f"{x['share_flagged']:.0%}  (median of flagged {x['median_lead_days_flagged']:.0f} d)  "
            f"flagged 90+ d ahead {x['share_flagged_90d_ahead']:.0%}"
        )
    echo("cost (newest fold's model; 12-month probability):")
    for s, x in r["cost"].items():
        if "ratio" in x:
            echo(
                f"  {s:<12} predict {x['predict_365d_s'] * 1000:.0f} ms, explain {x['explain_365d_s'] * 1000:.0f} ms "
                f"({x['ratio']:.1f}x) for {x['rows']} accounts; fit {x['mean_fit_s']:.1f}s"
            )
        else:
            echo(f"  {s:<12} predict {x['predict_s'] * 1000:.0f} ms for {x['rows']} accounts")


def summary_table(folder: Path) -> pd.DataFrame:
    """One row per (base, model) from the JSON files of a study: the figures that pick the model."""
    rows = []
    for f in sorted(folder.glob("*.json")):
        r = json.loads(f.read_text())
        ev = r.get("full_coverage", r)  # every model on the same rows (per_horizon lacks the 12-month end)
        for m, per in ev["per_horizon"].items():
            x = {"base": r["base"], "terms": r.get("terms", ""), "accounts": r.get("accounts"), "model": m}
            for h in ("90", "365"):
                x[f"pr_auc_{h}d"] = per[h]["pr_auc"]
                x[f"roc_auc_{h}d"] = per[h]["roc_auc"]
                x[f"brier_{h}d"] = per[h]["brier"]
            x["n_365d"] = per["365"]["n"]
            d = ev["pr_auc_90d_vs_today"].get(m)
            x["pr_auc_90d_minus_today"] = d["difference"] if d else 0.0
            x["se"] = d["bootstrap_se"] if d else 0.0
            key = "today_90d" if m == "today_90d" else f"{m}_365d"
            w = ev["early_warning"].get(key, {})
            x["ew_roc_auc"], x["ew_lift"] = w.get("roc_auc"), w.get("top_decile_lift")
            lt = r["lead_time"].get(key, {})
            x["lead_median_d"], x["flagged"] = lt.get("median_lead_days"), lt.get("share_flagged")
            x["lead_flagged_median_d"], x["flagged_90d_ahead"] = (
                lt.get("median_lead_days_flagged"),
                lt.get("share_flagged_90d_ahead"),
            )
            rows.append(x)
    t = pd.DataFrame(rows)
    today = t[t["model"] == "today_90d"].set_index("base")["pr_auc_365d"]
    t["pr_auc_365d_vs_today"] = t["pr_auc_365d"] / t["base"].map(today)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--summary", type=Path, help="print the cross-base table of a finished study's folder and stop")
    ap.add_argument(
        "--base",
        action="append",
        help="NAME:ACCOUNTS:SEED:YEARS:TERMS (generated) or NAME:/path (a folder); repeatable",
    )
    ap.add_argument("--folds", type=int, default=8, help="backtest folds (3 test cutoffs each; default 8)")
    ap.add_argument(
        "--candidates",
        default="hazard,stacked,per_horizon",
        help="comma list of stacked, per_horizon and the hazard variants (HAZARD_VARIANTS)",
    )
    ap.add_argument("--lookback", type=int, default=365, help="lead-time lookback in days (default 365)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/churnml_study_bases"))
    ap.add_argument("--out", type=Path, default=Path("outputs/study_survival"))
    args = ap.parse_args()
    if args.summary:
        t = summary_table(args.summary)
        with pd.option_context("display.width", 250, "display.max_columns", 40):
            print(t.round(3).to_string(index=False))
        t.to_csv(args.summary / "summary.csv", index=False)
        return
    if not args.base:
        ap.error("give at least one --base (or --summary FOLDER)")
    args.out.mkdir(parents=True, exist_ok=True)
    cands = [c.strip() for c in args.candidates.split(",") if c.strip()]
    for spec in args.base:
        name, ds, info = load_base(spec, args.cache)
        r = study_base(
            name,
            ds,
            info,
            n_folds=args.folds,
            seed=args.seed,
            threads=args.threads,
            candidates=cands,
            lookback=args.lookback,
        )
        r.pop("_predictions").reset_index().to_parquet(args.out / f"{name}_predictions.parquet")
        (args.out / f"{name}.json").write_text(json.dumps(r, indent=1, default=float))
        print_result(json.loads(json.dumps(r, default=float)))


if __name__ == "__main__":
    main()
