"""Exact TreeSHAP for LightGBM trees, tabulated once per tree (or per group of its leaves).

What it computes
----------------
:class:`TabulatedTreeShap` gives, for a single-output LightGBM booster (binary, or any
objective with one tree per iteration), the same numbers as

* ``booster.predict(X, raw_score=True, num_iteration=n)``   -> :meth:`~TabulatedTreeShap.predict_raw`
* ``booster.predict(X, pred_contrib=True, num_iteration=n)`` -> :meth:`~TabulatedTreeShap.contributions`
  (``n_features`` log-odds contributions, then the expected value in the last column),

to floating-point rounding (about 1e-14 in practice; the tests demand 1e-9), at about the cost
of LightGBM's plain prediction for compact trees instead of 12 to 100 times it.

The idea
--------
LightGBM's ``pred_contrib`` is path-dependent TreeSHAP (Lundberg et al. 2018, algorithm 2):
for a tree ``f`` and a row ``x`` it returns the exact Shapley values of the set function
``v(S) = E[f(x) | x_S]``, where ``E[f(x) | x_S]`` walks the tree from the root, follows ``x``
at a node whose split feature is in ``S`` and, at any other node, takes both children weighted
by their share of the node's training rows (``leaf_count`` / ``internal_count`` in the model;
the hessian sums ``*_weight`` play no part). ``x`` enters ``v`` only through the outcomes of
the tree's ``k`` split decisions ("does ``x`` go left at node ``j``?"). A tree with ``k``
internal nodes therefore sorts every row into one of at most ``2**k`` *patterns* of decision
outcomes, and rows with the same pattern have the same Shapley values and the same leaf. So,
once per model, :meth:`TabulatedTreeShap.from_booster` computes for each tree a table
``pattern -> (Shapley value of each feature used in the tree, leaf value)``. Explaining a row
is then: evaluate the ``k`` decisions, pack them into the pattern index, look the pattern up
and add the tree's entries into the row's feature columns. The raw prediction comes from the
same lookup. The last column is the sum over trees of LightGBM's ``ExpectedValue``
(``sum(leaf_count / root_count * leaf_value)``), a constant.

Bigger trees: a leaf's Shapley values depend only on the decisions *along its path*. So a tree
with more than ``max_nodes`` internal nodes (default 8) is cut, from the root down, into
groups of leaves: the leaves under a node ``u`` form one group when ``u``'s subtree plus the
path above ``u`` hold at most ``max_nodes`` nodes (otherwise ``u``'s children are cut the same
way). Each group gets its own table over those nodes (its leaf value is 0 for patterns that do
not reach it), and the tree's values are the sum over its groups. A depth-6 tree of 31 leaves
becomes about 7 tables of at most 8 bits; a 7-leaf depth-3 tree is one table of 6 bits.

Exactness argument
------------------
* Decisions are LightGBM's own (``Tree::NumericalDecision`` / ``CategoricalDecision`` and the
  dense-row parsing of its C API), re-implemented on whole columns and checked against it:
  - every input value with ``|x| <= 1e-35f`` (``kZeroThreshold``) is read as exactly ``0.0``;
  - numerical split (``x <= threshold``; thresholds may be ``+-inf``), by ``missing_type``:
    *None*: NaN is read as 0 and compared; *Zero*: NaN and 0 take the ``default_left`` side;
    *NaN*: NaN takes the ``default_left`` side and 0 is compared like any number. ``+-inf``
    inputs are compared as they are.
  - categorical split (``==`` with a category bitset): the value is truncated toward zero to an
    int; NaN, values that truncate below 0 (``x <= -1``), ``+-inf`` and codes at or beyond the
    bitset (including codes never seen in training) go right; ``-1 < x < 0`` is category 0.
* For one tree the set function is a sum over leaves of *product games*: for leaf ``l`` with
  value ``w_l`` and distinct path features ``g``, ``v_l(S) = w_l * prod_{g in S} a_g *
  prod_{g not in S} b_g`` where ``a_g`` in {0, 1} says whether ``x`` agrees with every node on
  the path that splits on ``g`` (a feature may appear at several nodes), and ``b_g`` is the
  product of the cover fractions of those nodes. TreeSHAP's EXTEND/UNWIND recursion computes
  exactly the Shapley values of these games (it unwinds and re-extends a repeated feature with
  multiplied fractions, which is this product). The tables compute the same Shapley values by
  their definition: for each leaf and each set ``A`` of its path features that ``x`` agrees
  with, ``phi_g = w_l (a_g - b_g) sum_{S subset of A minus g} |S|!(m-|S|-1)!/m!
  prod_{h not in S, h != g} b_h`` (a subset sum over at most ``2**depth`` sets), then add the
  leaves' values for every pattern of their group. Same quantity, other order of floating-point
  operations: the results agree to rounding.
* ``num_iteration`` follows ``Booster.predict``: ``None`` means the best iteration when the
  booster has one, otherwise all; ``<= 0`` (or more than there are) means all. Single-leaf
  trees add their value to the raw score and the expected value, and nothing to any feature.

Limits and fallback
-------------------
* A tree with a leaf deeper than ``max_nodes`` cannot be cut into groups. Those trees, and only
  those, are explained by LightGBM's own ``pred_contrib`` on a booster made of just those trees
  (built from the model text); their raw score is the sum of that call's columns. The other
  trees keep their speed and the sum stays exact; ``n_fallback_trees`` says how many fell
  back (none for churnml's models, whose depth is at most 6).
* Multiclass models, random-forest averaging (``average_output``) and linear trees raise
  :class:`~churnml.errors.ChurnmlError`.
* Input: a 2-D float array or a DataFrame in the booster's feature order (a DataFrame's columns
  must be the booster's feature names, numeric dtypes only: categoricals are integer codes
  stored as floats, NaN = missing; pandas ``category`` columns are refused).
* A node with a zero data count (possible only in a hand-edited model) makes LightGBM divide by
  zero; the tables then hold whatever IEEE arithmetic gives and may differ from it.

Cost model
----------
Building: per leaf, a subset sum over the ``2**m`` sets of its ``m <= depth`` path features;
per table, ``2**k`` patterns times its leaves. Memory: ``sum over tables of 2**k * (m + 1)``
doubles (1 MB for 300 trees of 7 leaves, 7 MB of 15 leaves, 16 MB of 31 leaves at depth 6).
Measured (2 cores shared with other jobs): 300 trees of 7 leaves build in 0.1-0.2 s, of 31
leaves in 0.7-1.4 s.

Explaining ``n`` rows with ``T`` tables of ``k`` pattern bits and ``m`` features: ``n*T*k``
byte comparisons (one numpy call per feature column variant and row chunk; a node shared by
several groups is compared once), packing the bits into ``n*T`` pattern indices (eight at a
time through a 64-bit view), ``n*T*(m+1)`` table lookups and a sparse sum of those into the
feature columns. LightGBM's plain prediction visits ``n*trees*depth`` nodes and its TreeSHAP
costs ``n*trees*leaves*depth**2``. Measured on 20,000 churnml-like rows and 300 trees, as
multiples of LightGBM's plain ``predict`` (best of 5, 1 or 2 threads on a shared 2-core
machine): contributions 0.5-0.7x for 7 leaves (depth 3), 1.2-2.2x for 15 (depth 4), 2.9-3.7x
for 31 (depth 6), where LightGBM's TreeSHAP costs 12-15x, 33-43x and 80-103x; the raw score
alone 0.2x, 0.5x and 1.3x. The lookups grow with the number of groups, so much larger trees gain
less, and trees deeper than ``max_nodes`` fall back. ``benchmarks/bench_treeshap.py`` measures
the ratios. Rows are processed in chunks (bounded memory) by up to ``n_threads`` threads (numpy
and scipy release the GIL in the heavy calls).
"""

