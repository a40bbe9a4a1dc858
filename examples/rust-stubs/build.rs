//! Generates the client stubs from the repository's protos at build time, with a protoc that
//! comes from crates.io (protoc-bin-vendored), so no protoc needs to be installed.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "../../proto/jobqueue/v1/job_queue_service.proto",
        "../../third_party/proto/google/rpc/error_details.proto",
    ];
    let includes = [
        PathBuf::from("../../proto"),
        PathBuf::from("../../third_party/proto"),
        protoc_bin_vendored::include_path()?,
    ];
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(false)
        .compile_with_config(config, &protos.map(PathBuf::from), &includes)?;
    Ok(())
}
