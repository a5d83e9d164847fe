"""TabulatedTreeShap against LightGBM's own raw scores and TreeSHAP (``pred_contrib``).

Every comparison is absolute, on log-odds, to 1e-9. Boosters are trained here on small
random data built to reach each LightGBM rule: missing types None / Zero / NaN, categorical
codes that are NaN, unseen, negative or fractional, single-leaf trees, ``num_iteration``,
trees beyond ``max_nodes`` (LightGBM fallback) and a churnml-like model. Test rows mix
ordinary values with the ones where rules bite: exact thresholds and their neighbours,
0, -0, values within 1e-35 of 0, +-inf and NaN.
"""

from __future__ import annotations

import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churnml.errors import ChurnmlError
from churnml.modeling.treeshap import ZERO_THRESHOLD, TabulatedTreeShap

ATOL = 1e-9
SPECIAL = np.array(
    [
        np.nan,
        0.0,
        -0.0,
        1e-36,
        -1e-36,
        ZERO_THRESHOLD,
        -ZERO_THRESHOLD,
        np.nextafter(ZERO_THRESHOLD, 1.0),
        -np.nextafter(ZERO_THRESHOLD, 1.0),
        2e-35,
        np.inf,
        -np.inf,
    ]
)


def _params(**kw):
    p = {
        "objective": "binary",
        "verbose": -1,
        "num_threads": 1,
        "seed": 3,
        "deterministic": True,
        "min_data_in_leaf": 5,
        "learning_rate": 0.2,
    }
    p.update(kw)
    return p


def _train(X, y, rounds=30, categorical=(), **kw):
    ds = lgb.Dataset(X, y, categorical_feature=list(categorical) or "auto", free_raw_data=False)
    return lgb.train(_params(**kw), ds, num_boost_round=rounds)


def _numeric_thresholds(booster) -> dict[int, np.ndarray]:
    """Each feature's numerical thresholds (exact doubles from the model text)."""
    out: dict[int, list[float]] = {}
    for block in booster.model_to_string().split("Tree=")[1:]:
        kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if not kv.get("split_feature"):
            continue
        for f, t, d in zip(kv["split_feature"].split(), kv["threshold"].split(), kv["decision_type"].split()):
            if not int(d) & 1:
                out.setdefault(int(f), []).append(float(t))
    return {f: np.array(v) for f, v in out.items()}


def _missing_types(booster) -> set[str]:
    return {n.get("missing_type") for n in _nodes(booster.dump_model()["tree_info"]) if "split_index" in n}


def _nodes(tree_info):
    stack = [t["tree_structure"] for t in tree_info]
    while stack:
        n = stack.pop()
        yield n
        stack += [n[c] for c in ("left_child", "right_child") if c in n]


def _nasty(X, booster, rng, share=0.3):
    """X with a share of cells replaced by special values, exact thresholds and their neighbours."""
    X = X.copy()
    n = len(X)
    thr = _numeric_thresholds(booster)
    for f in range(X.shape[1]):
        pool = SPECIAL
        if f in thr:
            t = thr[f]
            pool = np.concatenate([SPECIAL, t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)])
        hit = rng.random(n) < share
        X[hit, f] = rng.choice(pool, hit.sum())
    return X


def _check(booster, X, num_iteration=None, **kw):
    """TabulatedTreeShap equals LightGBM (raw and contributions, each path); returns the explainer."""
    ts = TabulatedTreeShap.from_booster(booster, num_iteration=num_iteration, **kw)
    raw_lgb = booster.predict(X, raw_score=True, num_iteration=num_iteration)
    phi_lgb = booster.predict(X, pred_contrib=True, num_iteration=num_iteration)
    raw, phi = ts.raw_and_contributions(X)
    assert phi.shape == phi_lgb.shape == (len(X), X.shape[1] + 1)
    np.testing.assert_allclose(raw, raw_lgb, rtol=0, atol=ATOL)
    np.testing.assert_allclose(phi, phi_lgb, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ts.predict_raw(X), raw_lgb, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ts.contributions(X), phi_lgb, rtol=0, atol=ATOL)
    return ts


