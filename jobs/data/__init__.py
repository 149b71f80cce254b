"""The data stage: validate, prepare (clean, dedupe, split), count tokens, estimate cost, upload."""
