#!/bin/sh
# Test double of a NOTIFY_SCRIPT: writes its arguments, one a line, to
# args and its standard input to stdin, next to itself (the script gets no
# variable to tell it where).
dir=$(dirname "$0")
printf '%s\n' "$@" > "$dir/args.tmp"
cat > "$dir/stdin"
mv "$dir/args.tmp" "$dir/args"
