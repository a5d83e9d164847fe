"""Effort and sentiment surveys: Customer Effort Score first, CSAT and NPS beside it.

CES (1..7, 7 = very easy) answers of 1..3 are "difficult"; a rising share of
difficult answers predicts defection better than NPS. CSAT (1..5) and NPS (0..10)
are kept as separate, usually weaker, indicators. An answer counts once its
``responded_at`` is before the cutoff.
"""

from churnml.features._registry import ind, per_account_query

FAMILY = "effort"
LOOKBACK = 180


def indicators(ctx):
    return [
        ind(
            "ces_mean_90d",
            FAMILY,
            "average effort score (90 days)",
            "mean CES score of answers in [t-90, t)",
            "score 1..7 (7 = very easy)",
            "no CES answer in the window",
            "low",
        ),
        ind(
            "ces_difficult_share_90d",
            FAMILY,
            "share of 'difficult' effort answers (90 days)",
            "CES answers scored 1..3 / all CES answers, in [t-90, t)",
            "share 0..1",
            "no CES answer in the window",
            "high",
        ),
        ind(
            "ces_difficult_share_180d",
            FAMILY,
            "share of 'difficult' effort answers (180 days)",
            "CES answers scored 1..3 / all CES answers, in [t-180, t)",
            "share 0..1",
            "no CES answer in the window",
            "high",
        ),
        ind(
            "ces_trend_90d",
            FAMILY,
            "change in average effort score (last 90 vs previous 90 days)",
            "mean CES in [t-90, t) - mean CES in [t-180, t-90)",
            "score points",
            "no CES answer in one of the windows",
            "low",
        ),
        ind(
            "ces_responses_90d",
            FAMILY,
            "effort survey answers (90 days)",
            "count of CES answers in [t-90, t)",
            "answers",
            "no surveys table",
            "context",
        ),
        ind(
            "csat_mean_90d",
            FAMILY,
            "average satisfaction score (90 days)",
            "mean CSAT score in [t-90, t)",
            "score 1..5",
            "no CSAT answer in the window",
            "low",
        ),
        ind(
            "csat_low_share_90d",
            FAMILY,
            "share of unsatisfied answers (90 days)",
            "CSAT answers scored 1..2 / all CSAT answers, in [t-90, t)",
            "share 0..1",
            "no CSAT answer in the window",
            "high",
        ),
        ind(
            "csat_responses_90d",
            FAMILY,
            "satisfaction survey answers (90 days)",
            "count of CSAT answers in [t-90, t)",
            "answers",
            "no surveys table",
            "context",
        ),
        ind(
            "nps_mean_180d",
            FAMILY,
            "average NPS answer (180 days)",
            "mean NPS score in [t-180, t)",
            "score 0..10",
            "no NPS answer in the window",
            "low",
        ),
        ind(
            "nps_detractor_share_180d",
            FAMILY,
            "share of NPS detractors (180 days)",
            "NPS answers scored 0..6 / all NPS answers, in [t-180, t)",
            "share 0..1",
            "no NPS answer in the window",
            "high",
        ),
        ind(
            "nps_responses_180d",
            FAMILY,
            "NPS answers (180 days)",
            "count of NPS answers in [t-180, t)",
            "answers",
            "no surveys table",
            "context",
        ),
    ]


def _cond(kind, lo, hi=0, extra=""):
    """Survey rows of one kind answered in [t-lo, t-hi)."""
    upper = "s.answered < p.cutoff" if hi == 0 else f"s.answered < p.cutoff - {hi}"
    return f"s.kind = '{kind}' AND s.answered >= p.cutoff - {lo} AND {upper}{extra}"


def sql(ctx):
    aggs = [
        f"AVG(CASE WHEN {_cond('CES', 90)} THEN s.score END) AS ces_mean_90",
        f"AVG(CASE WHEN {_cond('CES', 180, 90)} THEN s.score END) AS ces_mean_prev90",
        f"SUM(CASE WHEN {_cond('CES', 90)} THEN 1 ELSE 0 END) AS ces_n_90",
        f"SUM(CASE WHEN {_cond('CES', 90, 0, ' AND s.score <= 3')} THEN 1 ELSE 0 END) AS ces_d_90",
        f"SUM(CASE WHEN {_cond('CES', 180)} THEN 1 ELSE 0 END) AS ces_n_180",
        f"SUM(CASE WHEN {_cond('CES', 180, 0, ' AND s.score <= 3')} THEN 1 ELSE 0 END) AS ces_d_180",
        f"AVG(CASE WHEN {_cond('CSAT', 90)} THEN s.score END) AS csat_mean_90",
        f"SUM(CASE WHEN {_cond('CSAT', 90)} THEN 1 ELSE 0 END) AS csat_n_90",
        f"SUM(CASE WHEN {_cond('CSAT', 90, 0, ' AND s.score <= 2')} THEN 1 ELSE 0 END) AS csat_low_90",
        f"AVG(CASE WHEN {_cond('NPS', 180)} THEN s.score END) AS nps_mean_180",
        f"SUM(CASE WHEN {_cond('NPS', 180)} THEN 1 ELSE 0 END) AS nps_n_180",
        f"SUM(CASE WHEN {_cond('NPS', 180, 0, ' AND s.score <= 6')} THEN 1 ELSE 0 END) AS nps_det_180",
    ]
    cols = [
        "a.ces_mean_90 AS ces_mean_90d",
        "CASE WHEN a.ces_n_90 > 0 THEN CAST(a.ces_d_90 AS DOUBLE) / a.ces_n_90 END AS ces_difficult_share_90d",
        "CASE WHEN a.ces_n_180 > 0 THEN CAST(a.ces_d_180 AS DOUBLE) / a.ces_n_180 END AS ces_difficult_share_180d",
        "a.ces_mean_90 - a.ces_mean_prev90 AS ces_trend_90d",
        "CAST(COALESCE(a.ces_n_90, 0) AS DOUBLE) AS ces_responses_90d",
        "a.csat_mean_90 AS csat_mean_90d",
        "CASE WHEN a.csat_n_90 > 0 THEN CAST(a.csat_low_90 AS DOUBLE) / a.csat_n_90 END AS csat_low_share_90d",
        "CAST(COALESCE(a.csat_n_90, 0) AS DOUBLE) AS csat_responses_90d",
        "a.nps_mean_180 AS nps_mean_180d",
        "CASE WHEN a.nps_n_180 > 0 THEN CAST(a.nps_det_180 AS DOUBLE) / a.nps_n_180 END AS nps_detractor_share_180d",
        "CAST(COALESCE(a.nps_n_180, 0) AS DOUBLE) AS nps_responses_180d",
    ]
    return per_account_query(
        f"surveys s ON s.account_id = p.account_id AND s.answered < p.cutoff AND s.answered >= p.cutoff - {LOOKBACK}",
        aggs,
        cols,
    )
