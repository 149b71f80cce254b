"""`python -m jobs.local.azure_emulator --port P --state-dir D`: serve the emulator on loopback, threaded."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from werkzeug.serving import run_simple

from jobs.local.azure_emulator.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m jobs.local.azure_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback only by default)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True, help="where the state is kept across restarts")
    parser.add_argument("--op-delay", type=float, default=0.2,
                        help="seconds a long-running operation stays in progress (default 0.2)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, create_app(args.state_dir, op_delay_s=args.op_delay), threaded=True)


if __name__ == "__main__":
    main()
