//! Compiles `romlib/manifest.proto` with protox (pure Rust): no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=romlib/manifest.proto");
    let fds = protox::compile(["romlib/manifest.proto"], ["."])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
