//! `weftctl`: the command line in front of the northbound API and the lab.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["lab", "demo", ..] => {
            println!("weftctl lab demo: not yet — the lab arrives with the lab issue.");
            println!(
                "Today Weft has its OpenFlow codec and switch session; run the tests to see them work against Open vSwitch."
            );
        }
        _ => {
            eprintln!("usage: weftctl lab demo");
            std::process::exit(2);
        }
    }
}
