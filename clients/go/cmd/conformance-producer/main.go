// Command conformance-producer is the Go client's conformance producer: the program the
// producer half of the conformance kit (tests/conformance/README.md, "Producer
// conformance") drives. It reads one JSON command per line on stdin, runs it through the
// package's Client, and answers each with one JSON line on stdout: {"ok": value}, or
// {"error": {...}} when the library returned its typed error. It exits 0 at the end of
// its input, and 2 on a command it cannot read (a bug in the kit, not in the library).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

const (
	// maxLine bounds one command; the server refuses far smaller payloads anyway.
	maxLine = 16 << 20
	// callTimeout bounds one call, far beyond the server's Redis and fsync timeouts, so
	// that the kit sees their errors rather than ours.
	callTimeout = 60 * time.Second
)

func main() {
	client, err := jobqueue.Dial(os.Getenv("JOBQ_TARGET"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance producer:", err)
		os.Exit(1)
	}
	defer client.Close()
	if err := serve(client, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "conformance producer:", err)
		client.Close()
		os.Exit(2)
	}
}

// serve answers every command of in on out, in order.
func serve(client *jobqueue.Client, in io.Reader, out io.Writer) error {
	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 0, 64<<10), maxLine)
	answers := json.NewEncoder(out) // one Write per answer; os.Stdout is unbuffered
	answers.SetEscapeHTML(false)
	for lines.Scan() {
		var cmd command
		if err := json.Unmarshal(lines.Bytes(), &cmd); err != nil {
			return fmt.Errorf("command %q: %w", lines.Bytes(), err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), cmd.timeout())
		value, err := run(ctx, client, cmd)
		cancel()
		answer, err := answerFor(value, err)
		if err != nil {
			return fmt.Errorf("op %q: %w", cmd.Op, err)
		}
		if err := answers.Encode(answer); err != nil {
			return err
		}
	}
	return lines.Err()
}