from __future__ import annotations

import functools
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from churnml.errors import ChurnmlError

#: LightGBM's ``kZeroThreshold`` (``1e-35f``, a float widened to double)
ZERO_THRESHOLD = float(np.float32(1e-35))

# How a numerical node's column is prepared before ``x <= threshold`` (one "variant" of a
# feature column per kind used): NaN read as 0 (missing_type None); NaN, or NaN and zero,
# replaced by -inf (``-inf <= t`` for every t: goes left) or by NaN (``NaN <= t`` is false:
# goes right). Thresholds can be infinite (a split of NaN from everything else has t = inf),
# so +inf would not do for "right".
_NAN_TO_ZERO, _NAN_LEFT, _NAN_RIGHT, _ZERO_LEFT, _ZERO_RIGHT = range(5)
_FILL = {_NAN_TO_ZERO: 0.0, _NAN_LEFT: -np.inf, _NAN_RIGHT: np.nan, _ZERO_LEFT: -np.inf, _ZERO_RIGHT: np.nan}

_CATEGORICAL_MASK, _DEFAULT_LEFT_MASK = 1, 2
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2

# rows per chunk by default: the chunk's looked-up values (rows x (trees x (features per tree + 1))
# doubles) stay near 16 MB per thread, between 64 and 4096 rows
_CHUNK_VALUES = 2**21
_SHIFTS = np.arange(8, dtype=np.uint64)


