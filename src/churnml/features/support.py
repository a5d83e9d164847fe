"""Support load: tickets opened, the backlog open at the cutoff, and how slowly they close.

A ticket opened before ``t`` and closed on or after ``t`` is *open* at ``t`` (its
close time is unknown then). A first-response time counts only once the response
itself happened before ``t``. The contract has no reopen flag, so long-running
tickets (closed after more than 7 days) stand in for reopened ones.
"""

from churnml.features._registry import ind, median_query, per_account_query

FAMILY = "support"


def indicators(ctx):
    out = []
    for w in (30, 90):
        out.append(
            ind(
                f"tickets_per_seat_{w}d",
                FAMILY,
                f"support tickets per seat ({w} days)",
                f"tickets opened in [t-{w}, t) / seats, per 30 days; days = min({w}, days since account start)",
                "tickets per seat per 30 days",
                "no seats or no tickets table",
                "high",
            )
        )
    out += [
        ind(
            "tickets_opened_90d",
            FAMILY,
            "support tickets opened (90 days)",
            "count of tickets opened in [t-90, t)",
            "tickets",
            "no tickets table",
            "high",
        ),
        ind(
            "high_urgent_tickets_90d",
            FAMILY,
            "high or urgent tickets opened (90 days)",
            "count of tickets with priority high/urgent opened in [t-90, t)",
            "tickets",
            "no tickets table",
            "high",
        ),
        ind(
            "open_tickets",
            FAMILY,
            "tickets open at the cutoff",
            "tickets opened before t and not closed before t",
            "tickets",
            "no tickets table",
            "high",
        ),
        ind(
            "open_high_urgent_tickets",
            FAMILY,
            "high or urgent tickets open at the cutoff",
            "open tickets with priority high/urgent",
            "tickets",
            "no tickets table",
            "high",
        ),
        ind(
            "open_tickets_over_7d",
            FAMILY,
            "tickets open for more than 7 days",
            "open tickets opened before t-7",
            "tickets",
            "no tickets table",
            "high",
        ),
        ind(
            "median_hours_to_close_90d",
            FAMILY,
            "median hours to close a ticket (90 days)",
            "median of closed_at - opened_at for tickets closed in [t-90, t)",
            "hours",
            "no ticket closed in the window",
            "high",
        ),
        ind(
            "long_tickets_share_90d",
            FAMILY,
            "share of tickets that took over 7 days (90 days)",
            "tickets closed in [t-90, t) after more than 7 days / tickets closed in [t-90, t)",
            "share 0..1",
            "no ticket closed in the window",
            "high",
        ),
        ind(
            "median_first_response_minutes_90d",
            FAMILY,
            "median minutes to first response (90 days)",
            "median first_response_minutes of tickets opened in [t-90, t) whose first response came before t",
            "minutes",
            "no such ticket or no first_response_minutes",
            "high",
        ),
    ]
    return out


def sql(ctx):
    closed_90 = "t.closed < p.cutoff AND t.closed >= p.cutoff - 90"
    is_open = "(t.closed IS NULL OR t.closed >= p.cutoff)"
    hu = "t.priority IN ('high', 'urgent')"
    aggs = [
        "SUM(CASE WHEN t.opened >= p.cutoff - 30 THEN 1 ELSE 0 END) AS n_30",
        "SUM(CASE WHEN t.opened >= p.cutoff - 90 THEN 1 ELSE 0 END) AS n_90",
        f"SUM(CASE WHEN t.opened >= p.cutoff - 90 AND {hu} THEN 1 ELSE 0 END) AS hu_90",
        f"SUM(CASE WHEN {is_open} THEN 1 ELSE 0 END) AS open_n",
        f"SUM(CASE WHEN {is_open} AND {hu} THEN 1 ELSE 0 END) AS open_hu",
        f"SUM(CASE WHEN {is_open} AND t.opened < p.cutoff - 7 THEN 1 ELSE 0 END) AS open_7",
        f"SUM(CASE WHEN {closed_90} THEN 1 ELSE 0 END) AS closed_n",
        f"SUM(CASE WHEN {closed_90} AND t.closed - t.opened > 7 THEN 1 ELSE 0 END) AS long_n",
    ]

    def per_seat(w):
        return (
            f"CASE WHEN p.seats > 0 THEN COALESCE(a.n_{w}, 0) / p.seats * 30.0 / "
            f"LEAST({w}, p.cutoff - p.start_day) END AS tickets_per_seat_{w}d"
        )

    cols = [
        per_seat(30),
        per_seat(90),
        "CAST(COALESCE(a.n_90, 0) AS DOUBLE) AS tickets_opened_90d",
        "CAST(COALESCE(a.hu_90, 0) AS DOUBLE) AS high_urgent_tickets_90d",
        "CAST(COALESCE(a.open_n, 0) AS DOUBLE) AS open_tickets",
        "CAST(COALESCE(a.open_hu, 0) AS DOUBLE) AS open_high_urgent_tickets",
        "CAST(COALESCE(a.open_7, 0) AS DOUBLE) AS open_tickets_over_7d",
        "mc.med AS median_hours_to_close_90d",
        "CASE WHEN a.closed_n > 0 THEN CAST(a.long_n AS DOUBLE) / a.closed_n END AS long_tickets_share_90d",
        "mf.med AS median_first_response_minutes_90d",
    ]
    sides = [
        (
            "mc",
            median_query(
                "mc", f"tickets t ON t.account_id = p.account_id AND {closed_90}", "(t.closed - t.opened) * 24"
            ),
        ),
        (
            "mf",
            median_query(
                "mf",
                "tickets t ON t.account_id = p.account_id AND t.opened < p.cutoff "
                "AND t.opened >= p.cutoff - 90 AND t.opened + t.first_response_minutes / 1440.0 "
                "< p.cutoff",
                "t.first_response_minutes",
            ),
        ),
    ]
    return per_account_query(
        "tickets t ON t.account_id = p.account_id AND t.opened < p.cutoff "
        "AND (t.opened >= p.cutoff - 90 OR t.closed IS NULL OR t.closed >= p.cutoff - 90)",
        aggs,
        cols,
        sides,
    )
