"""What operators see of PayWave: log lines, metrics, health probes and alerts."""
