#!/bin/sh
# Test double of a NOTIFY_SCRIPT that hangs with a child process: the
# timeout must kill both (the child's pid is left in $NOTIFY_TEST_DIR/child).
sleep 60 &
echo $! > "${NOTIFY_TEST_DIR:?}/child"
wait
