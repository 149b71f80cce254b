"""`ftops preflight`: what would stop the rendered jobs in a real account, found before anything is paid for.

Every call is a read (a test records them); checks that cannot be answered say why instead of passing.
"""
