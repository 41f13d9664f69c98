//! `weft-crdgen [DIR]`: writes Weft's CRD manifests (default: `deploy/crds` of this checkout).
//! Run it after changing a type in `api/src`; the `crds_are_current` test tells when you forgot.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds"));
    let files = match weft_api::crdgen::render_all() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("weft-crdgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("weft-crdgen: creating {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, yaml) in files {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, yaml) {
            eprintln!("weft-crdgen: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
