#!/bin/sh
# Test double of a NOTIFY_SCRIPT: writes its arguments, one a line, to
# $NOTIFY_TEST_DIR/args and its standard input to $NOTIFY_TEST_DIR/stdin.
printf '%s\n' "$@" > "${NOTIFY_TEST_DIR:?}/args.tmp"
cat > "$NOTIFY_TEST_DIR/stdin"
mv "$NOTIFY_TEST_DIR/args.tmp" "$NOTIFY_TEST_DIR/args"
