// Command loadgen measures raw unary gRPC calls the way a generic stub makes them: one
// request per call, no batching and no client-library logic, from a program cheap enough
// that the server is what is measured. The request is encoded once and sent as is.
//
//	loadgen --target 127.0.0.1:50051 --kind enqueue --queue bench --concurrency 64
//	loadgen --target 127.0.0.1:50052 --kind echo --connections 8 --duration 10s
//
// It prints one JSON line: calls, errors by status code, seconds, calls_per_second,
// latency_ms {p50, p90, p99, max} of the successful calls, and its own CPU seconds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

// Bounds on what the flags may ask for.
const (
	maxConcurrency = 100_000
	maxPayload     = 4 << 20 // a server's default message limit
	// Every answered call keeps its latency (8 bytes) until the end.
	maxCalls       = 20_000_000
	maxDuration    = time.Hour
	connectTimeout = 15 * time.Second
	// drainTimeout bounds how long calls still in flight at the end of --duration may take.
	drainTimeout = 30 * time.Second
)

type config struct {
	target       string
	kind         string
	queue        string
	payloadBytes int
	concurrency  int
	connections  int
	duration     time.Duration
	calls        int64
	warmup       time.Duration
	cpuProfile   string
}

func main() {
	var c config
	flag.StringVar(&c.target, "target", "127.0.0.1:50051", "server address, host:port")
	flag.StringVar(&c.kind, "kind", "enqueue", "enqueue (jobqueue.v1 Enqueue) or echo (bench.Echo/Unary)")
	flag.StringVar(&c.queue, "queue", "loadgen", "queue of the enqueued jobs")
	flag.IntVar(&c.payloadBytes, "payload-bytes", 100, "JSON payload size (enqueue) or message size (echo)")
	flag.IntVar(&c.concurrency, "concurrency", 64, "calls in flight")
	flag.IntVar(&c.connections, "connections", 1, "separate connections the calls are spread over")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to measure (unless --calls)")
	flag.Int64Var(&c.calls, "calls", 0, "measure this many calls instead of a duration")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "calls before the measurement, not counted")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write the measurement's CPU profile to this file")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.concurrency < 1 || c.concurrency > maxConcurrency:
		return fmt.Errorf("--concurrency must be 1 to %d", maxConcurrency)
	case c.connections < 1 || c.connections > c.concurrency:
		return errors.New("--connections must be 1 to --concurrency")
	case c.payloadBytes < 0 || c.payloadBytes > maxPayload:
		return fmt.Errorf("--payload-bytes must be 0 to %d", maxPayload)
	case c.calls < 0 || c.calls > maxCalls || c.duration > maxDuration || c.warmup > maxDuration:
		return fmt.Errorf("--calls must be at most %d, --duration and --warmup at most %s", maxCalls, maxDuration)
	case (c.calls == 0 && c.duration <= 0) || c.warmup < 0:
		return errors.New("--calls or --duration must be positive, --warmup not negative")
	}
	return nil
}

func run(c config) error {
	if err := c.validate(); err != nil {
		return err
	}
	method, body, err := request(c.kind, c.queue, c.payloadBytes)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	conns, err := dial(ctx, c.target, c.connections)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	load := &load{conns: conns, method: method, body: body, concurrency: c.concurrency}
	var warmup measurement
	if c.warmup > 0 {
		warmup = load.phase(ctx, 0, time.Now().Add(c.warmup))
	}
	if c.cpuProfile != "" {
		stopProfile, err := startProfile(c.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	cpu0 := cpuSeconds()
	var until time.Time
	if c.calls == 0 {
		until = time.Now().Add(c.duration)
	}
	m := load.phase(ctx, c.calls, until)
	r := c.report(m, cpuSeconds()-cpu0)
	r.WarmupCalls = warmup.count()
	return json.NewEncoder(os.Stdout).Encode(r)
}

// report is the JSON line.
type report struct {
	Kind           string           `json:"kind"`
	Target         string           `json:"target"`
	Concurrency    int              `json:"concurrency"`
	Connections    int              `json:"connections"`
	PayloadBytes   int              `json:"payload_bytes"`
	Calls          int              `json:"calls"`
	Errors         map[string]int64 `json:"errors"`
	Seconds        float64          `json:"seconds"`
	CallsPerSecond float64          `json:"calls_per_second"`
	LatencyMS      latencyMS        `json:"latency_ms"`
	CPUSeconds     float64          `json:"loadgen_cpu_seconds"`
	CPUPerCallUS   float64          `json:"loadgen_cpu_us_per_call"`
	// WarmupCalls counts the calls of the warm-up (answered or not): the server did them too.
	WarmupCalls int64 `json:"warmup_calls"`
}

func (c config) report(m measurement, cpu float64) report {
	calls := len(m.latencies)
	r := report{
		Kind: c.kind, Target: c.target, Concurrency: c.concurrency, Connections: c.connections,
		PayloadBytes: c.payloadBytes, Calls: calls, Errors: m.errors, Seconds: m.elapsed.Seconds(),
		LatencyMS: quantiles(m.latencies), CPUSeconds: cpu,
	}
	if r.Seconds > 0 {
		r.CallsPerSecond = float64(calls) / r.Seconds
	}
	if calls > 0 {
		r.CPUPerCallUS = cpu * 1e6 / float64(calls)
	}
	return r
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

func cpuSeconds() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}
