"""Commercial state: MRR and its movements, seats, tenure, renewal and term, segment and plan.

Everything comes from the subscriptions change log as known before the cutoff: the
row in force at ``t`` (latest row dated before ``t``) and the rows before it. Its
``contract_end`` was signed earlier, so days to renewal is known at ``t``.
"""

from churnml.features._registry import ind

FAMILY = "commercial"
CATEGORICAL = ("segment", "plan", "industry", "region")


def indicators(ctx):
    out = [
        ind(
            "mrr",
            FAMILY,
            "monthly recurring revenue",
            "MRR on day t-1",
            "currency per month",
            "never missing",
            "context",
        ),
        ind("seats", FAMILY, "licensed seats", "seats on day t-1", "seats", "no seats column", "context"),
        ind(
            "mrr_per_seat",
            FAMILY,
            "price per seat",
            "MRR / seats on day t-1",
            "currency per seat per month",
            "no seats",
            "context",
        ),
        ind(
            "mrr_change_90d",
            FAMILY,
            "MRR change over 90 days",
            "MRR(t-1) / MRR(t-91) - 1",
            "relative change",
            "account not paying 90 days before t",
            "low",
        ),
        ind(
            "mrr_change_180d",
            FAMILY,
            "MRR change over 180 days",
            "MRR(t-1) / MRR(t-181) - 1",
            "relative change",
            "account not paying 180 days before t",
            "low",
        ),
        ind(
            "expansions_365d",
            FAMILY,
            "MRR increases in the last year",
            "subscription rows in [t-365, t) with MRR above the previous row's (previous > 0)",
            "count",
            "never missing",
            "low",
        ),
        ind(
            "contractions_365d",
            FAMILY,
            "MRR decreases in the last year",
            "subscription rows in [t-365, t) with 0 < MRR < previous row's MRR",
            "count",
            "never missing",
            "high",
        ),
        ind(
            "previous_churns",
            FAMILY,
            "times the account churned before",
            "subscription rows before t with MRR 0 after a paying row, not a completed end (churned and came back)",
            "count",
            "never missing",
            "high",
        ),
        ind(
            "days_since_mrr_change",
            FAMILY,
            "days since MRR last changed",
            "t - effective_date of the latest row whose MRR differs from the row before (or the first row)",
            "days",
            "never missing",
            "context",
        ),
        ind(
            "tenure_days",
            FAMILY,
            "account age",
            "t - account start (signup_date or first subscription row)",
            "days",
            "never missing",
            "low",
        ),
        ind(
            "days_to_renewal",
            FAMILY,
            "days to renewal",
            "contract_end of the row in force at t - t",
            "days (negative: renewal date passed)",
            "no contract_end",
            "low",
        ),
        ind(
            "term_length_days",
            FAMILY,
            "contract term length",
            "contract_end - first day of the term (earliest row with the same contract_end)",
            "days",
            "no contract_end",
            "context",
        ),
    ]
    for c in CATEGORICAL:
        out.append(
            ind(
                c,
                FAMILY,
                c,
                f"{c} of the account" if c != "plan" else "plan on day t-1",
                "category",
                "not given",
                "context",
                kind="categorical",
            )
        )
    for i, (name, kind) in enumerate(ctx.attributes):
        out.append(
            ind(
                name,
                FAMILY,
                name.replace("_", " "),
                "declared account attribute (static, known at signup)",
                "category" if kind == "string" else "value",
                "not given",
                "context",
                kind="categorical" if kind == "string" else "numeric",
                sql=f"a{i}",
            )
        )
    return out


def sql(ctx):
    attrs = "".join(
        f", p.a{i} AS a{i}" if kind == "string" else f", CAST(p.a{i} AS DOUBLE) AS a{i}"
        for i, (_, kind) in enumerate(ctx.attributes)
    )
    return (
        """
WITH sr AS (
    SELECT account_id, day, mrr, contract_end, churned,
           LAG(mrr) OVER (PARTITION BY account_id ORDER BY day) AS prev_mrr
    FROM subs
), h AS (
    SELECT p.account_id, p.cutoff, p.contract_end AS ce_now, sr.day, sr.mrr, sr.prev_mrr, sr.contract_end, sr.churned,
           ROW_NUMBER() OVER (PARTITION BY p.account_id, p.cutoff, sr.day < p.cutoff - 90 ORDER BY sr.day DESC) AS rn90,
           ROW_NUMBER() OVER (
               PARTITION BY p.account_id, p.cutoff, sr.day < p.cutoff - 180 ORDER BY sr.day DESC
           ) AS rn180
    FROM pop p JOIN sr ON sr.account_id = p.account_id AND sr.day < p.cutoff
), a AS (
    SELECT account_id, cutoff,
           MAX(CASE WHEN day < cutoff - 90 AND rn90 = 1 THEN mrr END) AS mrr_90,
           MAX(CASE WHEN day < cutoff - 180 AND rn180 = 1 THEN mrr END) AS mrr_180,
           SUM(CASE WHEN day >= cutoff - 365 AND prev_mrr > 0 AND mrr > prev_mrr THEN 1 ELSE 0 END) AS exp_n,
           SUM(CASE WHEN day >= cutoff - 365 AND mrr > 0 AND mrr < prev_mrr THEN 1 ELSE 0 END) AS con_n,
           SUM(CASE WHEN churned AND prev_mrr > 0 THEN 1 ELSE 0 END) AS churn_n,
           MAX(CASE WHEN prev_mrr IS NULL OR mrr <> prev_mrr THEN day END) AS last_change,
           MIN(CASE WHEN contract_end = ce_now THEN day END) AS term_start
    FROM h GROUP BY account_id, cutoff
)
SELECT p.account_id, p.cutoff,
       p.mrr AS mrr,
       CAST(p.seats AS DOUBLE) AS seats,
       CASE WHEN p.seats > 0 THEN p.mrr / p.seats END AS mrr_per_seat,
       CASE WHEN a.mrr_90 > 0 THEN p.mrr / a.mrr_90 - 1 END AS mrr_change_90d,
       CASE WHEN a.mrr_180 > 0 THEN p.mrr / a.mrr_180 - 1 END AS mrr_change_180d,
       CAST(a.exp_n AS DOUBLE) AS expansions_365d,
       CAST(a.con_n AS DOUBLE) AS contractions_365d,
       CAST(a.churn_n AS DOUBLE) AS previous_churns,
       CAST(p.cutoff - a.last_change AS DOUBLE) AS days_since_mrr_change,
       CAST(p.cutoff - p.start_day AS DOUBLE) AS tenure_days,
       CAST(p.contract_end - p.cutoff AS DOUBLE) AS days_to_renewal,
       CAST(p.contract_end - a.term_start AS DOUBLE) AS term_length_days,
       p.segment AS segment, p.plan AS plan, p.industry AS industry, p.region AS region"""
        + attrs
        + """
FROM pop p JOIN a ON a.account_id = p.account_id AND a.cutoff = p.cutoff
"""
    )
