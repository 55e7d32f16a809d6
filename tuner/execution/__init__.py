"""Workers, budget accounting, heartbeats, local worker processes, the fit watchdog."""
