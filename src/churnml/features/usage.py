"""Usage: product adoption, its depth, breadth and trend, from the daily usage table.

Daily rows missing from the table count as zero activity. For an account younger
than a window, rates are taken over the days it has existed (``LEAST(w, t - start)``).
"""

from churnml.features._registry import WINDOWS, ind, per_account_query

FAMILY = "usage"
LOOKBACK = 90  # days of history the query reads


def indicators(ctx):
    out = []
    for w in WINDOWS:
        out += [
            ind(
                f"active_users_per_seat_{w}d",
                FAMILY,
                f"active users per seat ({w} days)",
                f"sum(active_users over [t-{w}, t)) / days / seats; days = min({w}, days since account start)",
                "users per seat per day",
                "no licensed seats",
                "low",
            ),
            ind(
                f"events_per_active_user_{w}d",
                FAMILY,
                f"actions per active user ({w} days)",
                f"sum(events) / sum(active_users) over [t-{w}, t)",
                "events per user-day",
                "no active users in the window",
                "low",
            ),
            ind(
                f"active_days_share_{w}d",
                FAMILY,
                f"share of days with activity ({w} days)",
                f"days with active_users > 0 in [t-{w}, t) / days; days = min({w}, days since account start)",
                "share 0..1",
                "never missing for a paying account",
                "low",
            ),
        ]
    out += [
        ind(
            "active_users_trend_30d",
            FAMILY,
            "change in active users (last 30 vs previous 30 days)",
            "sum(active_users in [t-30, t)) / sum(active_users in [t-60, t-30)) - 1, capped at 10",
            "relative change (-0.4 = fell 40%)",
            "account younger than 60 days or no activity in [t-60, t-30)",
            "low",
        ),
        ind(
            "events_trend_30d",
            FAMILY,
            "change in product actions (last 30 vs previous 30 days)",
            "sum(events in [t-30, t)) / sum(events in [t-60, t-30)) - 1, capped at 10",
            "relative change",
            "account younger than 60 days or no events in [t-60, t-30)",
            "low",
        ),
        ind(
            "days_since_last_activity",
            FAMILY,
            "days since last product activity",
            "t - last day with active_users > 0 in [t-90, t); if none: min(90, days since account start)",
            "days (capped at 90)",
            "never missing",
            "high",
        ),
        ind(
            "weekday_share_30d",
            FAMILY,
            "share of activity on weekdays (30 days)",
            "active users on Monday-Friday / all active users, over [t-30, t)",
            "share 0..1",
            "no activity in the window",
            "context",
        ),
        ind(
            "peak_active_users_per_seat_30d",
            FAMILY,
            "seats in use at the peak day vs licensed (30 days)",
            "max daily active_users in [t-30, t) / seats (seats used vs licensed)",
            "ratio (1 = every seat used on the busiest day)",
            "no seats, or no activity in the window",
            "low",
        ),
    ]
    if ctx.feature_columns:
        for w in (30, 90):
            out.append(
                ind(
                    f"feature_breadth_{w}d",
                    FAMILY,
                    f"share of product features used ({w} days)",
                    f"feature_* columns with any use in [t-{w}, t) / number of feature_* columns",
                    "share 0..1",
                    "never missing when the usage table has feature_* columns",
                    "low",
                )
            )
    return out


def sql(ctx):
    def win(w, expr, other="0"):
        return f"SUM(CASE WHEN u.day >= p.cutoff - {w} THEN {expr} ELSE {other} END)"

    aggs = []
    for w in WINDOWS:
        aggs += [
            f"{win(w, 'u.active_users')} AS au_{w}",
            f"{win(w, 'u.events')} AS ev_{w}",
            f"SUM(CASE WHEN u.day >= p.cutoff - {w} AND u.active_users > 0 THEN 1 ELSE 0 END) AS ad_{w}",
        ]
    aggs += [
        "SUM(CASE WHEN u.day >= p.cutoff - 60 AND u.day < p.cutoff - 30 THEN u.active_users ELSE 0 END) AS au_prev30",
        "SUM(CASE WHEN u.day >= p.cutoff - 60 AND u.day < p.cutoff - 30 THEN u.events ELSE 0 END) AS ev_prev30",
        "MAX(CASE WHEN u.active_users > 0 THEN u.day END) AS last_active",
        "MAX(CASE WHEN u.day >= p.cutoff - 30 THEN u.active_users END) AS au_peak_30",
        # day 0 (1970-01-01) was a Thursday: (day + 3) % 7 is 0 on Mondays, 5-6 at weekends
        "SUM(CASE WHEN u.day >= p.cutoff - 30 AND (u.day + 3) % 7 < 5 THEN u.active_users ELSE 0 END) AS au_wkday_30",
    ]
    for i, _ in enumerate(ctx.feature_columns):  # the dataset names feature_* columns f0, f1, ... in SQL
        for w in (30, 90):
            aggs.append(f"{win(w, f'u.f{i}')} AS f{i}_{w}")

    def days(w):
        return f"LEAST({w}, p.cutoff - p.start_day)"

    cols = []
    for w in WINDOWS:
        cols += [
            f"CASE WHEN p.seats > 0 THEN COALESCE(a.au_{w}, 0) / {days(w)} / p.seats END AS active_users_per_seat_{w}d",
            f"CASE WHEN a.au_{w} > 0 THEN a.ev_{w} / a.au_{w} END AS events_per_active_user_{w}d",
            f"COALESCE(a.ad_{w}, 0) / {days(w)} AS active_days_share_{w}d",
        ]
    cols += [
        "CASE WHEN p.cutoff - p.start_day >= 60 AND a.au_prev30 > 0 "
        "THEN LEAST(a.au_30 / a.au_prev30 - 1, 10) END AS active_users_trend_30d",
        "CASE WHEN p.cutoff - p.start_day >= 60 AND a.ev_prev30 > 0 "
        "THEN LEAST(a.ev_30 / a.ev_prev30 - 1, 10) END AS events_trend_30d",
        f"COALESCE(p.cutoff - a.last_active, {days(90)}) AS days_since_last_activity",
        "CASE WHEN a.au_30 > 0 THEN a.au_wkday_30 / a.au_30 END AS weekday_share_30d",
        "CASE WHEN p.seats > 0 AND a.au_peak_30 > 0 THEN a.au_peak_30 / p.seats END AS peak_active_users_per_seat_30d",
    ]
    if ctx.feature_columns:
        k = len(ctx.feature_columns)
        for w in (30, 90):
            used = " + ".join(f"CASE WHEN a.f{i}_{w} > 0 THEN 1 ELSE 0 END" for i in range(k))
            cols.append(f"CAST(({used}) AS DOUBLE) / {k} AS feature_breadth_{w}d")
    return per_account_query(
        f"usage u ON u.account_id = p.account_id AND u.day < p.cutoff AND u.day >= p.cutoff - {LOOKBACK}", aggs, cols
    )
