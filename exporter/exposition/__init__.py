"""The exposition: a custom collector over the snapshots, and the cached /metrics bytes."""
