//! `weft-placement`: see DESIGN.md. Not implemented yet.

fn main() {
    eprintln!("weft-placement: not implemented yet");
    std::process::exit(1);
}
