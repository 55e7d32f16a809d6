"""The command-line interface (Typer): ``tuner run``, ``leaderboard``, ``export``, ``serve``, ..."""

from tuner.cli.app import app, main

__all__ = ["app", "main"]
