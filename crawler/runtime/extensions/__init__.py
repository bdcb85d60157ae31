"""Run-level extensions: the run lock, the run record and its monitors, progress lines."""
