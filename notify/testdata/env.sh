#!/bin/sh
# Test double of a NOTIFY_SCRIPT: writes its environment, one VAR=value a
# line, to env next to itself.
env > "$(dirname "$0")/env.tmp"
mv "$(dirname "$0")/env.tmp" "$(dirname "$0")/env"
