//! Generates the gRPC example's code from `proto/whoami.proto` with protox (a protobuf compiler
//! in Rust): no `protoc` needed, so `cargo test --workspace` needs only the Rust toolchain.

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(["whoami.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Server reflection serves the descriptors, so tools like grpcurl work without the file.
    std::fs::write(
        out.join("whoami_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
