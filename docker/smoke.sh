#!/usr/bin/env bash
# Build the segbench-cpu image with podman/buildah (no Docker daemon needed) and smoke-test it:
# `doctor` and `run --preset smoke` inside the container, the result JSON read back from the
# mounted folder and checked, and a read-only /results refused. Storage is private to this run
# and removed afterwards.
#
#   bash docker/smoke.sh          # segbench-cpu (CI runs this)
#   bash docker/smoke.sh cuda     # segbench-cuda, opt-in (3 GB of CUDA wheels): builds it and
#                                 # checks its default run stops in one line without a GPU
#
# Where no registry is reachable (CI), the base image the Dockerfile names is made locally:
# debootstrap of Debian bookworm with python3, imported and tagged as that image.
# Env: SEGBENCH_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt) is passed as the `ca`
# build secret, for networks behind a TLS-intercepting proxy.
set -euo pipefail
cd "$(dirname "$0")/.."

FLAVOUR=${1:-cpu}
case "$FLAVOUR" in cpu|cuda) ;; *) echo "usage: docker/smoke.sh [cpu|cuda]" >&2; exit 2 ;; esac
BASE=docker.io/library/python:3.11-slim-bookworm
IMAGE=localhost/segbench-$FLAVOUR:smoke
CA_BUNDLE=${SEGBENCH_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
ROOTFS_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/segbench/bookworm-python3-rootfs.tar
started=$(date +%s)
say() { printf '== docker/smoke.sh [%4ss] %s\n' "$(($(date +%s) - started))" "$*"; }

missing=()
for tool in podman buildah debootstrap runc; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah debootstrap runc uidmap >/dev/null
fi

work=$(mktemp -d /var/tmp/segbench-smoke.XXXXXX)
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
# runc: crun fails on hybrid cgroups; the ulimits keep pip and TensorFlow within the sandbox's limits.
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "vfs"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
cleanup() {
  podman system reset -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

if ! podman image exists "$BASE"; then
  if [ ! -s "$ROOTFS_CACHE" ]; then
    say "debootstrap bookworm (minbase + python3) for the base image"
    rootfs=$work/rootfs
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,passwd,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log"; exit 1; }
    mkdir -p "$(dirname "$ROOTFS_CACHE")"
    tar -C "$rootfs" -cf "$ROOTFS_CACHE.tmp" . && mv "$ROOTFS_CACHE.tmp" "$ROOTFS_CACHE"
    rm -rf "$rootfs"
  fi
  say "importing the base image as $BASE"
  podman import --quiet "$ROOTFS_CACHE" "$BASE" >/dev/null
fi

say "a build without the lock export fails at once, naming the file"
context=$work/no-export
mkdir -p "$context/docker"
cp "docker/Dockerfile.$FLAVOUR" "$context/docker/"
if podman build --layers=false --isolation chroot --pull=never -f "docker/Dockerfile.$FLAVOUR" \
     "$context" >"$work/no-export.log" 2>&1; then
  echo "expected the build to fail without envs/" >&2; exit 1
fi
grep -q "envs/linux-x86_64-$FLAVOUR/requirements.txt" "$work/no-export.log" \
  || { cat "$work/no-export.log" >&2; exit 1; }

say "building $IMAGE from docker/Dockerfile.$FLAVOUR"
build=(podman build --layers=false --isolation chroot --network host --pull=never
       -f "docker/Dockerfile.$FLAVOUR" -t "$IMAGE"
       --build-arg "UV_LOCK_SHA256=$(sha256sum uv.lock | cut -d' ' -f1)"
       --build-arg "GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
[ -s "$CA_BUNDLE" ] && build+=(--secret "id=ca,src=$CA_BUNDLE")
"${build[@]}" . >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
say "image built: $(podman image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.2f GB", $1/1e9}')"

if [ "$FLAVOUR" = cuda ]; then
  say "the default run without a GPU stops in one line"
  if podman run --rm --network none "$IMAGE" 2>"$work/nogpu.err"; then
    echo "expected a failure without a GPU" >&2; exit 1
  fi
  expected="error: no NVIDIA GPU visible: run with --gpus all and the NVIDIA Container Toolkit"
  # Beside the phase lines of a piped run ("[   4.2 s] importing …"), that one line.
  [ "$(grep -v '^\[ *[0-9.]* s\] ' "$work/nogpu.err")" = "$expected" ] || { cat "$work/nogpu.err" >&2; exit 1; }
  say "passed"
  exit 0
fi

say "segbench doctor in the container"
podman run --rm --network none "$IMAGE" doctor --json >"$work/doctor.json"

say "segbench run --preset smoke in the container"
mkdir -p "$work/results" && chmod 0777 "$work/results"
# No --out: the image's SEGBENCH_OUT sends results to /results, as in the README's example.
podman run --rm --network none -v "$work/results:/results" "$IMAGE" run --preset smoke

say "checking the result read back from the mounted folder"
python3 - "$work" "$(sha256sum uv.lock | cut -d' ' -f1)" <<'EOF'
import json, pathlib, sys
work, lock_sha = pathlib.Path(sys.argv[1]), sys.argv[2]
checks = {c["id"]: c for c in json.loads((work / "doctor.json").read_text())["checks"]}
assert all(c["status"] != "FAIL" for c in checks.values()), checks
assert checks["packages"]["status"] == "PASS", checks["packages"]
files = list((work / "results").glob("segbench-smoke-cpu-*.json"))
assert len(files) == 1, files
result = json.loads(files[0].read_text())
assert result["status"] == "complete" and result["forced"] is False
assert result["summary"]["steps"] == 4 and result["summary"]["median_ms"] > 0
assert result["environment"]["packages"]["tensorflow"] == "2.19.1"
assert result["environment"]["uv_lock_sha256"] == lock_sha
print(f"   result ok: median {result['summary']['median_ms']:.1f} ms/step, doctor {len(checks)} checks")
EOF

say "a read-only /results is refused in one line"
mkdir -p "$work/readonly"
if podman run --rm --network none -v "$work/readonly:/results:ro" "$IMAGE" run --preset smoke \
     2>"$work/ro.err"; then
  echo "expected a failure with a read-only /results" >&2; exit 1
fi
grep -q "not writable" "$work/ro.err" || { cat "$work/ro.err" >&2; exit 1; }
[ "$(wc -l <"$work/ro.err")" -eq 1 ] || { cat "$work/ro.err" >&2; exit 1; }

say "passed"
