//! `weft-cni`: see DESIGN.md. Not implemented yet.

fn main() {
    eprintln!("weft-cni: not implemented yet");
    std::process::exit(1);
}
