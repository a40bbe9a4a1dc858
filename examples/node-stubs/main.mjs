// Calls jobqueue from Node with the protos loaded at run time by @grpc/proto-loader
// (docs/workers.md): enqueues a job, reads it back, and decodes the error details of a
// refused call.
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const includeDirs = [path.join(root, "proto"), path.join(root, "third_party/proto")];
const definition = protoLoader.loadSync("jobqueue/v1/job_queue_service.proto", {
  includeDirs,
  keepCase: true,
  enums: String,
  defaults: true,
});
const { JobQueueService } = grpc.loadPackageDefinition(definition).jobqueue.v1;
const client = new JobQueueService(process.env.JOBQ_TARGET ?? "localhost:50051", grpc.credentials.createInsecure());
const call = (method, request) =>
  new Promise((resolve, reject) => client[method](request, (err, response) => (err ? reject(err) : resolve(response))));

// A google.protobuf.Struct as proto-loader takes it: each value wrapped in its kind.
const payload = { fields: { greeting: { stringValue: "hello from Node" } } };
const { job_id } = await call("Enqueue", { queue: "stubs-demo", payload });
console.log("enqueued", job_id);

const { job } = await call("GetStatus", { job_id });
console.log("state", job.state);

try {
  await call("GetStatus", { job_id: "not-a-job-id" });
} catch (err) {
  const { reason, field } = reasonAndField(err);
  console.log(`refused code ${err.code} reason ${reason} field ${field}`);
}
client.close();

// The ErrorInfo reason and the BadRequest field of a refusal: its google.rpc.Status travels in
// the grpc-status-details-bin trailer, decoded with the protos of third_party/proto.
function reasonAndField(err) {
  const rpc = new protobuf.Root();
  rpc.resolvePath = (_origin, target) => path.join(includeDirs[1], target);
  rpc.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], { keepCase: true });
  const [bytes] = err.metadata.get("grpc-status-details-bin");
  const found = { reason: "", field: "" };
  for (const detail of rpc.lookupType("google.rpc.Status").decode(bytes).details) {
    const type = rpc.lookupType(detail.type_url.split("/").pop());
    const message = type.decode(detail.value);
    if (type.name === "ErrorInfo") found.reason = message.reason;
    if (type.name === "BadRequest") found.field = message.field_violations[0]?.field ?? "";
  }
  return found;
}
