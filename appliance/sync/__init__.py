"""The sync engine: integration specs, value mapping, the field-level three-way merge, and the
engine that keeps two containers in step (appliance.sync.engine)."""
