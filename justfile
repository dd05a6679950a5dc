# segbench tasks. `uv run --dev just --list` shows them; rust-just comes with the dev dependencies.

set shell := ["bash", "-euo", "pipefail", "-c"]

# A container engine that can run here: docker with a reachable daemon, else podman.
engine := `if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker; elif command -v podman >/dev/null 2>&1; then echo podman; elif command -v docker >/dev/null 2>&1; then echo docker-down; else echo none; fi`

# Provenance labels for the images, and the optional CA bundle secret.
build-args := "--build-arg UV_LOCK_SHA256=" + `sha256sum uv.lock | cut -d' ' -f1` + " --build-arg GIT_COMMIT=" + `git rev-parse HEAD 2>/dev/null || echo unknown` + " --build-arg SOURCE_URL=" + `git remote get-url origin 2>/dev/null || echo unknown` + (if env("SEGBENCH_CA_BUNDLE", "") != "" { " --secret id=ca,src=" + env("SEGBENCH_CA_BUNDLE", "") } else { "" })

# List the recipes
default:
    @just --list

# macOS arm64: sync the Metal environment, check it, run the quick preset on the Apple GPU
bench-mac: _need-macos
    uv sync --locked
    uv run --locked segbench doctor --expect gpu
    uv run --locked segbench run --preset quick --device gpu

# Run the quick preset in the segbench-cpu container, results in ./results
bench-cpu: _need-engine docker-build-cpu
    mkdir -p results
    {{engine}} run --rm --user "$(id -u):$(id -g)" -v "$PWD/results:/results" segbench-cpu run --preset quick

# Run the quick preset on the NVIDIA GPU in the segbench-cuda container, results in ./results
bench-cuda: _need-engine _need-nvidia docker-build-cuda
    mkdir -p results
    {{engine}} run --rm --user "$(id -u):$(id -g)" {{ if engine == "podman" { "--device nvidia.com/gpu=all" } else { "--gpus all" } }} -v "$PWD/results:/results" segbench-cuda run --preset quick --device gpu

# Check this environment and say what to fix
doctor *ARGS:
    uv run --locked segbench doctor {{ARGS}}

# Write the triangles data set (default: into the cache)
data *ARGS:
    uv run --locked segbench data {{ARGS}}

# N local workers of one multi-worker run (README: "More than one GPU or machine")
launch WORKERS *ARGS:
    uv run --locked segbench launch --workers {{WORKERS}} -- run {{ARGS}}

# Compare result files side by side
compare +FILES:
    uv run --locked segbench compare {{FILES}}

# Run the tests
test *ARGS:
    uv run --locked --dev pytest {{ARGS}}

# Lint Python (ruff), the Dockerfiles (hadolint) and the GitHub workflow (actionlint, Linux)
lint:
    uv run --locked --dev ruff check .
    uv run --locked --dev ruff format --check .
    if compgen -G "docker/Dockerfile.*" >/dev/null; then uv run --locked --dev hadolint docker/Dockerfile.*; fi
    if [ -x .venv/bin/actionlint ]; then uv run --locked --dev actionlint; else echo "actionlint: Linux only, skipped"; fi

# Enter the Nix dev shell (flake.nix): then `uv sync --locked`, `uv run segbench run`, `uv run --dev pytest`
nix-develop:
    nix --extra-experimental-features "nix-command flakes" develop

# Parse flake.nix and evaluate its dev shells against the stand-in nixpkgs (needs nix-instantiate)
nix-check:
    nix-instantiate --parse flake.nix >/dev/null
    nix-instantiate --eval --strict --json tests/nix/evaluate.nix
    uv run --locked --dev pytest -n 0 tests/test_nix.py

# Re-check TensorFlow × tensorflow-metal pairs from the macOS wheels (downloads ~2.5 GB once)
metal-pairs *PAIRS:
    uv run --with 'lief>=0.16' --with pip python envs/metal_pairs.py {{PAIRS}}

# Rewrite segbench/results/result.schema.json from the result dataclasses (a test fails when it is stale)
schema:
    uv run --locked python -c 'from segbench.results.result import write_schema; print(write_schema())'

# Recompute the numerics check's CPU float32 reference (segbench/measure/numerics_reference.json; a test fails when it is stale)
numerics-reference:
    uv run --locked --dev python -m segbench.measure.numerics

# Re-lock: uv.lock, the envs/ exports, then conda-lock where conda-forge is reachable
lock:
    uv lock
    uv run --locked python envs/export.py
    uv run --locked python envs/conda_lock.py

# Build the segbench-cpu image (SEGBENCH_CA_BUNDLE=file passes a proxy's CA bundle)
docker-build-cpu: _need-engine (_need-file "docker/Dockerfile.cpu")
    {{engine}} build -f docker/Dockerfile.cpu -t segbench-cpu {{build-args}} .

# Build the segbench-cuda image (about 3 GB of CUDA wheels; SEGBENCH_CA_BUNDLE as above)
docker-build-cuda: _need-engine (_need-file "docker/Dockerfile.cuda")
    {{engine}} build -f docker/Dockerfile.cuda -t segbench-cuda {{build-args}} .

# Build segbench-cpu with podman where no registry or daemon is reachable, and smoke-test it
docker-smoke:
    bash docker/smoke.sh

# The same for segbench-cuda (opt-in: 3 GB of CUDA wheels): build it, check the no-GPU message
docker-smoke-cuda:
    bash docker/smoke.sh cuda

[no-exit-message]
_need-macos:
    @if [ "$(uname -s)-$(uname -m)" != "Darwin-arm64" ]; then echo "error: bench-mac needs macOS on Apple silicon (this is $(uname -s) $(uname -m)); try: just bench-cpu" >&2; exit 1; fi

[no-exit-message]
_need-engine:
    @if [ "{{engine}}" = docker-down ]; then echo "error: docker is installed but its daemon does not answer (docker info failed): start Docker Desktop or the docker service (sudo systemctl start docker), or install podman" >&2; exit 1; fi
    @if [ "{{engine}}" = none ]; then echo "error: no container engine: install Docker (with a running daemon) or podman" >&2; exit 1; fi

[no-exit-message]
_need-nvidia:
    @if ! nvidia-smi -L >/dev/null 2>&1; then echo "error: no NVIDIA GPU visible (nvidia-smi finds none): bench-cuda needs one, plus the NVIDIA Container Toolkit" >&2; exit 1; fi

[no-exit-message]
_need-file path:
    @if [ ! -f "{{path}}" ]; then echo "error: {{path}} is missing; it is needed for this recipe" >&2; exit 1; fi

# Regenerate docs/cli.md, docs/result-file.md, docs/figures.md and the generated blocks in README.md and docs/ (a test fails when they are stale)
docs:
    uv run --locked python docs/generate.py
    uv run --locked python docs/figures.py

# The same, and redraw docs/trace-example.png and docs/compare-example.png from the committed results
docs-figures:
    uv run --locked python docs/generate.py
    uv run --locked --extra plot python docs/figures.py --png

# Redraw the report's screenshots (docs/report-example.png and its 360-px view) from community/ with headless Chromium
report-screenshots:
    uv run --locked segbench report community -o "${TMPDIR:-/tmp}/segbench-report.html"
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1400 --screenshot=docs/report-example.png "file://${TMPDIR:-/tmp}/segbench-report.html"
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=360,1400 --screenshot=docs/report-example-360px.png "file://${TMPDIR:-/tmp}/segbench-report.html"
