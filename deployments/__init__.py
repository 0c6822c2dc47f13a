"""HOW IT RUNS: deployments, the serve entrypoint, the local stack and the `salesops` CLI."""
