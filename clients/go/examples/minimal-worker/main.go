// Command minimal-worker is the smallest useful jobqueue worker: it greets whoever the
// job's payload names, and stops gracefully on SIGTERM or Ctrl-C.
//
//	JOBQ_TARGET=localhost:50051 go run ./examples/minimal-worker
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	client, err := jobqueue.Dial(os.Getenv("JOBQ_TARGET"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	worker := jobqueue.NewWorker(client, []string{"greetings"})
	worker.Handle("greetings", func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		return map[string]any{"greeting": fmt.Sprintf("hello, %v", job.Payload["name"])}, nil
	})
	if err := worker.Run(ctx); err != nil { // returns nil after a graceful stop
		log.Fatal(err)
	}
}
