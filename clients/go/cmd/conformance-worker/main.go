// Command conformance-worker is the Go client's conformance worker: the program the
// worker conformance kit (tests/conformance/README.md) drives. It runs the package's
// Worker with one handler, registered for every queue in JOBQ_QUEUES, that does what the
// job payload's "action" says.
//
// With JOBQ_TRACE_FILE set, it records its spans in memory and, once stopped, writes them
// to that file as JSON lines (see writeSpans), for the cross-language tracing test.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

const pollInterval = 10 * time.Millisecond

var stdout sync.Mutex

// say prints one line for the kit; os.Stdout is unbuffered, so it is flushed at once.
func say(format string, args ...any) {
	stdout.Lock()
	defer stdout.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger); err != nil {
		logger.Error("conformance worker failed", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	target := os.Getenv("JOBQ_TARGET")
	queues := strings.Split(os.Getenv("JOBQ_QUEUES"), ",")
	concurrency, err := envInt("JOBQ_CONCURRENCY", 1)
	if err != nil {
		return err
	}
	graceSeconds, err := envFloat("JOBQ_GRACE_SECONDS", 10)
	if err != nil {
		return err
	}
	workerID := os.Getenv("JOBQ_WORKER_ID")
	if workerID == "" {
		workerID = "go-conformance"
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	var dialOpts []jobqueue.Option
	traceFile := os.Getenv("JOBQ_TRACE_FILE")
	spans := tracetest.NewInMemoryExporter()
	if traceFile != "" {
		// A syncer exports each span as it ends: nothing is left to flush at exit.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
		dialOpts = append(dialOpts, jobqueue.WithTracerProvider(tp))
	}
	client, err := jobqueue.Dial(target, dialOpts...)
	if err != nil {
		return err
	}
	defer client.Close()
	worker := jobqueue.NewWorker(client, queues,
		jobqueue.WithConcurrency(concurrency),
		jobqueue.WithWorkerID(workerID),
		jobqueue.WithGracePeriod(time.Duration(graceSeconds*float64(time.Second))),
		jobqueue.WithLogger(logger),
	)
	handler := func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		say("START %s", job.ID)
		defer say("END %s", job.ID)
		return act(ctx, job, workerID)
	}
	for _, q := range queues {
		worker.Handle(q, handler)
	}
	go func() {
		select {
		case <-worker.Ready():
			say("READY")
		case <-ctx.Done():
		}
	}()
	err = worker.Run(ctx)
	if traceFile != "" {
		// After the graceful stop: every handler has returned, so its span has ended.
		err = errors.Join(err, writeSpans(traceFile, spans.GetSpans()))
	}
	return err
}

// spanLine is one line of JOBQ_TRACE_FILE: the format every language's conformance worker
// writes, for the cross-language tracing test to join producer, server and worker spans.
type spanLine struct {
	Name         string         `json:"name"`
	Kind         string         `json:"kind"`
	TraceID      string         `json:"trace_id"`
	SpanID       string         `json:"span_id"`
	ParentSpanID string         `json:"parent_span_id"`
	Links        []spanLink     `json:"links"`
	Attributes   map[string]any `json:"attributes"`
	Status       string         `json:"status"`
}

type spanLink struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

var kindNames = map[trace.SpanKind]string{
	trace.SpanKindServer:   "SERVER",
	trace.SpanKindClient:   "CLIENT",
	trace.SpanKindProducer: "PRODUCER",
	trace.SpanKindConsumer: "CONSUMER",
}

// writeSpans writes spans to path, one JSON object per line.
func writeSpans(path string, spans tracetest.SpanStubs) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for _, s := range spans {
		line := spanLine{
			Name:       s.Name,
			Kind:       kindNames[s.SpanKind],
			TraceID:    s.SpanContext.TraceID().String(),
			SpanID:     s.SpanContext.SpanID().String(),
			Links:      []spanLink{}, // [] rather than null when there are none
			Attributes: map[string]any{},
			Status:     strings.ToUpper(s.Status.Code.String()),
		}
		if line.Kind == "" {
			line.Kind = "INTERNAL"
		}
		if s.Parent.HasSpanID() {
			line.ParentSpanID = s.Parent.SpanID().String()
		}
		for _, l := range s.Links {
			line.Links = append(line.Links, spanLink{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String()})
		}
		for _, kv := range s.Attributes {
			line.Attributes[string(kv.Key)] = kv.Value.AsInterface()
		}
		if err := enc.Encode(line); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// act does what the payload's "action" says (see tests/conformance/README.md).
func act(ctx context.Context, job *jobqueue.LeasedJob, workerID string) (map[string]any, error) {
	p := job.Payload
	result, _ := p["result"].(map[string]any)
	message, _ := p["error"].(string)
	switch p["action"] {
	case "ack":
		return result, nil
	case "echo":
		metadata := map[string]any{}
		for k, v := range job.Metadata {
			metadata[k] = v
		}
		return map[string]any{
			"job_id":       job.ID,
			"queue":        job.Queue,
			"attempt":      job.Attempt,
			"max_attempts": job.MaxAttempts,
			"payload":      p,
			"metadata":     metadata,
			"worker_id":    workerID,
		}, nil
	case "fail":
		return nil, errors.New(message)
	case "fail_permanent":
		return nil, jobqueue.NonRetryable(errors.New(message))
	case "fail_until":
		until, _ := p["attempt"].(float64)
		if float64(job.Attempt) < until {
			return nil, errors.New(message)
		}
		return result, nil
	case "sleep":
		ms, _ := p["ms"].(float64)
		timer := time.NewTimer(time.Duration(ms * float64(time.Millisecond)))
		defer timer.Stop()
		select {
		case <-timer.C:
			return result, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	case "wait_file":
		path, _ := p["path"].(string)
		if err := waitFile(ctx, path); err != nil {
			return nil, err
		}
		return result, nil
	case "wait_stop":
		<-ctx.Done()
		cause := context.Cause(ctx)
		switch {
		case errors.Is(cause, jobqueue.ErrJobCancelled):
			say("STOPPED %s cancelled", job.ID)
		case errors.Is(cause, jobqueue.ErrJobTimedOut):
			say("STOPPED %s timed_out", job.ID)
		default: // not a stop (a lost lease, the worker stopping hard)
			return nil, cause
		}
		return nil, nil // ignored by the runtime
	case "progress":
		percent, _ := p["percent"].(float64)
		progressMessage, _ := p["message"].(string)
		job.Progress(percent, progressMessage)
		lines, _ := p["lines"].([]any)
		for _, line := range lines {
			if s, ok := line.(string); ok {
				job.Log(s)
			}
		}
		path, _ := p["path"].(string)
		if err := waitFile(ctx, path); err != nil {
			return nil, err
		}
		return result, nil
	case "exit":
		os.Exit(3) // a crash: nothing is settled
	}
	return nil, jobqueue.NonRetryable(errors.New("unknown action"))
}

// waitFile polls every 10 ms until the file at path exists; it returns the cancellation's
// cause if the job is stopped first.
func waitFile(ctx context.Context, path string) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-time.After(pollInterval):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func envInt(name string, fallback int) (int, error) {
	value := os.Getenv(name)
	if value == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(value)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

func envFloat(name string, fallback float64) (float64, error) {
	value := os.Getenv(name)
	if value == "" {
		return fallback, nil
	}
	f, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}
