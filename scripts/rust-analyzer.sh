#!/usr/bin/env bash
# make rust-analyzer: write rust-project.json for the module.
#
# The kernel's generator only finds crate roots whose own directory's Kbuild
# names them; ours (rust/keyagent.rs) is named by the top-level Kbuild, so it
# is added here after the kernel's crates.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KEYAGENT_ROOT"
kdir=${1:-$(scripts/kernel.sh debug)}
ksrc=$(scripts/kernel.sh --src)
sysroot=$(rustc --print sysroot)

python3 "$ksrc/scripts/generate_rust_analyzer.py" --cfgs='core=--cfg no_fp_fmt_parse' 2021 \
	"$ksrc" "$kdir" "$sysroot" "$sysroot/lib/rustlib/src/rust/library" >rust-project.json.tmp
python3 - "$KEYAGENT_ROOT" <<'PY'
import json, sys
root = sys.argv[1]
with open("rust-project.json.tmp") as f:
    project = json.load(f)
crates = project["crates"]
index = {c["display_name"]: i for i, c in enumerate(crates)}
kernel = crates[index["kernel"]]
crates.append({
    "display_name": "keyagent",
    "root_module": f"{root}/rust/keyagent.rs",
    "is_workspace_member": True,
    "deps": [{"crate": index[n], "name": n} for n in ("core", "kernel")],
    "cfg": ["MODULE"] + [c for c in kernel["cfg"] if c != "MODULE"],
    "edition": "2021",
    "env": {"RUST_MODFILE": "This is only for rust-analyzer"},
})
with open("rust-project.json", "w") as f:
    json.dump(project, f, sort_keys=True, indent=4)
PY
rm -f rust-project.json.tmp
say "wrote rust-project.json"
