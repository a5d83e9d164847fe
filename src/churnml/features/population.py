"""The population: one row per (account, cutoff) for accounts paying on day ``t-1``.

Its columns carry the commercial state in force at the cutoff (the latest
subscriptions row dated before ``t``) that every family needs: MRR, seats, plan,
contract end, the account's first day, static attributes (``segment``, ``industry``,
``region``) and the declared account attributes (``a0``, ``a1``, ...).
"""


def POPULATION_SQL(ctx) -> str:  # noqa: N802 - the population query, named like the constant it was
    attrs = "".join(f", a.a{i}" for i in range(len(ctx.attributes)))
    return f"""
WITH joined AS (
    SELECT c.cutoff, s.account_id, s.day AS state_day, s.mrr, s.seats, s.plan, s.contract_end,
           ROW_NUMBER() OVER (PARTITION BY s.account_id, c.cutoff ORDER BY s.day DESC) AS rn,
           MIN(s.day) OVER (PARTITION BY s.account_id, c.cutoff) AS first_sub_day
    FROM cutoffs c JOIN subs s ON s.day < c.cutoff
)
SELECT j.account_id, j.cutoff, j.state_day, j.mrr, j.seats, j.plan, j.contract_end,
       a.signup, a.segment, a.industry, a.region{attrs},
       LEAST(COALESCE(a.signup, j.first_sub_day), j.first_sub_day) AS start_day
FROM joined j JOIN accounts a ON a.account_id = j.account_id
WHERE j.rn = 1 AND j.mrr > 0
"""
