#!/usr/bin/env bash
# Builds the OCI demo app (apps/oci-wordcount) with podman and saves it to
# target/apps/oci-wordcount.tar; prints the archive's sha256 (the app's registry checksum).
# Needs podman, runc and busybox-static (apt-get install podman runc busybox-static).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v podman >/dev/null || { echo "podman is not installed: apt-get install podman runc" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "a static busybox is needed: apt-get install busybox-static" >&2; exit 1; }
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp apps/oci-wordcount/Containerfile apps/oci-wordcount/count.sh /bin/busybox "$ctx"/
conf="$ctx/containers.conf"
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' > "$conf"
mkdir -p target/apps
CONTAINERS_CONF="$conf" podman build --quiet --tag localhost/xiebao-oci-wordcount:1 "$ctx" >/dev/null
rm -f target/apps/oci-wordcount.tar
CONTAINERS_CONF="$conf" podman save --quiet --output target/apps/oci-wordcount.tar localhost/xiebao-oci-wordcount:1
sha256sum target/apps/oci-wordcount.tar