# --- golden: a hand-written model -----------------------------------------------------------
GOLDEN_MODEL = """tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=binary sigmoid:1
feature_names=usage plan
feature_infos=[0:10] 0:1:2:3

Tree=0
num_leaves=2
num_cat=0
split_feature=0
split_gain=1
threshold=2.5
decision_type=6
left_child=-1
right_child=-2
leaf_value=0.5 -0.25
leaf_weight=1 1
leaf_count=30 10
internal_value=0
internal_weight=2
internal_count=40
is_linear=0
shrinkage=1


Tree=1
num_leaves=2
num_cat=1
split_feature=1
split_gain=1
threshold=0
decision_type=1
left_child=-1
right_child=-2
leaf_value=0.2 -0.3
leaf_weight=1 1
leaf_count=25 75
internal_value=0
internal_weight=2
internal_count=100
cat_boundaries=0 1
cat_threshold=9
is_linear=0
shrinkage=1


end of trees

pandas_categorical:null
"""


def test_golden_two_stumps():
    # tree 0: usage <= 2.5 (missing_type Zero, default left): 0.5 on 30 rows, -0.25 on 10
    #   -> expected 0.3125; usage's value is +0.1875 on the left, -0.5625 on the right
    # tree 1: plan in {0, 3}: 0.2 on 25 rows, -0.3 on 75 -> expected -0.175; +0.375 / -0.125
    booster = lgb.Booster(model_str=GOLDEN_MODEL)
    L0, R0, L1, R1 = 0.1875, -0.5625, 0.375, -0.125
    rows = [  # usage, plan -> usage goes left?, plan goes left?
        (1.0, 0.0, L0, L1),
        (3.0, 3.0, R0, L1),
        (2.5, 3.7, L0, L1),  # threshold itself goes left; 3.7 is category 3
        (0.0, -0.5, L0, L1),  # 0 is missing (Zero) -> default left; -0.5 truncates to category 0
        (np.nan, np.nan, L0, R1),  # NaN is read as 0 -> missing -> left; NaN category goes right
        (1e-36, -1.0, L0, R1),  # |x| <= 1e-35 is 0; negative category goes right
        (np.inf, 1.0, R0, R1),  # category 1 is not in the set
        (-np.inf, 40.0, L0, R1),  # code beyond the bitset (never seen) goes right
        (2.6, 1e10, R0, R1),
    ]
    X = np.array([r[:2] for r in rows])
    expected = np.array([[r[2], r[3], 0.3125 - 0.175] for r in rows])
    ts = TabulatedTreeShap.from_booster(booster)
    np.testing.assert_allclose(ts.contributions(X), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ts.predict_raw(X), expected.sum(axis=1), rtol=0, atol=1e-15)
    np.testing.assert_allclose(booster.predict(X, pred_contrib=True), expected, rtol=0, atol=1e-15)
    assert ts.expected_value == pytest.approx(0.1375, abs=1e-15)


