# Docker for the testcontainers-* conformance suites; sourced by scripts/test.
#
# tc_setup: installs docker.io when missing, uses the Docker daemon that
# answers (DOCKER_HOST, else /var/run/docker.sock) or starts one of ours
# (never with Docker's defaults: no bridge, no iptables rules, no NAT), builds
# the Redis, ZooKeeper and etcd images from the servers installed on this
# machine (nothing is pulled), and exports the settings the fixtures read:
# DOCKER_HOST, FENCELOCK_DOCKER_NETWORK=host and FENCELOCK_DOCKER_IMAGE_*.
# tc_teardown: removes the fixtures' containers left behind and stops the
# daemon only if tc_setup started it (by PID).
#
# Images are `fencelock-test/<store>:<hash>`, the hash taken over the root
# file system and the image settings, so a rerun reuses them; older tags of
# the same store are removed when a new one is built.

tc_root=/run/fencelock-docker        # our daemon's socket, pid file, exec root
tc_data=/var/lib/fencelock-docker    # its images (kept between runs: the cache)
tc_started_pid=

tc_say() { echo "== docker: $*"; }

tc_answers() { timeout 5 docker info >/dev/null 2>&1; }

tc_daemon() {
  if tc_answers; then
    tc_say "using the daemon at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
    return 0
  fi
  export DOCKER_HOST=unix://$tc_root/docker.sock
  mkdir -p "$tc_root"
  if [ -S "$tc_root/docker.sock" ] && tc_answers; then
    # ours, left behind by a run that was killed: stop it at the end
    tc_started_pid=$(cat "$tc_root/dockerd.pid" 2>/dev/null)
    tc_say "reusing our daemon (PID $tc_started_pid) left by an earlier run"
    return 0
  fi
  command -v dockerd >/dev/null || { echo "dockerd not found: install docker.io" >&2; return 1; }
  # --bridge=none --iptables=false --ip-masq=false: no docker0 bridge, no
  # iptables rules or FORWARD policy change, no NAT; containers run on the
  # host network only.
  setsid dockerd --bridge=none --iptables=false --ip-masq=false \
    --host "$DOCKER_HOST" --pidfile "$tc_root/dockerd.pid" \
    --data-root "$tc_data" --exec-root "$tc_root/exec" \
    </dev/null >"$tc_root/dockerd.log" 2>&1 &
  tc_started_pid=$!
  local i
  for i in $(seq 100); do
    tc_answers && { tc_say "started dockerd (PID $tc_started_pid)"; return 0; }
    kill -0 "$tc_started_pid" 2>/dev/null || break
    sleep 0.3
  done
  echo "dockerd did not come up; its log:" >&2
  tail -20 "$tc_root/dockerd.log" >&2
  return 1
}

