"""Plots of the report for the admin area, where people would rather look than read: matplotlib
figures built without pyplot (no global state, safe in a server's threads)."""

from __future__ import annotations

from matplotlib.figure import Figure

from dialog.insights.report import Report

DAILY_SERIES = ("conversations", "handed_off", "abstained", "thumbs_down")


def daily_figure(report: Report) -> Figure:
    """Conversations, handoffs, abstentions and thumbs down per day, one line each."""
    figure = Figure(figsize=(8, 3.5), layout="constrained")
    axes = figure.subplots()
    days = [s.name for s in report.by_day]
    for series in DAILY_SERIES:
        axes.plot(days, [getattr(s, series) for s in report.by_day], marker="o", label=series)
    axes.set_title("Per day")
    axes.legend(loc="upper left", fontsize="small")
    axes.tick_params(axis="x", labelrotation=45, labelsize="small")
    return figure


def channel_figure(report: Report) -> Figure:
    """Conversations per channel, with the share handed to a person."""
    figure = Figure(figsize=(6, 3), layout="constrained")
    axes = figure.subplots()
    names = [s.name for s in report.by_channel]
    axes.bar(names, [s.conversations for s in report.by_channel], label="conversations")
    axes.bar(names, [s.handed_off for s in report.by_channel], label="handed off")
    axes.set_title("Per channel")
    axes.legend(fontsize="small")
    return figure
