#!/usr/bin/env bash
# Installs and starts what Railyard needs on this machine when it is missing:
# Docker engine, a static busybox (for local stand-in images), nginx (the edge).
# Idempotent; safe to run before every `make up` / `make test`. Never starts a system sshd.
set -euo pipefail

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] && file_is_static=$(ldd /bin/busybox 2>&1 | grep -c "not a dynamic" || true) || file_is_static=0
[ "${file_is_static}" = "1" ] || need+=(busybox-static)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v git >/dev/null 2>&1 || need+=(git)
# sshd serves the private-repository (deploy key) integration tests on loopback.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)

if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install ${need[*]} (apt-get)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# nginx from Debian starts a system instance on :80; Railyard runs its own master.
if [ -d /run/systemd/system ]; then :; elif pgrep -x nginx >/dev/null 2>&1 && [ -f /run/nginx.pid ]; then
  nginx -s quit 2>/dev/null || true
fi

if ! docker info >/dev/null 2>&1; then
  if [ ! -S /var/run/docker.sock ] || ! docker info >/dev/null 2>&1; then
    echo "==> starting dockerd"
    rm -f /var/run/docker.pid
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
  fi
fi

# No registry is reachable here: build a FROM-scratch stand-in for busybox:stable
# from Debian's static busybox, so Dockerfiles keep their standard FROM lines.
if ! docker image inspect busybox:stable >/dev/null 2>&1; then
  echo "==> building local stand-in image busybox:stable from /bin/busybox"
  ctx=$(mktemp -d)
  cp /bin/busybox "$ctx/busybox"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
DOCKERFILE
  docker build -q -t busybox:stable "$ctx" >/dev/null
  rm -rf "$ctx"
fi
