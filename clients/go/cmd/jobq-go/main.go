// Command jobq-go is a small producer on the Go client, used by the cross-language tests
// and handy for scripts:
//
//	jobq-go enqueue QUEUE '{"json":"payload"}'   prints the job id
//	jobq-go wait JOB_ID                          waits until the job is finished, prints it as JSON
//
// The server address comes from JOBQ_TARGET (default localhost:50051).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

const waitLimit = 60 * time.Second

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: jobq-go enqueue QUEUE JSON | jobq-go wait JOB_ID")
	}
	target := os.Getenv("JOBQ_TARGET")
	if target == "" {
		target = "localhost:50051"
	}
	client, err := jobqueue.Dial(target)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	switch args[0] {
	case "enqueue":
		return enqueue(ctx, client, args[1:])
	case "wait":
		return wait(ctx, client, args[1])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func enqueue(ctx context.Context, client *jobqueue.Client, args []string) error {
	payload := map[string]any{}
	if len(args) > 1 {
		if err := json.Unmarshal([]byte(args[1]), &payload); err != nil {
			return fmt.Errorf("payload: %w", err)
		}
	}
	result, err := client.Enqueue(ctx, args[0], payload)
	if err != nil {
		return err
	}
	fmt.Println(result.JobID)
	return nil
}

func wait(ctx context.Context, client *jobqueue.Client, id string) error {
	job, err := client.Wait(ctx, id)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"id": job.ID, "state": job.State, "attempts": job.Attempts, "result": job.Result, "payload": job.Payload,
	})
}
