#!/bin/sh
# Live-migrates a running skiff VM to another host with `skiff ctl`.
#
#   scripts/migrate-example.sh SRC_SOCKET DEST_RUN DEST_ADDR PORT DEST_SOCKET -- VM-OPTIONS...
#
#   SRC_SOCKET   control socket of the running source (skiff run --api-socket)
#   DEST_RUN     how to run a command on the destination host, e.g.
#                "ssh root@hostB" or "ip netns exec hostB" ("" = this host)
#   DEST_ADDR    the destination's address as the source reaches it
#   PORT         TCP port the destination listens on
#   DEST_SOCKET  control socket for the destination skiff (on its host)
#   VM-OPTIONS   the source's `skiff run` options (same kernel, --memory,
#                --cpus, --disk ... : the destination checks them). Disks
#                must be reachable under the given paths on both hosts.
#
# Steps: start `skiff run VM-OPTIONS --incoming tcp:0.0.0.0:PORT
# --api-socket DEST_SOCKET` on the destination (in the background; its
# stdout and stderr in DEST_SOCKET.console), wait until it is listening, then
# `skiff ctl SRC_SOCKET migrate tcp:DEST_ADDR:PORT`, which shows progress
# and a summary. On success the source skiff has exited and the VM runs on
# the destination; on failure the source VM runs on and the destination
# exits (status 8). Exit status: that of `skiff ctl` (0 = migrated).
#
# Example, two hosts:
#   scripts/migrate-example.sh /run/vm1.sock "ssh root@hostB" 10.0.0.2 4444 \
#       /run/vm1.sock -- --kernel /srv/vm1/bzImage --memory 2G --cpus 2 \
#       --disk path=/shared/vm1.img --serial none
set -eu

SKIFF=${SKIFF:-skiff}
[ $# -ge 6 ] && [ "$6" = "--" ] || { sed -n '2,30p' "$0"; exit 2; }
SRC_SOCK=$1 DEST_RUN=$2 DEST_ADDR=$3 PORT=$4 DEST_SOCK=$5
shift 6

# 1. The destination, waiting for the VM (with ssh, VM-OPTIONS must not
# contain spaces: ssh joins the words into one command line).
# shellcheck disable=SC2086 # DEST_RUN is a command prefix on purpose
$DEST_RUN env DEST_CONSOLE="$DEST_SOCK.console" sh -c \
	'nohup "$0" run "$@" >"$DEST_CONSOLE" 2>&1 </dev/null &' \
	"$SKIFF" "$@" --api-socket "$DEST_SOCK" --incoming "tcp:0.0.0.0:$PORT"

# 2. Wait until its control socket answers (it says "inmigrate").
i=0
until $DEST_RUN "$SKIFF" ctl "$DEST_SOCK" query-status 2>/dev/null | grep -q inmigrate; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "migrate-example: the destination did not come up" >&2; exit 1; }
	sleep 0.1
done

# 3. Migrate, with progress on stderr.
exec "$SKIFF" ctl "$SRC_SOCK" migrate "tcp:$DEST_ADDR:$PORT"
