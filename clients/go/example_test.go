package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// Producers enqueue with functional options and read results back.
func ExampleClient_Enqueue() {
	ctx := context.Background()
	client, err := jobqueue.Dial("localhost:50051")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	res, err := client.Enqueue(ctx, "email", map[string]any{"to": "ada@example.com"},
		jobqueue.WithMaxAttempts(5),
		jobqueue.WithDelay(time.Minute),
		jobqueue.WithIdempotencyKey("welcome-ada"),
	)
	var bad *jobqueue.Error
	switch {
	case errors.As(err, &bad) && bad.Field != "":
		log.Fatalf("invalid %s: %s", bad.Field, bad.Message)
	case err != nil:
		log.Fatal(err)
	}
	job, err := client.Wait(ctx, res.JobID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.State, job.Result)
}

// A worker runs until SIGTERM or Ctrl-C, then stops gracefully.
func ExampleWorker() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	client, err := jobqueue.Dial("localhost:50051")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	worker := jobqueue.NewWorker(client, []string{"email"},
		jobqueue.WithConcurrency(8),
		jobqueue.WithGracePeriod(20*time.Second),
	)
	worker.Handle("email", func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		to, ok := job.Payload["to"].(string)
		if !ok {
			return nil, jobqueue.NonRetryable(errors.New("payload.to must be a string"))
		}
		return map[string]any{"sent_to": to}, nil // acked with this result
	})
	if err := worker.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// The minimal worker in examples/ is built and run, so that the docs cannot rot.
func TestTheMinimalWorkerExampleGreetsAndStopsOnSIGTERM(t *testing.T) {
	client := newClient(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	binary := filepath.Join(t.TempDir(), "minimal-worker")
	if out, err := exec.Command(goTool, "build", "-o", binary, "./examples/minimal-worker").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "JOBQ_TARGET="+serverAddr)
	output := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	done := waitFor(t, client, enqueue(t, client, "greetings", map[string]any{"name": "Ada"}))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	if done.State != jobqueue.StateCompleted || done.Result["greeting"] != "hello, Ada" {
		t.Errorf("job = %+v", done)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the example exited with %v:\n%s", err, output)
		}
	case <-time.After(waitTimeout):
		t.Errorf("the example did not stop on SIGTERM:\n%s", output)
	}
}
