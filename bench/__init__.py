"""Load measurements against a running PayWave (not part of the test suite)."""
