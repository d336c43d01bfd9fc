"""Connectors: one module per app (jira.py, gitlab.py, ...) implementing the contract in base.py.
All of their HTTP goes through appliance.outbound."""
