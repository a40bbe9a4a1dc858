package jobqueue_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// The integration tests share one real server: `jobq serve` on an embedded Valkey, found
// through JOBQ_SERVE_BIN (default: the project's venv, ../../.venv/bin/jobq). Without it
// they skip, saying why; the unit tests still run.
const (
	serveBinEnv      = "JOBQ_SERVE_BIN"
	requireServerEnv = "JOBQ_REQUIRE_SERVER" // CI sets it: a missing server fails instead of skipping
	defaultServe     = "../../.venv/bin/jobq"
	startTimeout     = 60 * time.Second
	stopTimeout      = 20 * time.Second
	listeningLine    = "jobqueue listening on "
	waitTimeout      = 30 * time.Second
	conditionPause   = 10 * time.Millisecond
)

var (
	serverAddr string
	serveBin   string // the jobq binary, for tests that start a server of their own
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	bin := os.Getenv(serveBinEnv)
	if bin == "" {
		bin = defaultServe
	}
	if _, err := os.Stat(bin); err != nil {
		skipReason = fmt.Sprintf("no jobq server binary at %s (set %s, or create the venv with scripts/venv.sh): %v", bin, serveBinEnv, err)
		if os.Getenv(requireServerEnv) == "1" {
			fmt.Fprintln(os.Stderr, skipReason, "and", requireServerEnv, "is 1")
			return 1
		}
		return m.Run()
	}
	stop, err := startServer(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the server:", err)
		return 1
	}
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the server:", err)
	}
	return code
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs the package's shared `jobq serve` on an embedded Valkey.
func startServer(bin string) (stop func() error, err error) {
	serveBin = bin
	dir, err := os.MkdirTemp("", "jobq-go-test-")
	if err != nil {
		return nil, err
	}
	addr, stopServe, err := launchServe(bin, dir, "--data-dir", filepath.Join(dir, "data"))
	if err != nil {
		return nil, err
	}
	serverAddr = addr
	return func() error {
		err := stopServe()
		if err == nil {
			os.RemoveAll(dir)
		}
		return err
	}, nil
}

// launchServe runs `jobq serve` on a free port with args, logging to dir/server.log, and
// waits for its listening line.
func launchServe(bin, dir string, args ...string) (addr string, stop func() error, err error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return "", nil, err
	}
	args = append([]string{"serve", "--host", "127.0.0.1", "--port", fmt.Sprint(port)}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan error, 1)
	listening := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(out)
		for scanner.Scan() {
			if line := scanner.Text(); strings.HasPrefix(line, listeningLine) {
				listening <- line
				break
			}
		}
		_, _ = io.Copy(io.Discard, out) // keep the pipe drained
		exited <- cmd.Wait()
	}()
	cleanup := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var err error
		select {
		case err = <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			err = fmt.Errorf("the server did not stop within %s; killed", stopTimeout)
		}
		logFile.Close()
		if err != nil {
			err = fmt.Errorf("%w (server log kept at %s)", err, logFile.Name())
		}
		return err
	}
	select {
	case <-listening:
		return fmt.Sprintf("127.0.0.1:%d", port), cleanup, nil
	case err := <-exited:
		logs, _ := os.ReadFile(logFile.Name())
		return "", nil, fmt.Errorf("the server exited (%v) before listening:\n%s", err, logs)
	case <-time.After(startTimeout):
		_ = cleanup()
		return "", nil, fmt.Errorf("the server did not listen within %s", startTimeout)
	}
}

// newClient returns a client of the test server, or skips the test without one.
func newClient(t *testing.T) *jobqueue.Client {
	t.Helper()
	if serverAddr == "" {
		t.Skip(skipReason)
	}
	client, err := jobqueue.Dial(serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// uniqueQueue isolates a test: its own queue name, valid under the queue grammar.
func uniqueQueue(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	if len(name) > 100 {
		name = name[:100]
	}
	return name + "-" + hex.EncodeToString(b)
}

// testContext is bounded, so that a hung test fails instead of stalling the suite.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits until cond holds, failing the test at the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(conditionPause)
	}
}

// lockedBuffer collects a child process's output safely.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
