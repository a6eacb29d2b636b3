//! `romlib-device`: the handheld's command line.

fn main() {
    eprintln!("romlib-device: not built yet");
    std::process::exit(1);
}
