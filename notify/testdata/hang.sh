#!/bin/sh
# Test double of a NOTIFY_SCRIPT that hangs with a child process: the
# timeout must kill both (the child's pid is left in child, next to the
# script).
sleep 60 &
echo $! > "$(dirname "$0")/child"
wait