# --- numerical splits and missing values ------------------------------------------------------
@pytest.mark.parametrize(
    "settings, kinds",
    [
        ({}, {"None", "NaN"}),  # NaN in training -> NaN type; the others None
        ({"zero_as_missing": True}, {"Zero"}),
        ({"use_missing": False}, {"None"}),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_numerical_splits_and_each_missing_type(settings, kinds, seed):
    rng = np.random.default_rng(seed)
    n = 1500
    X = rng.normal(size=(n, 6))
    X[rng.random(n) < 0.3, 0] = np.nan  # NaN-heavy
    X[rng.random(n) < 0.4, 1] = 0.0  # zero-heavy
    X[:, 2] = np.round(X[:, 2], 1)  # ties at thresholds
    X[rng.random(n) < 0.5, 3] = np.nan
    y = (
        np.nan_to_num(X[:, 0], nan=1.5) + (X[:, 1] == 0) - X[:, 2] + np.isnan(X[:, 3]) + rng.normal(size=n) > 0.5
    ).astype(int)
    booster = _train(X, y, rounds=40, num_leaves=7, max_depth=3, **settings)
    assert kinds <= _missing_types(booster)
    _check(booster, _nasty(X[:800], booster, rng))


# --- categorical splits -------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_categorical_codes_nan_unseen_negative_fractional(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    X = rng.normal(size=(n, 4))
    X[:, 0] = rng.integers(0, 6, n)  # few levels
    X[:, 1] = rng.integers(0, 45, n)  # more than 32 levels: a bitset of 2 words
    X[rng.random(n) < 0.2, 1] = np.nan
    effect = rng.normal(size=45)
    y = (
        (X[:, 0] % 2 == 0) + effect[np.nan_to_num(X[:, 1], nan=0).astype(int)] + 0.5 * X[:, 2] + rng.normal(size=n)
        > 0.5
    ).astype(int)
    booster = _train(
        X,
        y,
        rounds=40,
        categorical=[0, 1],
        num_leaves=7,
        max_depth=3,
        min_data_per_group=10,
        cat_smooth=1.0,
        max_cat_to_onehot=4,
        cat_l2=1.0,
    )
    bounds = [
        np.diff([int(v) for v in m.split()])
        for m in re.findall(r"(?m)^cat_boundaries=(.*)$", booster.model_to_string())
    ]
    assert bounds and max(b.max() for b in bounds) == 2  # some category sets span two 32-bit words
    Xt = X[:1000].copy()
    weird = np.array(
        [
            np.nan,
            -1.0,
            -0.5,
            -0.0,
            0.5,
            2.99,
            5.5,
            6.0,
            31.0,
            32.0,
            44.0,
            45.0,
            63.0,
            64.0,
            1000.0,
            2.0**31,
            -(2.0**31),
            1e300,
            np.inf,
            -np.inf,
            1e-36,
        ]
    )
    for f in (0, 1):
        hit = rng.random(len(Xt)) < 0.4
        Xt[hit, f] = rng.choice(weird, hit.sum())
    _check(booster, Xt)


# --- tree shapes ------------------------------------------------------------------------------
def test_single_leaf_trees_among_split_trees():
    rng = np.random.default_rng(5)
    n = 400
    X = rng.normal(size=(n, 3))
    X[rng.random(n) < 0.2, 1] = np.nan
    y = (X[:, 0] > 0).astype(int)
    # LightGBM keeps a single-leaf tree only as the first one; training on from it adds split trees
    ds = lgb.Dataset(X, y, free_raw_data=False)
    first = lgb.train(_params(min_data_in_leaf=300), ds, num_boost_round=1)
    booster = lgb.train(_params(num_leaves=5), ds, num_boost_round=10, init_model=first)
    leaves = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
    assert leaves[0] == 1 and min(leaves[1:]) > 1 and len(leaves) == 11
    ts = _check(booster, _nasty(X, booster, rng))
    assert ts.n_tabulated_trees == 10


def test_only_single_leaf_trees():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(50, 3))
    y = rng.integers(0, 2, 50)
    booster = _train(X, y, rounds=3, min_data_in_leaf=40)
    assert {t["num_leaves"] for t in booster.dump_model()["tree_info"]} == {1}
    ts = _check(booster, X)
    assert ts.n_tabulated_trees == 0


@pytest.mark.parametrize("num_iteration", [1, 7, 25, 0, -1, None, 999])
def test_num_iteration_uses_the_first_trees(num_iteration):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(1200, 5))
    X[rng.random(1200) < 0.2, 1] = np.nan
    y = (X[:, 0] - np.nan_to_num(X[:, 1]) + rng.normal(size=1200) > 0).astype(int)
    booster = _train(X, y, rounds=30, num_leaves=7, max_depth=3)
    ts = _check(booster, X[:500], num_iteration=num_iteration)
    want = 30 if num_iteration is None or num_iteration <= 0 or num_iteration > 30 else num_iteration
    assert ts.num_iteration == want


def test_best_iteration_is_the_default_as_in_lightgbm():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(1500, 4))
    y = (X[:, 0] + rng.normal(size=1500) * 2 > 0).astype(int)
    dtrain = lgb.Dataset(X[:1000], y[:1000])
    dvalid = lgb.Dataset(X[1000:], y[1000:], reference=dtrain)
    booster = lgb.train(
        _params(num_leaves=7, learning_rate=0.3),
        dtrain,
        num_boost_round=200,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(5, verbose=False)],
        keep_training_booster=True,
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    ts = _check(booster, X[1000:])
    assert ts.num_iteration == booster.best_iteration


def _depths(booster) -> list[int]:
    """Depth of each tree (its deepest leaf)."""

    def depth(n):
        return 0 if "leaf_value" in n else 1 + max(depth(n["left_child"]), depth(n["right_child"]))

    return [depth(t["tree_structure"]) for t in booster.dump_model()["tree_info"]]


