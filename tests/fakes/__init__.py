"""Emulators of the apps Tandem connects to (Jira, GitLab, ...), run as real HTTP servers on
127.0.0.1 for tests. `server` holds the shared pieces: running an app and the knobs (latency,
errors, 429s, counters, fault injection) every emulator exposes."""
