#!/usr/bin/env bash
# Prepares this host for Agora's Docker side: installs docker.io when missing, starts
# dockerd when it is not running, initialises a single-node swarm, and builds the local
# base images when they are missing (no public registry is reachable here):
#   agora/busybox:latest        busybox-static, 2 MB, for fast tests
#   agora/hello-web:latest      the same serving a page on 8080 by default, for demos
#   debian:bookworm-slim        debootstrap minbase, for real services
# Idempotent; quick when everything is in place. Run as root.
set -euo pipefail

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
need_apt_update=1
apt_install() {
    if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ -x /bin/busybox ] && /bin/busybox --help 2>&1 | grep -q static || dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    say "Installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
    say "Starting dockerd"
    mkdir -p /var/log/agora
    # no-new-privileges for every container: API 1.41 cannot set it on swarm services.
    nohup dockerd --no-new-privileges >/var/log/agora/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/agora/dockerd.log" >&2; exit 1; }
fi

if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    say "Initialising a single-node swarm"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi

if ! docker image inspect agora/busybox:latest >/dev/null 2>&1 || ! docker image inspect agora/hello-web:latest >/dev/null 2>&1; then
    say "Building agora/busybox:latest from busybox-static"
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    mkdir -p "$dir/bin" "$dir/tmp" "$dir/www" "$dir/etc"
    cp /bin/busybox "$dir/bin/busybox"
    for applet in $("$dir/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
    echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>"$dir/etc/passwd"
    echo 'root:x:0:' >"$dir/etc/group"
    tar -C "$dir" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - agora/busybox:latest >/dev/null
    docker tag agora/busybox:latest busybox:latest
    # The same with a web page served by default: a long-running image for demos and normative templates.
    echo '<h1>Served by Agora</h1>' >"$dir/www/index.html"
    tar -C "$dir" -c . | docker import -c 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]' -c 'ENV PATH=/bin' \
        -c 'EXPOSE 8080' - agora/hello-web:latest >/dev/null
    rm -rf "$dir"; trap - EXIT
fi

if [ "${AGORA_SKIP_DEBIAN_IMAGE:-0}" != 1 ] && ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    say "Building debian:bookworm-slim with debootstrap (about a minute)"
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    debootstrap --variant=minbase bookworm "$dir" >/var/log/agora-debootstrap.log 2>&1 \
        || { echo "debootstrap failed; see /var/log/agora-debootstrap.log" >&2; exit 1; }
    tar -C "$dir" -c . | docker import -c 'CMD ["/bin/bash"]' - debian:bookworm-slim >/dev/null
    rm -rf "$dir"; trap - EXIT
fi
say "Docker is ready: $(docker info --format '{{.ServerVersion}}, swarm {{.Swarm.LocalNodeState}}')"