@pytest.mark.parametrize("max_nodes", [1, 3, 4, 6, 10, 12])  # 10, 12: patterns of more than 8 bits
def test_big_trees_split_into_leaf_groups_and_deep_ones_fall_back(max_nodes):
    rng = np.random.default_rng(10)
    X = rng.normal(size=(2000, 8))
    X[rng.random(2000) < 0.3, 2] = np.nan
    X[:, 7] = rng.integers(0, 5, 2000)
    y = (X[:, 0] * X[:, 1] + np.nan_to_num(X[:, 2]) + (X[:, 7] == 2) + rng.normal(size=2000) > 0).astype(int)
    # num_leaves=15 with a high min_gain_to_split: trees of 2 to 15 leaves, depth 1 to 6
    booster = _train(X, y, rounds=40, categorical=[7], num_leaves=15, min_data_in_leaf=10, min_gain_to_split=5.0)
    nodes = [t["num_leaves"] - 1 for t in booster.dump_model()["tree_info"]]
    depths = _depths(booster)
    ts = _check(booster, _nasty(X[:600], booster, rng), max_nodes=max_nodes)
    assert ts.n_fallback_trees == sum(d > max_nodes for d in depths)
    assert ts.n_tabulated_trees == sum(d <= max_nodes for d in depths) > 0
    # trees with more nodes than max_nodes but not too deep are tabulated in several leaf groups
    split = sum(d <= max_nodes < k for d, k in zip(depths, nodes))
    assert (ts.n_tables > ts.n_tabulated_trees) == (split > 0)
    if max_nodes == 4:  # both at once
        assert ts.n_fallback_trees > 0 and split > 0
    if max_nodes == 12:
        assert max(nodes) > 8 and ts.n_fallback_trees == 0


