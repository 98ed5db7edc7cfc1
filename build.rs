//! Generates the gRPC code from `proto/` with a vendored `protoc` (no system install needed),
//! and serde for its messages (proto3 JSON mapping) with pbjson from the same descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("showfloor_descriptor.bin");
    // prost-build looks for `protoc` through this variable.
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_protos(
            &[
                "proto/showfloor/v1/control.proto",
                "proto/showfloor/v1/reports.proto",
            ],
            &["proto"],
        )?;
    // Keys keep the proto's snake_case names, and every field is printed, defaults included,
    // so a script can read `total_cents` of an empty order list without a missing key.
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptor_path)?)?
        .preserve_proto_field_names()
        .emit_fields()
        .build(&[".showfloor.v1"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
