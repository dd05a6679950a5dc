# segbench's development shell: Nix pins the toolchain, uv.lock pins the Python packages.
#
#   nix develop            # Python 3.11, uv, just, hadolint, git (and podman on Linux)
#   uv sync --locked       # the packages of uv.lock, as everywhere else
#   uv run segbench run    # then the README's two commands
#   uv run --dev pytest
#
# nixpkgs is locked in flake.lock to a nixos-25.11 revision. This project's CI parses and
# evaluates this file (tests/test_nix.py, against a stand-in nixpkgs); it does not build it.
{
  description = "segbench: a reproducible training-speed benchmark of the CV-net segmentation model";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "aarch64-darwin"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      devShells = forAllSystems (
        pkgs:
        let
          inherit (pkgs) lib stdenv;
          isLinux = stdenv.hostPlatform.isLinux;
          python = pkgs.python311;
          # PyPI's manylinux wheels (TensorFlow, numpy, jaxlib, …) expect an FHS system's
          # libstdc++ and zlib, which NixOS does not put on the loader's path; the NVIDIA driver's
          # libcuda lives in /run/opengl-driver/lib there. Harmless on other Linux systems.
          wheelLibraries = lib.makeLibraryPath [
            stdenv.cc.cc.lib
            pkgs.zlib
          ];
        in
        {
          default = pkgs.mkShell {
            packages = [
              python
              pkgs.uv
              pkgs.just
              pkgs.hadolint
              pkgs.git
            ]
            ++ lib.optionals isLinux [ pkgs.podman ];
            env = {
              # uv uses this interpreter and never downloads one of its own.
              UV_PYTHON = "${python}/bin/python3.11";
              UV_PYTHON_DOWNLOADS = "never";
            }
            // lib.optionalAttrs isLinux {
              LD_LIBRARY_PATH = "${wheelLibraries}:/run/opengl-driver/lib";
            };
            shellHook = ''
              echo "segbench (nix develop): uv sync --locked, then uv run segbench run / uv run --dev pytest"
            '';
          };
        }
      );
    };
}
