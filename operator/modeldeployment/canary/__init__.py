"""The ModelDeployment canary: a pure rollout engine (steps, analysis, pause, rollback) and the metric sources that
measure each analysis interval (TF Serving's own metrics endpoint, or Prometheus)."""
