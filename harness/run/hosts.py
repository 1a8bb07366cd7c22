"""Host specs live in the plan stage (harness.plan.hosts); re-exported here for the run stage."""

from harness.plan.hosts import DEFAULT_PORT, LOCAL, Host, SshOptions, parse_host

__all__ = ["DEFAULT_PORT", "LOCAL", "Host", "SshOptions", "parse_host"]
