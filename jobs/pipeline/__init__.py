"""`ftops pipeline render`: the GitOps workflow (GitHub Actions) that reviews renders and applies them."""
