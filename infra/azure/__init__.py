"""Azure provisioning with the management SDKs: `ftops infra plan|apply|destroy --cloud azure`.

desired.py   what an environment file asks for, as ARM request bodies, in dependency order
resources.py how each resource kind is read, created, updated and deleted (the SDK calls)
errors.py    the boundary: retries via jobs.retry (429, provisioning conflicts, 5xx), azure.core errors -> CloudError
plan.py      the diff engine: desired vs actual (GETs), per resource create / update / unchanged
apply.py     executes a plan in dependency order; destroy in reverse, only what ftops manages
checks.py    model / region / training-type checks and quota, before anything is created
outputs.py   the resolved values rendering reads (`environments/resolved/<env>.azure.json`)
"""
