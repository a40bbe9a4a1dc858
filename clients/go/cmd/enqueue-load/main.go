// Command enqueue-load measures the producer shape of a web application: many goroutines
// calling Client.Enqueue one job at a time, with the client's batching on or off.
//
//	go run ./cmd/enqueue-load --target 127.0.0.1:50051 --concurrency 64 --jobs 50000
//	go run ./cmd/enqueue-load --target 127.0.0.1:50051 --batching=false
//
// It prints one JSON line: jobs, errors, seconds, jobs_per_second, the client's own CPU
// seconds, the calls it made (EnqueueStream messages count as calls) and their mean size,
// and the settings; with --latency also
// latency_ms, the p50/p90/p99/max of each Enqueue call (inclusive quantiles).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

type config struct {
	target       string
	queue        string
	concurrency  int
	jobs         int
	warmup       int
	payloadBytes int
	batching     bool
	maxJobs      int
	linger       time.Duration
	cpuProfile   string
	latency      bool
}

type report struct {
	Jobs          int64   `json:"jobs"`
	Errors        int64   `json:"errors"`
	Seconds       float64 `json:"seconds"`
	JobsPerSecond float64 `json:"jobs_per_second"`
	ClientCPU     float64 `json:"client_cpu_seconds"`
	Concurrency   int     `json:"concurrency"`
	Batching      bool    `json:"batching"`
	PayloadBytes  int     `json:"payload_bytes"`
	Calls         int64   `json:"calls"`
	JobsPerCall   float64 `json:"jobs_per_call"`
	FirstError    string  `json:"first_error,omitempty"`
	// LatencyMS is set with --latency.
	LatencyMS map[string]float64 `json:"latency_ms,omitempty"`
}

// callCounter counts the Enqueue and EnqueueBatch calls and the EnqueueStream messages the
// client sends, and their jobs.
type callCounter struct{ calls, jobs atomic.Int64 }

func (cc *callCounter) intercept(ctx context.Context, method string, req, reply any, conn *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	switch r := req.(type) {
	case *jobqueuev1.EnqueueRequest:
		cc.calls.Add(1)
		cc.jobs.Add(1)
	case *jobqueuev1.EnqueueBatchRequest:
		cc.calls.Add(1)
		cc.jobs.Add(int64(len(r.GetRequests())))
	}
	return invoker(ctx, method, req, reply, conn, opts...)
}

func (cc *callCounter) interceptStream(ctx context.Context, desc *grpc.StreamDesc, conn *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, conn, method, opts...)
	if err != nil || method != jobqueuev1.JobQueueService_EnqueueStream_FullMethodName {
		return cs, err
	}
	return &countedStream{ClientStream: cs, counter: cc}, nil
}

// countedStream counts the messages sent on an EnqueueStream.
type countedStream struct {
	grpc.ClientStream
	counter *callCounter
}

func (s *countedStream) SendMsg(m any) error {
	if r, ok := m.(*jobqueuev1.EnqueueStreamRequest); ok {
		s.counter.calls.Add(1)
		s.counter.jobs.Add(int64(len(r.GetRequests())))
	}
	return s.ClientStream.SendMsg(m)
}

