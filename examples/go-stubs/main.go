// Command go-stubs calls jobqueue with stubs that protoc generates from the protos
// (docs/workers.md): it enqueues a job, reads it back, and decodes the error details of a
// refused call.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	jobqueuev1 "example.com/jobqueue-go-stubs/jobqueue/v1"
)

func main() {
	conn, err := grpc.NewClient(cmp.Or(os.Getenv("JOBQ_TARGET"), "localhost:50051"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := jobqueuev1.NewJobQueueServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	payload, err := structpb.NewStruct(map[string]any{"greeting": "hello from Go"})
	if err != nil {
		log.Fatal(err)
	}
	enqueued, err := client.Enqueue(ctx, &jobqueuev1.EnqueueRequest{Queue: "stubs-demo", Payload: payload})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued", enqueued.GetJobId())

	got, err := client.GetStatus(ctx, &jobqueuev1.GetStatusRequest{JobId: enqueued.GetJobId()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state", got.GetJob().GetState())

	_, err = client.GetStatus(ctx, &jobqueuev1.GetStatusRequest{JobId: "not-a-job-id"})
	refused := status.Convert(err)
	reason, field := reasonAndField(refused)
	fmt.Printf("refused code %d reason %s field %s\n", refused.Code(), reason, field)
}

// reasonAndField reads the ErrorInfo reason and the BadRequest field of a refusal (importing
// errdetails registers their types, so Details can decode them).
func reasonAndField(refused *status.Status) (reason, field string) {
	for _, detail := range refused.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.BadRequest:
			if violations := d.GetFieldViolations(); len(violations) > 0 {
				field = violations[0].GetField()
			}
		}
	}
	return reason, field
}
