package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/cli"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
)

// TestNamesCheckedBeforeCalling: a command that creates an entry refuses a
// name outside the rule with exit 2, saying the rule, before it asks the
// agent (here there is none to ask).
func TestNamesCheckedBeforeCalling(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"svc", "set", "we b", "w1"}, `service "we b" is not a valid name: want ` + rpc.NameRule},
		{[]string{"svc", "set", "web", "w/1"}, `instance "w/1" is not a valid name`},
		{[]string{"bl", "add", "my list", "u1"}, `list "my list" is not a valid name`},
		{[]string{"bl", "add", "fraud", "u 1"}, `blacklist id "u 1" is not valid: want ` + rpc.BlacklistIDRule},
		{[]string{"task", "submit", "my queue"}, `queue "my queue" is not a valid name`},
		{[]string{"task", "submit", "jobs", "--id", "t 1"}, `--id: task id "t 1" is not a valid name`},
		{[]string{"task", "assign", "job 1"}, `task id "job 1" is not a valid name`},
		{[]string{"kernel", "claim", "gpu 0"}, `kernel id "gpu 0" is not a valid name`},
		{[]string{"lock", "gpu 0", "--", "true"}, `lock name "gpu 0" is not a valid name`},
		{[]string{"lock", "--once", "night 1", "cron", "--", "true"}, `--once: run-once slot "night 1" is not a valid name`},
	} {
		r := runCLI(append([]string{"--socket", sock}, tc.args...)...).expect(t, 2).stderrHas(t, tc.msg)
		if strings.Contains(r.stderr, "agent") {
			t.Errorf("%v: stderr %q speaks of the agent: the CLI should refuse before it calls", tc.args, r.stderr)
		}
	}
	// Valid names go on to the agent, which is not running: exit 1.
	runCLI("--socket", sock, "svc", "set", "web_api", "host-1.example:8080").expect(t, 1)
	runCLI("--socket", sock, "bl", "add", "revoked", "a+b@example.com").expect(t, 1)
}

// TestBareWatchesWatchEverything: "watch", "svc watch" and "kernel watch"
// without an argument all watch their whole scope.
func TestBareWatchesWatchEverything(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		prefix string
	}{
		{[]string{"watch"}, ""},
		{[]string{"svc", "watch"}, "svc/"},
		{[]string{"kernel", "watch"}, "kernel/"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			a := startAgent(t)
			out, lines := pipeLines(t)
			var errb bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- cli.Run(append([]string{"--socket", a.sock}, tc.args...), out, &errb) }()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			waited := make(chan error, 1)
			go func() { waited <- a.fake.WaitWatchers(ctx, 1) }()
			select {
			case code := <-done:
				t.Fatalf("exit %d before watching: %s", code, errb.String())
			case err := <-waited:
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := a.fake.WatchRequests(); len(got) != 1 || got[0].Prefix != tc.prefix {
				t.Fatalf("watch requests %+v, want one of prefix %q", got, tc.prefix)
			}
			key := tc.prefix + "x"
			if tc.prefix == "" {
				key = "bl/fraud/u1"
			}
			a.fake.Emit(rpc.Event{Key: key, Op: "put", Node: self, Time: time.Now()})
			if f := strings.Fields(nextLine(t, lines)); len(f) < 3 || f[2] != key {
				t.Errorf("line %q, want the event of %s", f, key)
			}
			a.stop()
			select {
			case <-done:
			case <-time.After(testTimeout):
				t.Fatal("watch did not end")
			}
		})
	}
	runCLI("watch", "--help").expect(t, 0, "[prefix]", "every key")
}

// TestBlLsWithoutList: "bl ls" lists every list with its number of ids.
func TestBlLsWithoutList(t *testing.T) {
	a := startAgent(t)
	a.run("bl", "ls").expect(t, 0).table(t, "LIST ENTRIES")
	if l := decodeJSON[[]rpc.BlacklistSummary](t, a.run("bl", "ls", "-o", "json").expect(t, 0)); l == nil || len(l) != 0 {
		t.Errorf("bl ls -o json with no list: %#v, want []", l)
	}
	for _, e := range [][2]string{{"fraud", "u1"}, {"fraud", "u2"}, {"revoked", "t1"}} {
		a.run("bl", "add", e[0], e[1]).expect(t, 0)
	}
	a.run("bl", "ls").expect(t, 0).table(t, "LIST ENTRIES", "fraud 2", "revoked 1")
	l := decodeJSON[[]rpc.BlacklistSummary](t, a.run("bl", "ls", "-o", "json").expect(t, 0))
	if len(l) != 2 || l[0] != (rpc.BlacklistSummary{List: "fraud", Entries: 2}) || l[1] != (rpc.BlacklistSummary{List: "revoked", Entries: 1}) {
		t.Errorf("bl ls -o json: %+v", l)
	}
	a.run("bl", "ls", "fraud").expect(t, 0, "u1", "u2")
	runCLI("bl", "ls", "--help").expect(t, 0, "[list]", "every list")
}

// TestReleasedKernelShowsNoExpiry: a released lease is shown released,
// with no expiry, in the table, and without one in JSON.
func TestReleasedKernelShowsNoExpiry(t *testing.T) {
	a := startAgent(t)
	a.run("kernel", "claim", "gpu0", "--ttl", "1h").expect(t, 0)
	a.run("kernel", "release", "gpu0").expect(t, 0).table(t,
		"ID HOLDER EPOCH STATE JOB GRANTED EXPIRES WAITING",
		`gpu0 SELF0001 1 released - \ds ago - 0`)
	a.run("kernel", "ls").expect(t, 0).table(t,
		"ID HOLDER EPOCH STATE JOB GRANTED EXPIRES WAITING",
		`gpu0 SELF0001 1 released - \ds ago - 0`)
	for _, args := range [][]string{{"kernel", "who", "gpu0", "-o", "json"}, {"kernel", "ls", "-o", "json"}} {
		r := a.run(args...).expect(t, 0)
		if strings.Contains(r.stdout, `"expires"`) || !strings.Contains(r.stdout, `"released": true`) {
			t.Errorf("%v: %s, want released and no expires", args, r.stdout)
		}
	}
	// An older agent still sends a released lease's expiry: the table
	// leaves it out all the same.
	old := serveAPI(t, olderAgent{rpctest.New(self, nil)})
	runCLI("--socket", old, "kernel", "ls").expect(t, 0).table(t,
		"ID HOLDER EPOCH STATE JOB GRANTED EXPIRES WAITING",
		`gpu1 OTHR0002 3 released - \ds ago - 0`)
}

// olderAgent answers kernel ls as agents did before a released lease lost
// its expiry.
type olderAgent struct{ *rpctest.Fake }

func (olderAgent) KernelList(context.Context) ([]rpc.Kernel, error) {
	now := time.Now()
	return []rpc.Kernel{{ID: "gpu1", Holder: other, Epoch: 3, Released: true, Granted: now, Expires: now.Add(time.Hour)}}, nil
}

// serveAPI serves api on a Unix socket until the test ends, and returns
// the socket's path.
func serveAPI(t *testing.T, api rpc.API) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	ln, err := httpapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpapi.New(api, nil).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}
