//! `weft-controller`: see DESIGN.md. Not implemented yet.

fn main() {
    eprintln!("weft-controller: not implemented yet");
    std::process::exit(1);
}