func main() {
	var c config
	flag.StringVar(&c.target, "target", "127.0.0.1:50051", "server address")
	flag.StringVar(&c.queue, "queue", "enqueue-load", "queue to enqueue to")
	flag.IntVar(&c.concurrency, "concurrency", 64, "goroutines calling Enqueue")
	flag.IntVar(&c.jobs, "jobs", 50000, "jobs to enqueue in the measurement")
	flag.IntVar(&c.warmup, "warmup", 2000, "jobs enqueued before the measurement")
	flag.IntVar(&c.payloadBytes, "payload-bytes", 100, "size of the job's JSON payload")
	flag.BoolVar(&c.batching, "batching", true, "gather concurrent calls into batches")
	flag.IntVar(&c.maxJobs, "max-jobs", 0, "Batching.MaxJobs (0: the default)")
	flag.DurationVar(&c.linger, "linger", 0, "Batching.Linger (0: the default)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write the measurement's CPU profile to this file")
	flag.BoolVar(&c.latency, "latency", false, "time each Enqueue call and report latency_ms")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "enqueue-load:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if c.concurrency < 1 || c.jobs < 1 || c.warmup < 0 || c.payloadBytes < 0 {
		return fmt.Errorf("--concurrency and --jobs must be positive, --warmup and --payload-bytes not negative")
	}
	opt := jobqueue.WithoutBatching()
	if c.batching {
		opt = jobqueue.WithBatching(jobqueue.Batching{MaxJobs: c.maxJobs, Linger: c.linger})
	}
	var counter callCounter
	client, err := jobqueue.Dial(c.target, opt, jobqueue.WithDialOptions(
		grpc.WithUnaryInterceptor(counter.intercept), grpc.WithStreamInterceptor(counter.interceptStream)))
	if err != nil {
		return err
	}
	defer client.Close()
	payload := paddedPayload(c.payloadBytes)
	ctx := context.Background()
	if _, _, err := load(ctx, client, c.queue, payload, c.concurrency, c.warmup, false); err != nil {
		return fmt.Errorf("warmup: %w", err)
	}
	if c.cpuProfile != "" {
		stop, err := startProfile(c.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	calls0, jobs0 := counter.calls.Load(), counter.jobs.Load()
	cpu0 := cpuSeconds()
	start := time.Now()
	r, latencies, err := load(ctx, client, c.queue, payload, c.concurrency, c.jobs, c.latency)
	r.Seconds = time.Since(start).Seconds()
	if c.latency {
		r.LatencyMS = quantiles(latencies)
	}
	r.ClientCPU = cpuSeconds() - cpu0
	r.Calls = counter.calls.Load() - calls0
	r.JobsPerCall = float64(counter.jobs.Load()-jobs0) / float64(max(r.Calls, 1))
	r.JobsPerSecond = float64(r.Jobs) / r.Seconds
	r.Concurrency, r.Batching, r.PayloadBytes = c.concurrency, c.batching, c.payloadBytes
	if err != nil {
		r.FirstError = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// load enqueues n jobs from `concurrency` goroutines, one job per call; with timed, it
// also returns the latency of each successful call.
func load(ctx context.Context, client *jobqueue.Client, queue string, payload map[string]any, concurrency, n int, timed bool) (report, []time.Duration, error) {
	var remaining, ok, failed atomic.Int64
	remaining.Store(int64(n))
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	latencies := make([][]time.Duration, concurrency) // one slice per goroutine: nothing shared
	for i := range concurrency {
		wg.Go(func() {
			for remaining.Add(-1) >= 0 {
				start := time.Now()
				if _, err := client.Enqueue(ctx, queue, payload); err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				if timed {
					latencies[i] = append(latencies[i], time.Since(start))
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	for _, part := range latencies {
		all = append(all, part...)
	}
	return report{Jobs: ok.Load(), Errors: failed.Load()}, all, firstErr
}

// quantiles are p50, p90, p99 and max in ms, read like Python's
// statistics.quantiles(method="inclusive"): linear between the two nearest samples.
func quantiles(samples []time.Duration) map[string]float64 {
	if len(samples) == 0 {
		return nil
	}
	ms := make([]float64, len(samples))
	for i, d := range samples {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	sort.Float64s(ms)
	at := func(p int) float64 {
		j, delta := p*(len(ms)-1)/100, p*(len(ms)-1)%100
		if j+1 >= len(ms) {
			return ms[len(ms)-1]
		}
		return (ms[j]*float64(100-delta) + ms[j+1]*float64(delta)) / 100
	}
	return map[string]float64{"p50": at(50), "p90": at(90), "p99": at(99), "max": ms[len(ms)-1]}
}

// paddedPayload is {"pad": "xxx..."} whose JSON is size bytes (at least its 10 fixed ones).
func paddedPayload(size int) map[string]any {
	return map[string]any{"pad": strings.Repeat("x", max(size-len(`{"pad":""}`), 0))}
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}

func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
