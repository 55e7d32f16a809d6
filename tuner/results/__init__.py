"""Leaderboard, held-out scores, top trials, HTML report, dashboard."""