def test_all_trees_deeper_than_max_nodes():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(800, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    booster = _train(X, y, rounds=10, num_leaves=31, min_data_in_leaf=5)
    assert min(_depths(booster)) > 4
    ts = _check(booster, X[:200], max_nodes=4)
    assert ts.n_tabulated_trees == 0 and ts.n_fallback_trees == 10


# --- a churnml-like model -----------------------------------------------------------------------
def _churnml_like(rng, n=4000, n_num=56, rounds=250):
    X = rng.normal(size=(n, n_num + 4))
    for j in range(12):  # NaN-heavy usage ratios (young accounts)
        X[rng.random(n) < rng.uniform(0.3, 0.9), j] = np.nan
    for j in range(12, 20):  # counts with many zeros
        X[:, j] = rng.poisson(0.7, n)
    cats = list(range(n_num, n_num + 4))
    for j, levels in zip(cats, (3, 5, 8, 12)):
        X[:, j] = rng.integers(0, levels, n)
    X[rng.random(n) < 0.1, cats[3]] = np.nan
    z = (
        np.nan_to_num(X[:, 0], nan=-1)
        - 0.5 * X[:, 12]
        + 0.8 * np.isnan(X[:, 3])
        + 0.3 * X[:, 30]
        + (X[:, cats[1]] == 2)
        - 0.4 * (X[:, cats[2]] > 4)
        + rng.normal(size=n)
    )
    y = (z > 0.8).astype(int)
    booster = _train(
        X,
        y,
        rounds=rounds,
        categorical=cats,
        num_leaves=7,
        max_depth=3,
        learning_rate=0.05,
        min_data_in_leaf=50,
        feature_fraction=0.8,
        bagging_fraction=0.8,
        bagging_freq=1,
        lambda_l2=1.0,
        min_data_per_group=50,
        cat_smooth=20.0,
    )
    return booster, X


def test_churnml_like_model_matches_lightgbm():
    rng = np.random.default_rng(12)
    booster, X = _churnml_like(rng)
    assert booster.num_trees() == 250
    Xt = _nasty(X[:2000], booster, rng, share=0.05)
    ts = _check(booster, Xt)
    assert ts.n_tabulated_trees == 250 and ts.n_fallback_trees == 0
    # a DataFrame in the booster's feature order gives the same numbers
    frame = pd.DataFrame(Xt, columns=booster.feature_name())
    np.testing.assert_array_equal(ts.contributions(frame), ts.contributions(Xt))


def test_threads_and_chunks_do_not_change_the_numbers():
    rng = np.random.default_rng(13)
    booster, X = _churnml_like(rng, n=1500, n_num=32, rounds=40)
    Xt = _nasty(X[:1001], booster, rng, share=0.1)
    one = TabulatedTreeShap.from_booster(booster, n_threads=1)
    ref_raw, ref_phi = one.raw_and_contributions(Xt)
    for threads, chunk in [(2, 1024), (2, 13), (1, 1), (3, 256)]:
        ts = TabulatedTreeShap.from_booster(booster, n_threads=threads, chunk_rows=chunk)
        raw, phi = ts.raw_and_contributions(Xt)
        np.testing.assert_array_equal(raw, ref_raw)
        np.testing.assert_array_equal(phi, ref_phi)
    np.testing.assert_allclose(ref_phi, booster.predict(Xt, pred_contrib=True), rtol=0, atol=ATOL)
    assert one.contributions(Xt[:0]).shape == (0, Xt.shape[1] + 1)
    assert one.predict_raw(Xt[:0]).shape == (0,)


# --- the cover weights are data counts ------------------------------------------------------------
def _without_tree_sizes(text: str) -> str:
    """Model text that LightGBM reads tree by tree (``tree_sizes`` would no longer match the edits)."""
    return re.sub(r"(?m)^tree_sizes=.*\n", "", text)


def _with_leaf_counts(text: str, rng) -> str:
    """The model text with new random leaf counts (internal counts recomputed to match)."""

    def retree(block):
        kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if int(kv["num_leaves"]) < 2:
            return block
        left = [int(v) for v in kv["left_child"].split()]
        right = [int(v) for v in kv["right_child"].split()]
        leaf = rng.integers(1, 500, int(kv["num_leaves"]))

        def count(node):
            return int(leaf[~node]) if node < 0 else count(left[node]) + count(right[node])

        internal = [count(j) for j in range(len(left))]
        block = re.sub(r"(?m)^leaf_count=.*$", "leaf_count=" + " ".join(map(str, leaf)), block)
        return re.sub(r"(?m)^internal_count=.*$", "internal_count=" + " ".join(map(str, internal)), block)

    text = _without_tree_sizes(text)
    head, *blocks = re.split(r"(?m)^(?=Tree=\d+$)", text)
    last = blocks[-1].split("end of trees")
    blocks[-1] = last[0]
    return head + "".join(retree(b) for b in blocks) + "end of trees" + last[1]


def test_cover_weights_are_the_nodes_data_counts():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(1000, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    booster = _train(X, y, rounds=15, num_leaves=7, max_depth=3)
    text = booster.model_to_string()
    recounted = lgb.Booster(model_str=_with_leaf_counts(text, rng))
    # hessian sums (leaf_weight, internal_weight) set to 1 everywhere
    reweighted = lgb.Booster(
        model_str=re.sub(
            r"(?m)^(leaf|internal)_weight=(.*)$",
            lambda m: m.group(1) + "_weight=" + " ".join("1" for _ in m.group(2).split()),
            _without_tree_sizes(text),
        )
    )
    Xt = X[:300]
    base = booster.predict(Xt, pred_contrib=True)
    assert np.abs(recounted.predict(Xt, pred_contrib=True) - base).max() > 1e-3  # counts matter
    np.testing.assert_array_equal(reweighted.predict(Xt, pred_contrib=True), base)  # weights do not
    _check(recounted, Xt)
    _check(reweighted, Xt)


# --- what it refuses --------------------------------------------------------------------------------
def test_regression_objective_works_too():
    rng = np.random.default_rng(15)
    X = rng.normal(size=(600, 4))
    X[rng.random(600) < 0.2, 0] = np.nan
    y = np.nan_to_num(X[:, 0]) * 2 + X[:, 1] + rng.normal(size=600)
    booster = _train(X, y, rounds=20, objective="regression", num_leaves=7)
    _check(booster, _nasty(X, booster, rng))


def test_refuses_what_it_cannot_explain():
    rng = np.random.default_rng(16)
    X = rng.normal(size=(300, 3))
    multi = _train(X, rng.integers(0, 3, 300), rounds=2, objective="multiclass", num_class=3)
    with pytest.raises(ChurnmlError, match="single-output"):
        TabulatedTreeShap.from_booster(multi)
    linear = _train(X, (X[:, 0] > 0).astype(int), rounds=2, linear_tree=True)
    with pytest.raises(ChurnmlError, match="linear trees"):
        TabulatedTreeShap.from_booster(linear)
    with pytest.raises(ChurnmlError, match=r"lightgbm\.Booster"):
        TabulatedTreeShap.from_booster("model.txt")


def test_refuses_input_not_in_the_booster_order():
    rng = np.random.default_rng(17)
    X = rng.normal(size=(300, 3))
    booster = lgb.train(
        _params(), lgb.Dataset(pd.DataFrame(X, columns=["a", "b", "c"]), (X[:, 0] > 0).astype(int)), num_boost_round=3
    )
    ts = TabulatedTreeShap.from_booster(booster)
    assert ts.feature_names == ["a", "b", "c"]
    with pytest.raises(ChurnmlError, match="not the booster's features in order"):
        ts.contributions(pd.DataFrame(X, columns=["b", "a", "c"]))
    with pytest.raises(ChurnmlError, match="not numeric"):
        ts.contributions(pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": pd.Categorical(["x"] * 300)}))
    with pytest.raises(ChurnmlError, match="3 feature columns"):
        ts.predict_raw(X[:, :2])
