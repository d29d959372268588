"""The `mmagent` Typer CLI: one sub-app per area."""
