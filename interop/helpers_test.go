package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfarchive/sfarchive/internal/leakcheck"
)

// pinnedClientVersion is the exact salesforce-pubsub-api-client version nodeclient/package.json pins.
const pinnedClientVersion = "5.5.2"

// minNode is the oldest Node.js the pinned client's dependency tree supports (undici 7: >= 20.18.1).
var minNode = [3]int{20, 18, 1}

// npmCITimeout bounds `npm ci`; it downloads about 140 small packages.
const npmCITimeout = 5 * time.Minute

// nodeClient is the prepared nodeclient directory.
type nodeClient struct {
	dir  string // absolute path of interop/nodeclient
	node string // absolute path of the node binary
}

var (
	nodeOnce sync.Once
	nodeRes  nodeClient
	nodeErr  error
)

// requireNodeClient returns the prepared Node project, running `npm ci` first when node_modules is missing or
// does not match package-lock.json. It fails the test (never skips) when node or npm is unusable.
func requireNodeClient(t *testing.T) nodeClient {
	t.Helper()
	nodeOnce.Do(func() { nodeRes, nodeErr = prepareNodeClient(t) })
	if nodeErr != nil {
		t.Fatalf("third-party Node client unavailable: %v", nodeErr)
	}
	return nodeRes
}

func prepareNodeClient(t *testing.T) (nodeClient, error) {
	dir, err := filepath.Abs("nodeclient")
	if err != nil {
		return nodeClient{}, fmt.Errorf("locate nodeclient: %w", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nodeClient{}, fmt.Errorf("node is not on PATH (install Node.js >= %d.%d.%d and npm; .ci/run does): %w",
			minNode[0], minNode[1], minNode[2], err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return nodeClient{}, fmt.Errorf("npm is not on PATH (install npm beside node %s): %w", node, err)
	}
	if err := checkNodeVersion(node); err != nil {
		return nodeClient{}, err
	}
	stale, err := staleModules(dir)
	if err != nil {
		return nodeClient{}, err
	}
	if stale != "" {
		t.Logf("running npm ci in %s (%s)", dir, stale)
		ctx, cancel := context.WithTimeout(context.Background(), npmCITimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nodeClient{}, fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
		}
		if stale, err := staleModules(dir); err != nil || stale != "" {
			return nodeClient{}, fmt.Errorf("node_modules still does not match package-lock.json after npm ci: %s %v", stale, err)
		}
	}
	return nodeClient{dir: dir, node: node}, nil
}

// checkNodeVersion fails when node is older than minNode.
func checkNodeVersion(node string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return fmt.Errorf("run %s --version: %w", node, err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	parts := strings.SplitN(v, ".", 3)
	var got [3]int
	for i := range got {
		if i >= len(parts) {
			return fmt.Errorf("cannot read node version %q", v)
		}
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return fmt.Errorf("cannot read node version %q: %w", v, err)
		}
		got[i] = n
	}
	for i := range got {
		if got[i] != minNode[i] {
			if got[i] < minNode[i] {
				return fmt.Errorf("node %s is too old: salesforce-pubsub-api-client %s needs >= %d.%d.%d",
					v, pinnedClientVersion, minNode[0], minNode[1], minNode[2])
			}
			break
		}
	}
	return nil
}

// staleModules compares every package recorded in package-lock.json with the version installed under
// node_modules. It returns "" when they all match, else why npm ci must run.
func staleModules(dir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", fmt.Errorf("read lockfile: %w", err)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		return "", fmt.Errorf("parse %s/package-lock.json: %w", dir, err)
	}
	root := "node_modules/salesforce-pubsub-api-client"
	if v := lock.Packages[root].Version; v != pinnedClientVersion {
		return "", fmt.Errorf("package-lock.json records salesforce-pubsub-api-client %q, want %s", v, pinnedClientVersion)
	}
	for key, p := range lock.Packages {
		if key == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key), "package.json"))
		if err != nil {
			return key + " is not installed", nil
		}
		var inst struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(b, &inst); err != nil || inst.Version != p.Version {
			return fmt.Sprintf("%s is %q, lockfile says %q", key, inst.Version, p.Version), nil
		}
	}
	return "", nil
}

// nodeRun is the outcome of one client.mjs run.
type nodeRun struct {
	stdout, stderr []byte
}

// command prepares `node client.mjs mode` with the SFA_* variables in env (and none of the caller's).
func (nc nodeClient) command(ctx context.Context, mode string, env map[string]string, stdout, stderr *bytes.Buffer) *exec.Cmd {
	// DEP0123: grpc-js passes the IP address of the endpoint as TLS server name; Node warns on every run.
	cmd := exec.CommandContext(ctx, nc.node, "--disable-warning=DEP0123", "client.mjs", mode)
	cmd.Dir = nc.dir
	cmd.Env = cleanEnv("SFA_")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs `node client.mjs mode` with the SFA_* variables in env. The script has its own hard timeout
// (SFA_TIMEOUT_MS); ctx is the outer bound. A non-zero exit fails the test with the script's stderr.
func (nc nodeClient) run(t *testing.T, ctx context.Context, mode string, env map[string]string) nodeRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := nc.command(ctx, mode, env, &stdout, &stderr)
	start := time.Now()
	err := cmd.Run()
	t.Logf("node client.mjs %s: %v, %d bytes of output", mode, time.Since(start).Round(time.Millisecond), stdout.Len())
	if err != nil {
		t.Fatalf("node client.mjs %s failed: %v\nstderr:\n%s\nstdout (last 2000 bytes):\n%s",
			mode, err, stderr.Bytes(), tail(stdout.Bytes(), 2000))
	}
	return nodeRun{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
}

// runFailing runs `node client.mjs mode` where the client must fail: it has to exit non-zero by itself, not be
// killed by ctx. It returns the output for the caller to inspect.
func (nc nodeClient) runFailing(t *testing.T, ctx context.Context, mode string, env map[string]string) nodeRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := nc.command(ctx, mode, env, &stdout, &stderr)
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		t.Fatalf("node client.mjs %s succeeded, want a failure\nstdout:\n%s", mode, tail(stdout.Bytes(), 2000))
	case ctx.Err() != nil || !errors.As(err, &exit):
		t.Fatalf("node client.mjs %s did not exit by itself: %v\nstderr:\n%s", mode, err, stderr.Bytes())
	}
	t.Logf("node client.mjs %s failed as expected: %s", mode, bytes.TrimSpace(stderr.Bytes()))
	return nodeRun{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
}

// cleanEnv returns the process environment without variables starting with prefix, so that a developer's own
// settings cannot change what a subprocess does.
func cleanEnv(prefix string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// jsonLines decodes every non-empty line of out into a T.
func jsonLines[T any](t *testing.T, out []byte) []T {
	t.Helper()
	var res []T
	for i, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var v T
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("line %d is not the JSON expected: %v\n%s", i+1, err, line)
		}
		res = append(res, v)
	}
	return res
}

// checkGoroutineLeaks registers a cleanup, which runs after every cleanup registered later (so after the
// emulator's Stop), that fails the test when goroutines started during it are still running after a grace
// period.
func checkGoroutineLeaks(t *testing.T) {
	t.Helper()
	leakcheck.Check(t)
}
