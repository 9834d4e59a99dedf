"""The polling: a task per target folds its provider's pages into an aggregate, and publishes
an immutable snapshot of it."""
