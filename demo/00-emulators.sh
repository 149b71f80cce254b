#!/usr/bin/env bash
# Stage 0: start the emulators the local environment runs on.
set -euo pipefail
ftops env list
ftops local up
