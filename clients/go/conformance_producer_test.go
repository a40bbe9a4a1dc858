package jobqueue_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// producer runs cmd/conformance-producer against the test server.
type producer struct {
	t    *testing.T
	in   *json.Encoder
	out  *bufio.Scanner
	wait func() error
}

func startProducer(t *testing.T) *producer {
	newClient(t) // skips without a server
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	binary := filepath.Join(t.TempDir(), "go-conformance-producer")
	if out, err := exec.Command(goTool, "build", "-o", binary, "./cmd/conformance-producer").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "JOBQ_TARGET="+serverAddr)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return &producer{t: t, in: json.NewEncoder(stdin), out: bufio.NewScanner(stdout), wait: func() error {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%w: %s", err, stderr)
		}
		return nil
	}}
}

// call sends one command and decodes its answer.
func (p *producer) call(cmd map[string]any) map[string]any {
	p.t.Helper()
	if err := p.in.Encode(cmd); err != nil {
		p.t.Fatal(err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("no answer to %v: %v", cmd, p.out.Err())
	}
	var answer map[string]any
	if err := json.Unmarshal(p.out.Bytes(), &answer); err != nil {
		p.t.Fatalf("answer %q: %v", p.out.Bytes(), err)
	}
	return answer
}

func TestTheConformanceProducerSpeaksTheKitsProtocol(t *testing.T) {
	p, queue := startProducer(t), uniqueQueue(t)

	first := p.call(map[string]any{"op": "enqueue", "queue": queue, "payload": map[string]any{"n": 1},
		"options": map[string]any{"priority": "high", "max_attempts": 4, "metadata": map[string]any{"k": "v"}, "durability": "fsynced"}})
	enqueued, _ := first["ok"].(map[string]any)
	id, _ := enqueued["job_id"].(string)
	if id == "" {
		t.Fatalf("enqueue: %v", first)
	}
	batch := p.call(map[string]any{"op": "enqueue_batch", "durability": "applied",
		"jobs": []any{map[string]any{"queue": queue}, map[string]any{"queue": queue, "options": map[string]any{"delay_ms": 3_600_000}}}})
	job := p.call(map[string]any{"op": "get", "job_id": id})
	listed := p.call(map[string]any{"op": "list_jobs", "queue": queue, "state": "queued", "page_size": 1})
	cancelled := p.call(map[string]any{"op": "cancel", "job_id": id})
	again := p.call(map[string]any{"op": "cancel", "job_id": id})
	badQueue := p.call(map[string]any{"op": "enqueue", "queue": "no spaces"})
	unknown := p.call(map[string]any{"op": "get", "job_id": queue + ":01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	if err := p.wait(); err != nil {
		t.Errorf("the producer did not exit cleanly at the end of its input: %v", err)
	}

	if results, _ := batch["ok"].([]any); len(results) != 2 {
		t.Errorf("batch: %v", batch)
	}
	want := map[string]any{"id": id, "queue": queue, "state": "queued", "attempts": 0.0, "max_attempts": 4.0,
		"payload": map[string]any{"n": 1.0}, "result": nil, "metadata": map[string]any{"k": "v"}, "last_error": "", "errors": []any{}}
	if !reflect.DeepEqual(job["ok"], want) {
		t.Errorf("get:\n got %v\nwant %v", job["ok"], want)
	}
	if ids, _ := listed["ok"].([]any); len(ids) != 2 || ids[0] != id {
		t.Errorf("list_jobs: %v", listed)
	}
	if v, ok := cancelled["ok"]; !ok || v != nil {
		t.Errorf("cancel: %v", cancelled)
	}
	for _, c := range []struct {
		what   string
		answer map[string]any
		want   map[string]any
	}{
		{"second cancel", again, map[string]any{"type": "ErrWrongState", "reason": "WRONG_STATE", "code": "FAILED_PRECONDITION", "field": ""}},
		{"bad queue", badQueue, map[string]any{"type": "ErrInvalidArgument", "reason": "INVALID_ARGUMENT", "code": "INVALID_ARGUMENT", "field": "queue"}},
		{"unknown job", unknown, map[string]any{"type": "ErrNotFound", "reason": "JOB_NOT_FOUND", "code": "NOT_FOUND", "field": ""}},
	} {
		if !reflect.DeepEqual(c.answer["error"], c.want) {
			t.Errorf("%s: %v", c.what, c.answer)
		}
	}
}
