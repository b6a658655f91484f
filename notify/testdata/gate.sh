#!/bin/sh
# Test double of a NOTIFY_SCRIPT: appends its arguments as a line to log
# next to itself; the first run waits (10 s at most) for a file named open
# there, leaving waiting meanwhile.
dir=$(dirname "$0")
if [ ! -e "$dir/waiting" ]; then
	: > "$dir/waiting"
	i=0
	while [ ! -e "$dir/open" ] && [ $i -lt 1000 ]; do
		sleep 0.01
		i=$((i + 1))
	done
fi
cat > /dev/null
echo "$@" >> "$dir/log"
