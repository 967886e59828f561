"""Reading results: status (no heavy import), leaderboard, figures, report, predict."""
