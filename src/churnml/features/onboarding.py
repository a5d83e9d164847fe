"""Onboarding: milestones reached, overdue and on time, and the time to first value.

A milestone completed on or after the cutoff is *not reached* at the cutoff. Due
dates belong to the onboarding plan, agreed at the start, so they are known. An
account with no milestone rows has no onboarding data (missing, not zero).
"""

from churnml.features._registry import ind, per_account_query

FAMILY = "onboarding"


def indicators(ctx):
    fv = ctx.first_value_milestone
    return [
        ind(
            "milestones_reached",
            FAMILY,
            "onboarding milestones reached",
            "milestones completed before t",
            "milestones",
            "no milestone rows for the account",
            "low",
        ),
        ind(
            "milestones_reached_share",
            FAMILY,
            "share of onboarding milestones reached",
            "milestones completed before t / milestones in the plan",
            "share 0..1",
            "no milestone rows for the account",
            "low",
        ),
        ind(
            "milestones_overdue",
            FAMILY,
            "onboarding milestones overdue",
            "milestones due before t and not completed before t",
            "milestones",
            "no milestone rows for the account",
            "high",
        ),
        ind(
            "max_days_overdue",
            FAMILY,
            "days the most overdue milestone is late",
            "max(t - due_date) over milestones due before t and not completed before t (0 if none)",
            "days",
            "no milestone rows for the account",
            "high",
        ),
        ind(
            "milestones_on_time_share",
            FAMILY,
            "share of due milestones reached on time",
            "milestones completed on or before their due date (and before t) / milestones due before t",
            "share 0..1",
            "no milestone with a due date before t",
            "low",
        ),
        ind(
            "first_value_reached",
            FAMILY,
            "first value reached",
            f"1 if milestone '{fv}' was completed before t, else 0",
            "flag 0/1",
            f"no '{fv}' milestone row for the account",
            "low",
        ),
        ind(
            "days_to_first_value",
            FAMILY,
            "days from signup to first value",
            f"completed_at of '{fv}' - account start, when reached before t",
            "days",
            "first value not reached before t (see first_value_reached)",
            "high",
        ),
    ]


def sql(ctx):
    fv = ctx.first_value_milestone.replace("'", "''")
    reached = "m.completed < p.cutoff"
    overdue = "m.due < p.cutoff AND (m.completed IS NULL OR m.completed >= p.cutoff)"
    aggs = [
        "COUNT(*) AS planned",
        f"SUM(CASE WHEN {reached} THEN 1 ELSE 0 END) AS reached",
        f"SUM(CASE WHEN {overdue} THEN 1 ELSE 0 END) AS overdue",
        f"MAX(CASE WHEN {overdue} THEN p.cutoff - m.due ELSE 0 END) AS max_overdue",
        "SUM(CASE WHEN m.due < p.cutoff THEN 1 ELSE 0 END) AS due_n",
        f"SUM(CASE WHEN m.due < p.cutoff AND {reached} AND m.completed <= m.due THEN 1 ELSE 0 END) AS on_time",
        f"SUM(CASE WHEN m.milestone = '{fv}' THEN 1 ELSE 0 END) AS fv_rows",
        f"MIN(CASE WHEN m.milestone = '{fv}' AND {reached} THEN m.completed END) AS fv_day",
    ]
    cols = [
        "CAST(a.reached AS DOUBLE) AS milestones_reached",
        "CAST(a.reached AS DOUBLE) / a.planned AS milestones_reached_share",
        "CAST(a.overdue AS DOUBLE) AS milestones_overdue",
        "CAST(a.max_overdue AS DOUBLE) AS max_days_overdue",
        "CASE WHEN a.due_n > 0 THEN CAST(a.on_time AS DOUBLE) / a.due_n END AS milestones_on_time_share",
        "CASE WHEN a.fv_rows > 0 THEN (CASE WHEN a.fv_day IS NOT NULL THEN 1.0 ELSE 0.0 END) END"
        " AS first_value_reached",
        "CAST(a.fv_day - p.start_day AS DOUBLE) AS days_to_first_value",
    ]
    return per_account_query("milestones m ON m.account_id = p.account_id", aggs, cols)
