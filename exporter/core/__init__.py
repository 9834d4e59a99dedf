"""Shared leaves every wing may use: logs, names, durations, time parsing, label cleaning and the
records."""
