//! `weft-agent`: see DESIGN.md. Not implemented yet.

fn main() {
    eprintln!("weft-agent: not implemented yet");
    std::process::exit(1);
}
