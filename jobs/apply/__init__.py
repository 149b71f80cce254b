"""`ftops plan|apply`: converge the rendered jobs with the cloud, exactly once per idempotency key."""
