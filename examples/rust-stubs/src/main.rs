//! Calls jobqueue with the stubs build.rs generates from the protos: enqueues a job, reads it
//! back, and decodes the error details of a refused call (docs/workers.md).
use prost::Message;
use prost_types::{value::Kind, Struct, Value};

pub mod google {
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}
pub mod jobqueue {
    pub mod v1 {
        tonic::include_proto!("jobqueue.v1");
    }
}

use google::rpc::{BadRequest, ErrorInfo};
use jobqueue::v1::{
    job_queue_service_client::JobQueueServiceClient, EnqueueRequest, GetStatusRequest,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = std::env::var("JOBQ_TARGET").unwrap_or_else(|_| "localhost:50051".into());
    let mut client = JobQueueServiceClient::connect(format!("http://{target}")).await?;

    let greeting = Value {
        kind: Some(Kind::StringValue("hello from Rust".into())),
    };
    let payload = Struct {
        fields: [("greeting".to_string(), greeting)].into(),
    };
    let request = EnqueueRequest {
        queue: "stubs-demo".into(),
        payload: Some(payload),
        ..Default::default()
    };
    let job_id = client.enqueue(request).await?.into_inner().job_id;
    println!("enqueued {job_id}");

    let job = client
        .get_status(GetStatusRequest { job_id })
        .await?
        .into_inner()
        .job
        .unwrap_or_default();
    println!("state {}", job.state().as_str_name());

    let bad = GetStatusRequest {
        job_id: "not-a-job-id".into(),
    };
    let refused = client
        .get_status(bad)
        .await
        .expect_err("the server refuses a malformed job id");
    let (reason, field) = reason_and_field(&refused)?;
    println!(
        "refused code {} reason {reason} field {field}",
        refused.code() as i32
    );
    Ok(())
}

/// The ErrorInfo reason and the BadRequest field that a refusal's google.rpc.Status carries.
fn reason_and_field(refused: &tonic::Status) -> Result<(String, String), prost::DecodeError> {
    let (mut reason, mut field) = (String::new(), String::new());
    for detail in google::rpc::Status::decode(refused.details())?.details {
        match detail.type_url.rsplit('/').next() {
            Some("google.rpc.ErrorInfo") => {
                reason = ErrorInfo::decode(detail.value.as_slice())?.reason
            }
            Some("google.rpc.BadRequest") => {
                let violations = BadRequest::decode(detail.value.as_slice())?.field_violations;
                field = violations
                    .into_iter()
                    .next()
                    .map(|v| v.field)
                    .unwrap_or_default();
            }
            _ => {}
        }
    }
    Ok((reason, field))
}