# Prints, one a line and without the leading /, the regular files under the
# given paths (symbolic links followed) and every library ldd names for the
# executables and shared objects among them.
tc_files() {
  local f
  find -L "$@" -type f 2>/dev/null | sort -u | while read -r f; do
    echo "${f#/}"
    case $f in
      */bin/*|*.so|*.so.*)
        ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | xargs -r realpath -s -m | sed 's|^/||' ;;
    esac
  done | sort -u
}

# tc_image STORE FILELIST STAGE CHANGE...: the image of STORE made of the
# files listed in FILELIST (relative to /) plus the tree in STAGE, with the
# `docker import --change` settings CHANGE...; prints its reference.
tc_image() {
  local store=$1 list=$2 stage=$3; shift 3
  local tarcmd=(tar -c --dereference --sort=name --mtime=@0
    --owner=0 --group=0 --numeric-owner -C / -T "$list" -C "$stage" .)
  local hash
  hash=$({ printf '%s\n' "$@"; "${tarcmd[@]}"; } | sha256sum | cut -c1-16) || return 1
  local ref=fencelock-test/$store:$hash
  if docker image inspect "$ref" >/dev/null 2>&1; then
    echo "$ref"
    return 0
  fi
  local changes=() c
  for c in "$@"; do changes+=(--change "$c"); done
  "${tarcmd[@]}" | docker import "${changes[@]}" - "$ref" >/dev/null || return 1
  # older builds of this store: not needed any more
  docker image ls --format '{{.Repository}}:{{.Tag}}' "fencelock-test/$store" |
    grep -vx "$ref" | xargs -r docker image rm >/dev/null 2>&1
  echo "$ref"
}

tc_images() {
  local work
  work=$(mktemp -d) || return 1
  mkdir -p "$work/stage/tmp" "$work/stage/data" "$work/stage/conf"
  chmod 1777 "$work/stage/tmp"
  local env='ENV PATH=/usr/local/bin:/usr/bin:/bin'
  local ok=0

  tc_files "$(command -v redis-server)" >"$work/redis"
  FENCELOCK_DOCKER_IMAGE_REDIS=$(tc_image redis "$work/redis" "$work/stage" "$env") || ok=1

  tc_files "$(command -v etcd)" >"$work/etcd"
  FENCELOCK_DOCKER_IMAGE_ETCD=$(tc_image etcd "$work/etcd" "$work/stage" "$env") || ok=1

  # the JVM the local fixture uses, and the ZooKeeper jars with what they
  # name on their class path (all under /usr/share/java)
  local java_home
  java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  tc_files "$java_home/bin/java" "$java_home/lib" "$java_home/conf" "$java_home/release" \
    /usr/share/java | grep -v '/ct\.sym$' >"$work/zookeeper"
  cp /etc/zookeeper/conf_example/log4j.properties "$work/stage/conf/"
  local cp=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar
  FENCELOCK_DOCKER_IMAGE_ZOOKEEPER=$(tc_image zookeeper "$work/zookeeper" "$work/stage" \
    "ENV PATH=$java_home/bin:/usr/bin:/bin" \
    "CMD [\"java\", \"-Xms32m\", \"-Xmx128m\", \"-XX:+UseSerialGC\", \"-XX:-UsePerfData\", \
\"-Dzookeeper.root.logger=INFO,CONSOLE\", \"-Dlog4j.configuration=file:/conf/log4j.properties\", \
\"-cp\", \"$cp\", \"org.apache.zookeeper.server.quorum.QuorumPeerMain\", \"/conf/zoo.cfg\"]") || ok=1

  rm -rf "$work"
  [ "$ok" = 0 ] || { echo "building the images failed" >&2; return 1; }
  export FENCELOCK_DOCKER_IMAGE_REDIS FENCELOCK_DOCKER_IMAGE_ETCD FENCELOCK_DOCKER_IMAGE_ZOOKEEPER
  export FENCELOCK_DOCKER_NETWORK=host
  tc_say "images $FENCELOCK_DOCKER_IMAGE_REDIS $FENCELOCK_DOCKER_IMAGE_ZOOKEEPER $FENCELOCK_DOCKER_IMAGE_ETCD"
}

tc_setup() {
  if ! command -v dockerd >/dev/null 2>&1 && ! tc_answers; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      tc_say "installing docker.io"
      # The package's scripts would start dockerd with its defaults (a
      # bridge, iptables rules, br_netfilter): forbid that for the install.
      local policy=
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
      fi
      local rc=0
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends docker.io; } >/dev/null || rc=1
      [ -z "$policy" ] || rm -f "$policy"
      [ "$rc" = 0 ] || { echo "apt-get install docker.io failed" >&2; return 1; }
    else
      echo "no Docker daemon answers and dockerd is missing: install docker.io" >&2
      return 1
    fi
  fi
  tc_daemon && tc_images
}

tc_teardown() {
  tc_answers || return 0
  docker ps -aq --filter label=fencelock.fixture | xargs -r docker rm -f -v >/dev/null 2>&1
  [ -n "$tc_started_pid" ] || return 0
  kill -TERM "$tc_started_pid" 2>/dev/null
  local i
  for i in $(seq 100); do
    kill -0 "$tc_started_pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$tc_started_pid" 2>/dev/null
  tc_say "stopped dockerd (PID $tc_started_pid)"
  tc_started_pid=
}