# --- the model text ------------------------------------------------------------------------
@dataclass
class _Tree:
    """One tree of a LightGBM model text (internal nodes 0..k-1, leaves as ``~index``)."""

    block: str
    leaf_value: np.ndarray
    leaf_count: np.ndarray
    split_feature: np.ndarray
    threshold: np.ndarray
    decision_type: np.ndarray
    left_child: np.ndarray
    right_child: np.ndarray
    internal_count: np.ndarray
    cat_boundaries: np.ndarray
    cat_threshold: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.split_feature)

    def count(self, node: int) -> int:
        """LightGBM's ``data_count``: training rows that reached a node (``~leaf`` for a leaf)."""
        return int(self.internal_count[node]) if node >= 0 else int(self.leaf_count[~node])

    def categories(self, node: int) -> np.ndarray:
        """The category bitset of a categorical node as booleans (index = category code)."""
        i = int(self.threshold[node])
        words = self.cat_threshold[self.cat_boundaries[i] : self.cat_boundaries[i + 1]].astype("<u4")
        return np.unpackbits(words.view(np.uint8), bitorder="little").astype(bool)


def _parse_tree(block: str) -> _Tree:
    kv = {}
    for line in block.splitlines()[1:]:
        key, eq, val = line.partition("=")
        if eq:
            kv[key] = val
    if kv.get("is_linear", "0") != "0":
        raise ChurnmlError(
            "the booster has linear trees (linear_tree=True): TabulatedTreeShap explains "
            "only constant-leaf trees; use booster.predict(X, pred_contrib=True)"
        )

    def ints(key):
        return np.array([int(t) for t in kv.get(key, "").split()], dtype=np.int64)

    def floats(key):
        return np.array([float(t) for t in kv.get(key, "").split()], dtype=np.float64)

    tree = _Tree(
        block=block,
        leaf_value=floats("leaf_value"),
        leaf_count=ints("leaf_count"),
        split_feature=ints("split_feature"),
        threshold=floats("threshold"),
        decision_type=ints("decision_type"),
        left_child=ints("left_child"),
        right_child=ints("right_child"),
        internal_count=ints("internal_count"),
        cat_boundaries=ints("cat_boundaries"),
        cat_threshold=ints("cat_threshold"),
    )
    if len(tree.leaf_value) != tree.n_nodes + 1:
        raise ChurnmlError("cannot read a tree of the LightGBM model text (leaf and node counts disagree)")
    return tree


def _parse_model(text: str):
    """Header lines, trees and the text after the trees of a LightGBM model string."""
    end = text.find("end of trees")
    if end < 0:
        raise ChurnmlError("not a LightGBM model text (no 'end of trees'); pass a trained lightgbm.Booster")
    parts = re.split(r"(?m)^(?=Tree=\d+$)", text[:end])
    header, blocks = parts[0], parts[1:]
    lines = header.splitlines()
    kv = dict(line.split("=", 1) for line in lines if "=" in line)
    flags = {line.strip() for line in lines if line.strip() and "=" not in line}
    return lines, kv, flags, [_parse_tree(b) for b in blocks], text[end:]


def _sub_model_text(header_lines: list[str], trees: list[_Tree], tail: str) -> str:
    """A model text holding only ``trees`` (renumbered), for LightGBM's own predictions."""
    blocks = []
    for i, t in enumerate(trees):
        body = t.block.split("\n", 1)[1]
        blocks.append(f"Tree={i}\n{body}")
    sizes = " ".join(str(len(b.encode())) for b in blocks)
    head = [f"tree_sizes={sizes}" if line.startswith("tree_sizes=") else line for line in header_lines]
    return "\n".join(head) + "\n" + "".join(blocks) + tail


# --- Shapley tables --------------------------------------------------------------------------
@functools.cache
def _subset_tools(m: int):
    """For ``m`` players: membership of each set (2**m, m) and its Shapley weight.

    ``weight[S] = |S|! (m-|S|-1)! / m!`` (0 for the full set, which no marginal uses).
    """
    s = np.arange(2**m)
    member = ((s[:, None] >> np.arange(m)) & 1).astype(bool)
    w = np.array([math.factorial(j) * math.factorial(m - j - 1) / math.factorial(m) for j in range(m)] + [0.0])
    return member, w[member.sum(axis=1)]


