# A stand-in for the nixpkgs flake input, for evaluating flake.nix where nixpkgs cannot be
# fetched (tests/test_nix.py). Every package is a small attribute set that records its name, so
# the evaluation says exactly which packages each devShell asks for; mkShell returns its
# arguments. Only the few lib functions flake.nix uses are provided: a new one fails loudly here.
let
  systems = [
    "x86_64-linux"
    "aarch64-linux"
    "aarch64-darwin"
    "x86_64-darwin"
  ];
  lib = {
    genAttrs =
      names: f:
      builtins.listToAttrs (
        map (name: {
          inherit name;
          value = f name;
        }) names
      );
    optionals = condition: list: if condition then list else [ ];
    optionalAttrs = condition: attrs: if condition then attrs else { };
    makeLibraryPath = packages: builtins.concatStringsSep ":" (map (p: "${p}/lib") packages);
  };
  package = system: pname: {
    inherit pname system;
    type = "derivation";
    outPath = "/nix/store/stand-in-${pname}";
  };
  packagesFor =
    system:
    let
      p = package system;
      isLinux = builtins.match ".*-linux" system != null;
    in
    {
      inherit lib;
      stdenv = {
        hostPlatform = {
          inherit system isLinux;
          isDarwin = !isLinux;
        };
        cc.cc.lib = p "libstdc++";
      };
      mkShell = arguments: arguments // { stand-in = "mkShell"; };
      python311 = p "python3.11";
      uv = p "uv";
      just = p "just";
      hadolint = p "hadolint";
      git = p "git";
      podman = p "podman";
      zlib = p "zlib";
    };
in
{
  inherit lib;
  legacyPackages = lib.genAttrs systems packagesFor;
}
