"""The ftops Azure emulator: ARM (management plane) now, the Azure OpenAI data plane as a second Blueprint.

Run it with `python -m jobs.local.azure_emulator --port P --state-dir D` (what `ftops local up` does), or
build it in-process with `create_app(state_dir)`. Pieces, each reusable by a new Blueprint:

- `store.Store`: one JSON document per namespace under the state dir, mutated inside `transaction()` under a
  lock and written atomically, so a restart keeps the state. A Blueprint gets its own namespace with
  `store.get_store(name)`; the data plane keeps one per account (`store.account_store(account_id, "openai")`,
  as Azure keeps each account's files, jobs and batches apart), large payloads (uploaded files) under its
  `blob_dir()`.
- `faults`: rules posted to `/_emulator/faults` apply to every route of every Blueprint (a `before_request`
  hook on the app): error status + ARM error body + Retry-After, a delay, or a long-running operation that
  ends Failed (`faults.pending_operation_failure()` hands the injected error to the code creating it).
- `arm.error(status, code, message)`: the `{"error": {"code", "message"}}` body Azure's SDKs parse.
- `sdk_check.problem(body, Model)`: ARM bodies held to the azure-mgmt SDK models (unknown, read-only and
  out-of-enum members are refused with `InvalidRequestContent`).
- `catalog`: the emulator's own model catalogue in the shape of ARM's models.list (not jobs/reference/models.yaml).
- With `FTOPS_AZURE_EMULATOR_EXCHANGE_LOG` set, every exchange is appended to that JSONL file; the test suite
  validates them against Azure's REST specs (tests/fixtures/azure_spec.py). What the emulator invents rather than
  checks (answers, loss curves, timings, ids) is listed in the README, "What the emulator invents".
"""

NO_SUCH_ACCOUNT_HEADER = "x-ftops-emulator-no-such-account"
"""Set (to the account's name) on the emulator's refusal of a data-plane request for an account its ARM state does
not hold; `jobs.clients` reads it (from loopback endpoints only) to print the line it prints when an account's
host does not resolve on Azure. Here, not in `openai`, so the client side can import it without Flask."""
