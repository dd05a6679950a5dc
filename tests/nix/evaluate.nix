# flake.nix's outputs evaluated against the stand-in nixpkgs (tests/test_nix.py): for each
# system, the packages its devShell asks for and the environment it sets.
let
  flake = import ../../flake.nix;
  outputs = flake.outputs {
    self = outputs;
    nixpkgs = import ./stand-in-nixpkgs.nix;
  };
in
{
  nixpkgs = flake.inputs.nixpkgs.url;
  devShells = builtins.mapAttrs (system: shells: {
    names = builtins.attrNames shells;
    packages = map (p: p.pname) shells.default.packages;
    env = shells.default.env;
    shellHook = shells.default.shellHook;
  }) outputs.devShells;
}
