#!/bin/sh
# Test double of a NOTIFY_SCRIPT that fails.
echo "cannot reach the mail server" >&2
exit 3
