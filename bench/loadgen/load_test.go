package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// These tests run real servers: the bare echo of bench/peers/grpc_echo (on the project's
// venv) and `jobq serve` (JOBQ_SERVE_BIN, default the venv's). Without the venv they skip.
const (
	echoRun         = "../peers/grpc_echo/run"
	defaultServeBin = "../../.venv/bin/jobq"
	startTimeout    = 60 * time.Second
	stopTimeout     = 20 * time.Second
)

func TestEchoServersShareOnePortAndStopTogether(t *testing.T) {
	if _, err := os.Stat("../../.venv/bin/python"); err != nil {
		t.Skip("no project venv for the echo server:", err)
	}
	cmd := exec.Command(echoRun, "serve", "--processes", "2")
	port, wait := startPrinting(t, cmd, func(line string) (string, bool) { return line, line != "" })
	target := "127.0.0.1:" + port

	m := measure(t, target, "echo", 4, 200)

	if len(m.latencies) != 200 || len(m.errors) != 0 {
		t.Errorf("%d calls answered, errors %v", len(m.latencies), m.errors)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Errorf("echo.py serve exited with %v", err)
	}
	if conn, err := net.Dial("tcp", target); err == nil {
		conn.Close()
		t.Error("a server process still listens after SIGTERM")
	}
}

func TestEnqueueCallsAddJobs(t *testing.T) {
	bin := os.Getenv("JOBQ_SERVE_BIN")
	if bin == "" {
		bin = defaultServeBin
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("no jobq server binary:", err)
	}
	cmd := exec.Command(bin, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", t.TempDir())
	target, _ := startPrinting(t, cmd, func(line string) (string, bool) {
		rest, ok := strings.CutPrefix(line, "jobqueue listening on ")
		addr, _, _ := strings.Cut(rest, " ")
		return addr, ok
	})

	m := measure(t, target, "enqueue", 2, 100)

	if len(m.latencies) != 100 || len(m.errors) != 0 {
		t.Fatalf("%d calls answered, errors %v", len(m.latencies), m.errors)
	}
	client, err := jobqueue.Dial(target)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	stats, err := client.Stats(context.Background(), t.Name())
	if err != nil || len(stats) != 1 || stats[0].Queued != 100 {
		t.Errorf("stats %+v (%v), want 100 queued jobs", stats, err)
	}
}

// measure makes `calls` calls of kind over `connections` connections, 8 in flight.
func measure(t *testing.T, target, kind string, connections int, calls int64) measurement {
	t.Helper()
	method, body, err := request(kind, t.Name(), 100)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conns, err := dial(ctx, target, connections)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(conns)
	l := &load{conns: conns, method: method, body: body, concurrency: 8}
	return l.phase(ctx, calls, time.Time{})
}

// startPrinting starts cmd and returns what parse finds in the first line it accepts, and
// a wait for the process's exit. The test's cleanup stops the process with SIGTERM (so it
// stops its own children), killing it when it does not exit in time.
func startPrinting(t *testing.T, cmd *exec.Cmd, parse func(string) (string, bool)) (string, func() error) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		scanner := bufio.NewScanner(out)
		for scanner.Scan() {
			if value, ok := parse(strings.TrimSpace(scanner.Text())); ok {
				found <- value
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	wait := sync.OnceValue(func() error { return <-exited })
	done := waitDone(wait)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
		case <-done:
		}
	})
	select {
	case value := <-found:
		return value, wait
	case <-done:
		t.Fatalf("%s exited (%v) without saying where it listens", cmd.Path, wait())
	case <-time.After(startTimeout):
		t.Fatalf("%s did not start within %s", cmd.Path, startTimeout)
	}
	return "", nil
}

func waitDone(wait func() error) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		_ = wait()
		close(done)
	}()
	return done
}
