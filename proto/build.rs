//! Generates the protobuf types with protox (a Rust protobuf compiler), so building
//! needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "protos/tern/v1/envelope.proto",
        "protos/tern/v1/control.proto",
        "protos/tern/v1/gossip.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["protos"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