def _leaf_shapley(b: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Shapley values of product games, for many leaves with the same number of path features.

    ``b`` (L, m): per leaf, each path feature's product of cover fractions; ``value`` (L,).
    Returns (L, 2**m, m): ``out[l, A, g]`` is feature g's Shapley value in leaf l's game
    ``v(S) = value * [S subset of A] * prod_{h not in S} b_h``, i.e. for a row that agrees
    with the path exactly on the features of A:
    ``(value * ([g in A] - b_g)) * sum_{S subset of A, g not in S} weight[S] prod_{h not in S, h != g} b_h``.
    """
    L, m = b.shape
    member, weight = _subset_tools(m)
    factor = np.where(member[None, :, :], 1.0, b[:, None, :])  # (L, 2**m, m): h's factor given S
    ones = np.ones((L, 2**m, 1))
    before = np.cumprod(np.concatenate([ones, factor[:, :, :-1]], axis=2), axis=2)
    after = np.cumprod(np.concatenate([ones, factor[:, :, :0:-1]], axis=2), axis=2)[:, :, ::-1]
    z = weight[None, :, None] * before * after * ~member[None, :, :]  # prod over h != g; S must not hold g
    for i in range(m):  # subset sums (zeta transform): z[A] = sum over S subset of A of z[S]
        view = z.reshape(L, 2 ** (m - i - 1), 2, 2**i, m)
        view[:, :, 1] += view[:, :, 0]
    return value[:, None, None] * (member[None, :, :] - b[:, None, :]) * z


@dataclass
class _Group:
    """Leaves of one tree whose Shapley values and leaf value depend on ``nodes`` only.

    ``tree_id`` numbers the tree among the tabulated ones; ``nodes`` are the internal nodes
    whose decisions form the pattern (bit ``p`` is ``nodes[p]``); ``leaves`` holds
    ``(leaf, [(node, goes_left), ...])`` with the path from the root.
    """

    tree_id: int
    tree: _Tree
    nodes: list[int]
    leaves: list[tuple[int, list[tuple[int, bool]]]]


def _groups(tree_id: int, tree: _Tree, max_nodes: int) -> list[_Group] | None:
    """Split a tree's leaves into groups whose patterns have at most ``max_nodes`` bits.

    A leaf's Shapley values depend only on the decisions along its path, so the leaves under
    a node ``u`` depend only on the nodes above ``u`` and the nodes of ``u``'s subtree. From the
    root down, a subtree whose nodes plus the path above it fit in ``max_nodes`` becomes one
    group (the whole tree when it fits); otherwise its two children are split the same way.
    ``None`` when a leaf lies deeper than ``max_nodes`` (no group can hold its path).
    """
    order: list[int] = []
    stack = [0]
    while stack:  # parents before children
        node = stack.pop()
        order.append(node)
        if node >= 0:
            stack += [int(tree.left_child[node]), int(tree.right_child[node])]
    size: dict[int, int] = {}  # node -> nodes in its subtree
    for node in reversed(order):
        size[node] = 0 if node < 0 else 1 + size[int(tree.left_child[node])] + size[int(tree.right_child[node])]
    groups: list[_Group] = []
    todo: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]  # (node, path from the root)
    while todo:
        node, path = todo.pop()
        if len(path) + size[node] <= max_nodes:
            nodes = [n for n, _ in path]
            leaves: list[tuple[int, list[tuple[int, bool]]]] = []
            inner = [(node, path)]
            while inner:
                n, p = inner.pop()
                if n < 0:
                    leaves.append((~n, p))
                else:
                    nodes.append(n)
                    inner += [(int(tree.right_child[n]), p + [(n, False)]), (int(tree.left_child[n]), p + [(n, True)])]
            groups.append(_Group(tree_id, tree, nodes, leaves))
        elif node < 0:
            return None
        else:
            todo += [
                (int(tree.right_child[node]), path + [(node, False)]),
                (int(tree.left_child[node]), path + [(node, True)]),
            ]
    return groups


@dataclass
class _Table:
    """One group's table: the features it uses, ``phi[pattern, slot]`` and ``raw[pattern]``."""

    features: np.ndarray
    phi: np.ndarray
    raw: np.ndarray


def _expected_value(tree: _Tree) -> float:
    """LightGBM's ``Tree::ExpectedValue`` in its order of operations."""
    if tree.n_nodes == 0:
        return float(tree.leaf_value[0])
    total = float(tree.internal_count[0])
    e = 0.0
    for c, v in zip(tree.leaf_count, tree.leaf_value):
        e += (int(c) / total) * float(v)
    return e


def _tabulate(groups: list[_Group]) -> list[_Table]:
    """Exact Shapley tables (pattern -> per-feature values, leaf value) of leaf groups.

    Pattern bit p (value ``1 << p``) is 1 when the row goes left at node ``group.nodes[p]``.
    ``raw[pattern]`` is the value of the group's leaf the pattern reaches, 0 when it reaches
    none of the group's leaves; ``phi`` sums the Shapley values of the group's leaves.
    """
    # (group index, slots, agreement index per pattern, b, value)
    leaves: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, float]] = []
    tables: list[_Table] = []
    for gi, group in enumerate(groups):
        tree, k = group.tree, len(group.nodes)
        position = {n: p for p, n in enumerate(group.nodes)}
        pattern_bits = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(bool)
        features = np.unique(tree.split_feature[group.nodes])
        slot_of = {int(f): i for i, f in enumerate(features)}
        raw = np.zeros(2**k)
        for leaf, path in group.leaves:
            order: list[int] = []
            frac: dict[int, float] = {}
            agree: dict[int, np.ndarray] = {}
            for node, left in path:
                f = int(tree.split_feature[node])
                child = int(tree.left_child[node] if left else tree.right_child[node])
                fr = tree.count(child) / float(tree.count(node))
                match = pattern_bits[:, position[node]] == left
                if f in frac:
                    frac[f] = fr * frac[f]
                    agree[f] = agree[f] & match
                else:
                    order.append(f)
                    frac[f], agree[f] = fr, match
            a_index = np.zeros(2**k, dtype=np.intp)
            for i, f in enumerate(order):
                a_index |= agree[f].astype(np.intp) << i
            value = float(tree.leaf_value[leaf])
            raw[a_index == 2 ** len(order) - 1] = value
            leaves.append(
                (
                    gi,
                    np.array([slot_of[f] for f in order], dtype=np.intp),
                    a_index,
                    np.array([frac[f] for f in order]),
                    value,
                )
            )
        tables.append(_Table(features, np.zeros((2**k, len(features))), raw))
    by_m: dict[int, list] = {}
    for entry in leaves:
        by_m.setdefault(len(entry[1]), []).append(entry)
    for m, same_m in by_m.items():
        step = max(1, 2**22 // (2**m * max(m, 1)))  # bounds the working arrays to ~32 MB
        for lo in range(0, len(same_m), step):
            batch = same_m[lo : lo + step]
            phis = _leaf_shapley(
                np.array([lf[3] for lf in batch]).reshape(len(batch), m), np.array([lf[4] for lf in batch])
            )
            for (gi, slots, a_index, _, _), phi in zip(batch, phis):
                tables[gi].phi[:, slots] += phi[a_index]
    return tables


# --- the explainer ------------------------------------------------------------------------------
class TabulatedTreeShap:
    """LightGBM raw scores and exact TreeSHAP contributions from per-tree pattern tables.

    Build with :meth:`from_booster`; see the module docstring for the method, its exactness
    and its limits. Attributes: ``num_feature``, ``feature_names``, ``num_iteration`` (trees
    used), ``expected_value`` (the last column of :meth:`contributions`), ``n_tabulated_trees``,
    ``n_tables`` (one per tree, or per group of leaves of a tree with more than ``max_nodes``
    nodes), ``n_fallback_trees`` (trees explained by LightGBM itself), ``table_bytes``,
    ``n_threads``, ``chunk_rows``.

    Example::

        ts = TabulatedTreeShap.from_booster(booster, num_iteration=best_iteration)
        raw, phi = ts.raw_and_contributions(X)   # X: features in the booster's order
        # phi[:, :-1].sum(axis=1) + phi[:, -1] == raw (log-odds), as with pred_contrib
    """

    def __init__(
        self,
        *,
        feature_names,
        num_iteration,
        groups,
        tables,
        n_tabulated_trees,
        constant_raw,
        expected_value,
        fallback=None,
        n_fallback_trees=0,
        n_threads=None,
        chunk_rows=None,
    ):
        self.feature_names = list(feature_names)
        self.num_feature = len(self.feature_names)
        self.num_iteration = int(num_iteration)
        self.expected_value = float(expected_value)
        self.n_tabulated_trees = int(n_tabulated_trees)
        self.n_tables = len(tables)
        self.n_fallback_trees = int(n_fallback_trees)
        self.n_threads = int(n_threads or os.cpu_count() or 1)
        self.chunk_rows = chunk_rows
        self._fallback = fallback
        self._constant_raw = float(constant_raw)
        self._compile(tables, groups)

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_booster(
        cls,
        booster,
        num_iteration: int | None = None,
        max_nodes: int = 8,
        n_threads: int | None = None,
        chunk_rows: int | None = None,
    ) -> TabulatedTreeShap:
        """Tabulate the first ``num_iteration`` trees of ``booster`` (a ``lightgbm.Booster``).

        ``num_iteration`` as in ``Booster.predict``: ``None`` -> the best iteration if the
        booster has one, else all; ``<= 0`` (or more than it has) -> all. ``max_nodes`` (1..16):
        most pattern bits per table; a tree with more internal nodes is tabulated as groups of
        leaves, and a tree with a leaf deeper than that is explained by LightGBM's
        ``pred_contrib`` on a booster made of just those trees. ``n_threads``: threads (default: all
        cores, as LightGBM); ``chunk_rows``: rows per chunk, which bounds the working memory to
        about ``chunk_rows * trees * (features per tree + 1) * 8`` bytes per thread (default: the
        rows that keep this near 16 MB, between 64 and 4096).
        """
        import lightgbm as lgb

        if not isinstance(booster, lgb.Booster):
            raise ChurnmlError(f"TabulatedTreeShap needs a lightgbm.Booster, got {type(booster).__name__}")
        if not 1 <= max_nodes <= 16:
            raise ChurnmlError(f"max_nodes must be between 1 and 16 (a table has 2**max_nodes rows), got {max_nodes}")
        if chunk_rows is not None and chunk_rows < 1:
            raise ChurnmlError(f"chunk_rows must be at least 1, got {chunk_rows}")
        total = booster.current_iteration()
        if num_iteration is None:
            num_iteration = booster.best_iteration
        if num_iteration is None or num_iteration <= 0 or num_iteration > total:
            num_iteration = total
        header, kv, flags, trees, tail = _parse_model(booster.model_to_string(num_iteration=num_iteration))
        if int(kv.get("num_tree_per_iteration", "1")) != 1 or int(kv.get("num_class", "1")) != 1:
            raise ChurnmlError(
                f"TabulatedTreeShap explains single-output models (binary, regression); this booster "
                f"has {kv.get('num_class')} classes (objective {kv.get('objective')!r})"
            )
        if "average_output" in flags:
            raise ChurnmlError("TabulatedTreeShap does not explain random-forest boosters (average_output)")
        for t in trees:
            bad = {int(d) >> 2 & 3 for d in t.decision_type} - {_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN}
            if bad:
                raise ChurnmlError(f"unknown LightGBM missing_type code(s) {sorted(bad)} in the model")
        n_feature = int(kv["max_feature_idx"]) + 1
        names = kv["feature_names"].split(" ") if kv.get("feature_names") else [f"Column_{i}" for i in range(n_feature)]
        groups: list[_Group] = []
        tabulated: list[_Tree] = []
        big: list[_Tree] = []
        for t in trees:
            if t.n_nodes == 0:
                continue
            g = _groups(len(tabulated), t, max_nodes)
            if g is None:
                big.append(t)
            else:
                groups += g
                tabulated.append(t)
        fallback = lgb.Booster(model_str=_sub_model_text(header, big, tail)) if big else None
        singles = [t for t in trees if t.n_nodes == 0]
        return cls(
            feature_names=names,
            num_iteration=num_iteration,
            groups=groups,
            tables=_tabulate(groups),
            n_tabulated_trees=len(tabulated),
            constant_raw=sum(float(t.leaf_value[0]) for t in singles),
            expected_value=sum(_expected_value(t) for t in singles + tabulated),
            fallback=fallback,
            n_fallback_trees=len(big),
            n_threads=n_threads,
            chunk_rows=chunk_rows,
        )

    def _compile(self, tables: list[_Table], groups: list[_Group]) -> None:
        """Lay the tables and nodes out for the vectorised kernel (``_patterns``, ``_chunk``).

        Below, a "tree" ``t`` is one table (a whole tree or a group of its leaves).
        """
        order = sorted(range(len(tables)), key=lambda i: -len(tables[i].features))
        tables = [tables[i] for i in order]
        groups = [groups[i] for i in order]
        T = len(tables)
        self._T = T
        self.table_bytes = 0
        if T == 0:
            self.chunk_rows = self.chunk_rows or 4096
            return
        ks = np.array([len(g.nodes) for g in groups])
        ms = np.array([len(t.features) for t in tables])
        M = int(ms.max())
        kp = 8 * math.ceil(int(ks.max()) / 8)
        base = np.concatenate([[0], np.cumsum(2**ks)[:-1]]).astype(np.intp)
        n_patterns = int((2**ks).sum())
        # values: slot s of every tree (0 past the tree's features), then the leaf value
        values = np.zeros((M + 1, n_patterns))
        for tb, b0 in zip(tables, base):
            values[: len(tb.features), b0 : b0 + len(tb.raw)] = tb.phi.T
            values[M, b0 : b0 + len(tb.raw)] = tb.raw
        # trees are sorted by feature count, so slot s is used by a prefix of the trees
        n_by_slot = [int((ms > s).sum()) for s in range(M)] + [T]
        g_start = np.concatenate([[0], np.cumsum(n_by_slot)]).astype(int)
        rows, cols = [], []
        for s in range(M):
            for t in range(n_by_slot[s]):
                rows.append(int(tables[t].features[s]))
                cols.append(g_start[s] + t)
        rows += [self.num_feature] * T
        cols += list(range(g_start[M], g_start[M] + T))
        self._sum = sp.csr_array(
            (np.ones(len(rows)), (np.array(rows), np.array(cols))), shape=(self.num_feature + 1, int(g_start[-1]))
        )
        self._values, self._base, self._n_by_slot, self._g_start = values, base, n_by_slot, g_start
        if self.chunk_rows is None:
            self.chunk_rows = int(np.clip(_CHUNK_VALUES // int(g_start[-1]) // 64 * 64, 64, 4096))
        self.table_bytes = int(values.nbytes)
        self._kp = kp
        # nodes: numerical ones grouped by column variant, then categorical ones, then a zero row;
        # a node shared by several groups of a tree is computed once
        variants: dict[tuple[int, int], list] = {}
        cats: list[tuple[int, int, int, np.ndarray]] = []
        seen: set[tuple[int, int]] = set()
        for g in groups:
            tree = g.tree
            for j in g.nodes:
                if (g.tree_id, j) in seen:
                    continue
                seen.add((g.tree_id, j))
                d = int(tree.decision_type[j])
                f = int(tree.split_feature[j])
                if d & _CATEGORICAL_MASK:
                    cats.append((g.tree_id, j, f, tree.categories(j)))
                    continue
                miss, left = d >> 2 & 3, bool(d & _DEFAULT_LEFT_MASK)
                kind = (
                    _NAN_TO_ZERO
                    if miss == _MISSING_NONE
                    else (_ZERO_LEFT if left else _ZERO_RIGHT)
                    if miss == _MISSING_ZERO
                    else (_NAN_LEFT if left else _NAN_RIGHT)
                )
                variants.setdefault((kind, f), []).append((g.tree_id, j, float(tree.threshold[j])))
        keys = sorted(variants)  # by kind: the zero kinds come last
        self._var_feature = np.array([f for _, f in keys], dtype=np.intp)
        self._var_fill = np.array([_FILL[kind] for kind, _ in keys])
        self._var_zero_from = sum(1 for kind, _ in keys if kind < _ZERO_LEFT)
        row_of: dict[tuple[int, int], int] = {}
        thresholds, bounds, r = [], [], 0
        for v, key in enumerate(keys):
            start = r
            for tid, j, thr in variants[key]:
                row_of[(tid, j)] = r
                thresholds.append(thr)
                r += 1
            bounds.append((v, start, r))
        self._thresholds = np.array(thresholds)
        self._var_bounds = bounds
        self._n_numeric = r
        cat_features = sorted({f for _, _, f, _ in cats})
        self._cat_feature = np.array(cat_features, dtype=np.intp)
        width = max([len(c) for *_, c in cats], default=0)
        self._cat_width = width
        lut = np.zeros((len(cats), width + 1), dtype=bool)  # column ``width``: any code out of range
        for i, (tid, j, _f, c) in enumerate(cats):
            row_of[(tid, j)] = r + i
            lut[i, : len(c)] = c
        self._cat_lut = lut.ravel()
        self._cat_offset = (np.arange(len(cats)) * (width + 1)).astype(np.intp)
        self._cat_column = np.array([cat_features.index(f) for _, _, f, _ in cats], dtype=np.intp)
        self._zero_row = r + len(cats)
        perm = np.full(T * kp, self._zero_row, dtype=np.intp)
        for t, g in enumerate(groups):
            for p, j in enumerate(g.nodes):
                perm[t * kp + p] = row_of[(g.tree_id, j)]
        # position-major (node p of every tree, p = 0..kp-1) for the bit packing
        self._perm_by_position = perm.reshape(T, kp).T.ravel()

    # --- public ---------------------------------------------------------------------------
    def predict_raw(self, X) -> np.ndarray:
        """Raw scores (log-odds for binary): ``booster.predict(X, raw_score=True, num_iteration=...)``."""
        X = self._matrix(X)
        raw = np.full(len(X), self._constant_raw)
        if self._T:

            def work(lo, hi):
                raw[lo:hi] += self._chunk(X[lo:hi], False)

            self._run(X, work)
        if self._fallback is not None:
            raw += self._fallback.predict(X, raw_score=True)
        return raw

    def contributions(self, X) -> np.ndarray:
        """(n, n_features + 1): ``booster.predict(X, pred_contrib=True, num_iteration=...)``."""
        return self.raw_and_contributions(X)[1]

    def raw_and_contributions(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores and contributions from one pass over the rows."""
        X = self._matrix(X)
        n, F = len(X), self.num_feature
        raw = np.full(n, self._constant_raw)
        phi = np.empty((n, F + 1))
        phi[:, F] = self.expected_value
        if self._T:

            def work(lo, hi):
                out = self._chunk(X[lo:hi], True)
                phi[lo:hi, :F] = out[:F].T
                raw[lo:hi] += out[F]

            self._run(X, work)
        else:
            phi[:, :F] = 0.0
        if self._fallback is not None:
            extra = self._fallback.predict(X, pred_contrib=True)
            phi += extra
            raw += extra.sum(axis=1)
        return raw, phi

    # --- kernel ---------------------------------------------------------------------------
    def _matrix(self, X) -> np.ndarray:
        if hasattr(X, "columns") and hasattr(X, "dtypes"):
            cols = [str(c) for c in X.columns]
            if cols != self.feature_names:
                raise ChurnmlError(
                    f"the frame's columns are not the booster's features in order "
                    f"(first differences: {_first_differences(cols, self.feature_names)}); "
                    f"select them with X[features]"
                )
            bad = [c for c, d in zip(cols, X.dtypes) if getattr(d, "kind", "O") not in "biuf"]
            if bad:
                raise ChurnmlError(
                    f"columns {bad[:5]} are not numeric: encode categoricals as integer codes "
                    f"stored as floats (NaN = missing)"
                )
            X = X.to_numpy(dtype=np.float64, na_value=np.nan)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.num_feature:
            raise ChurnmlError(f"X must be 2-D with {self.num_feature} feature columns, got shape {X.shape}")
        return X

    def _run(self, X: np.ndarray, work) -> None:
        n, step = len(X), self.chunk_rows
        spans = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
        if self.n_threads <= 1 or len(spans) <= 1:
            for lo, hi in spans:
                work(lo, hi)
            return
        with ThreadPoolExecutor(max_workers=min(self.n_threads, len(spans))) as pool:
            for f in [pool.submit(work, lo, hi) for lo, hi in spans]:
                f.result()

    def _patterns(self, Xc: np.ndarray) -> np.ndarray:
        """(T, c) flat table positions: each tree's pattern index plus the tree's offset.

        Decision bits are computed per feature variant (rows grouped by variant), gathered in
        position-major order (node p of every tree), shifted to bit p inside each byte, eight
        bytes at a time through a uint64 view, and OR-reduced over positions.
        """
        c = len(Xc)
        c8 = -(-c // 8) * 8
        bits = np.empty((self._zero_row + 1, c8), dtype=bool)
        bits[:, c:] = False
        bits[self._zero_row] = False
        if len(self._var_feature):
            xv = np.ascontiguousarray(Xc[:, self._var_feature].T)
            xv[np.abs(xv) <= ZERO_THRESHOLD] = 0.0
            missing = np.isnan(xv)
            z = self._var_zero_from
            missing[z:] |= xv[z:] == 0.0
            np.copyto(xv, np.broadcast_to(self._var_fill[:, None], xv.shape), where=missing)
            thr = self._thresholds
            for v, a, b in self._var_bounds:
                np.less_equal(xv[v], thr[a:b, None], out=bits[a:b, :c])
        if len(self._cat_feature):
            xc = Xc[:, self._cat_feature].T
            valid = (xc > -1.0) & (xc < self._cat_width)
            code = np.where(valid, xc, self._cat_width).astype(np.intp)
            a = self._n_numeric
            bits[a : a + len(self._cat_offset), :c] = self._cat_lut[self._cat_offset[:, None] + code[self._cat_column]]
        T, kp = self._T, self._kp
        words = bits[self._perm_by_position].view(np.uint64).reshape(kp // 8, 8, -1)
        words <<= _SHIFTS[:, None]
        idx = np.broadcast_to(self._base[:, None], (T, c)).copy()
        for byte in range(kp // 8):
            packed = np.bitwise_or.reduce(words[byte], axis=0).view(np.uint8).reshape(T, c8)[:, :c]
            idx += packed.astype(np.intp) << (8 * byte) if byte else packed
        return idx

    def _chunk(self, Xc: np.ndarray, contributions: bool) -> np.ndarray:
        """Raw score (c,) or the (n_features + 1, c) sums of contributions and raw score of a chunk."""
        idx = self._patterns(Xc)
        M = len(self._n_by_slot) - 1
        if not contributions:
            return np.take(self._values[M], idx, mode="clip").sum(axis=0)
        g = np.empty((int(self._g_start[-1]), len(Xc)))
        for s, (n_s, g0) in enumerate(zip(self._n_by_slot, self._g_start)):
            np.take(self._values[s], idx[:n_s], out=g[g0 : g0 + n_s], mode="clip")  # indices are in range
        return self._sum @ g


def _first_differences(got: list[str], want: list[str]) -> list[str]:
    diffs = [f"{i}: {a!r} != {b!r}" for i, (a, b) in enumerate(zip(got, want)) if a != b][:3]
    if len(got) != len(want):
        diffs.append(f"{len(got)} columns, booster has {len(want)}")
    return diffs
