package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/cli"
	"github.com/rumor-dev/rumor/rpc"
	"github.com/rumor-dev/rumor/rpc/httpapi"
	"github.com/rumor-dev/rumor/rpc/rpctest"
	ucli "github.com/urfave/cli/v2"
)

// Node ids shaped like libp2p's; tables show their last 8 characters.
const (
	self  = "12D3KooWSelfSelfSelfSelfSelfSelfSELF0001"
	other = "12D3KooWOtherOtherOtherOtherOtherOTHR0002"
)

const testTimeout = 10 * time.Second

// These tests do not run in parallel: urfave/cli/v2 mutates package-level
// help state while it runs.

type agent struct {
	fake *rpctest.Fake
	sock string
	stop func()
}

// startAgent serves a fake agent on a Unix socket in a temporary directory.
func startAgent(t *testing.T) *agent {
	t.Helper()
	fake := rpctest.New(self, nil)
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	ln, err := httpapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := httpapi.NewWithOptions(fake, nil, httpapi.Options{Middleware: apiContract.Middleware(t)})
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(testTimeout):
			t.Error("Serve did not return")
		}
	}
	t.Cleanup(stop)
	return &agent{fake: fake, sock: sock, stop: stop}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI against the agent.
func (a *agent) run(args ...string) result {
	return runCLI(append([]string{"--socket", a.sock}, args...)...)
}

func runCLI(args ...string) result {
	var out, errb bytes.Buffer
	code := cli.Run(args, &out, &errb, agentCommand())
	return result{code, out.String(), errb.String()}
}

// agentCommand stands in for the caller's "agent" command.
func agentCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "agent",
		Usage: "run the agent",
		Flags: []ucli.Flag{&ucli.StringFlag{Name: "config"}},
		Action: func(c *ucli.Context) error {
			if c.String("config") == "fail" {
				return ucli.Exit("bad config", 4)
			}
			_, err := c.App.Writer.Write([]byte("agent config=" + c.String("config") + "\n"))
			return err
		},
	}
}

func (r result) expect(t *testing.T, code int, stdout ...string) result {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
	if code == 0 && r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
	return r
}

func (r result) stderrHas(t *testing.T, subs ...string) result {
	t.Helper()
	if !strings.HasPrefix(r.stderr, "rumor: ") {
		t.Errorf("stderr %q, want it to start with \"rumor: \"", r.stderr)
	}
	for _, s := range subs {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	return r
}

// lines returns stdout's lines with runs of spaces collapsed.
func (r result) lines() []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

func (r result) table(t *testing.T, want ...string) {
	t.Helper()
	got := r.lines()
	if len(got) != len(want) {
		t.Errorf("table has %d lines, want %d:\n%s", len(got), len(want), r.stdout)
		return
	}
	for i := range want {
		if ok, _ := regexp.MatchString("^"+want[i]+"$", got[i]); !ok {
			t.Errorf("line %d: %q, want match for %q", i, got[i], want[i])
		}
	}
}

func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("stdout is not a %T: %v\n%s", v, err, r.stdout)
	}
	return v
}

func TestSvc(t *testing.T) {
	a := startAgent(t)
	// Flags after the arguments, repeated tags.
	a.run("svc", "set", "web", "i-1", "--addr", "10.0.0.1:80", "--tag", "zone=a", "--tag", "v=1,2", "--ttl", "30s").expect(t, 0).table(t,
		"SERVICE INSTANCE STATUS UP ADDR OWNER UPDATED EXPIRES TAGS",
		`web i-1 up yes 10.0.0.1:80 SELF0001 \ds ago in (29|30)s v=1,2,zone=a`)
	s := decodeJSON[rpc.Service](t, a.run("-o", "json", "svc", "set", "web", "i-2", "--status", "draining").expect(t, 0))
	if s.Service != "web" || s.Instance != "i-2" || s.Status != "draining" || s.Up || s.Owner != self {
		t.Errorf("svc set -o json: %+v", s)
	}
	a.run("svc", "set", "db", "p", "--addr=10.0.0.9:5432").expect(t, 0)

	a.run("svc", "get", "web", "i-1").expect(t, 0).table(t,
		"SERVICE INSTANCE STATUS UP ADDR OWNER UPDATED EXPIRES TAGS",
		`web i-1 up yes 10.0.0.1:80 SELF0001 \ds ago in (29|30)s v=1,2,zone=a`)
	got := decodeJSON[rpc.Service](t, a.run("svc", "get", "web", "i-1", "-o", "json").expect(t, 0))
	if got.Tags["v"] != "1,2" || got.Owner != self {
		t.Errorf("svc get -o json: %+v", got)
	}

	a.run("svc", "ls").expect(t, 0).table(t,
		"SERVICE INSTANCE STATUS UP ADDR OWNER UPDATED EXPIRES TAGS",
		`db p up yes 10.0.0.9:5432 SELF0001 \ds ago - -`,
		`web i-1 up yes .*`,
		`web i-2 draining no - SELF0001 \ds ago - -`)
	a.run("svc", "ls", "web", "--up").expect(t, 0).table(t,
		"SERVICE INSTANCE STATUS UP ADDR OWNER UPDATED EXPIRES TAGS",
		`web i-1 up yes .*`)
	list := decodeJSON[[]rpc.Service](t, a.run("svc", "ls", "-o", "json", "web").expect(t, 0))
	if len(list) != 2 || list[0].Instance != "i-1" || list[1].Instance != "i-2" {
		t.Errorf("svc ls -o json: %+v", list)
	}
	if r := a.run("svc", "ls", "nothing", "-o", "json").expect(t, 0); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty svc ls -o json = %q, want []", r.stdout)
	}

	if r := a.run("svc", "rm", "web", "i-2").expect(t, 0); r.stdout != "" {
		t.Errorf("svc rm printed %q", r.stdout)
	}
	a.run("svc", "get", "web", "i-2").expect(t, 1).stderrHas(t, "no service instance svc/web/i-2")

	// Another node's entry: denied.
	a.fake.PutService(rpc.Service{Service: "web", Instance: "theirs", Status: "up", Owner: other})
	a.run("svc", "rm", "web", "theirs").expect(t, 3).stderrHas(t, "owned by node "+other)
	a.run("svc", "set", "web", "theirs").expect(t, 3)
}

func TestBl(t *testing.T) {
	a := startAgent(t)
	a.run("bl", "add", "tokens", "tok-1", "--ttl", "1h", "--reason", "logout").expect(t, 0).table(t,
		"LIST ID REASON ADDED BY ADDED EXPIRES",
		`tokens tok-1 logout SELF0001 \ds ago in (59m|1h)`)
	e := decodeJSON[rpc.BlacklistEntry](t, a.run("bl", "add", "tokens", "tok-2", "-o", "json").expect(t, 0))
	if e.List != "tokens" || e.ID != "tok-2" || e.AddedBy != self || !e.Expires.IsZero() {
		t.Errorf("bl add -o json: %+v", e)
	}

	if r := a.run("bl", "has", "tokens", "tok-1").expect(t, 0); r.stdout != "" || r.stderr != "" {
		t.Errorf("bl has (present) printed %q %q", r.stdout, r.stderr)
	}
	if r := a.run("bl", "has", "tokens", "nope").expect(t, 1); r.stdout != "" || r.stderr != "" {
		t.Errorf("bl has (absent) printed %q %q", r.stdout, r.stderr)
	}
	a.run("bl", "has", "-v", "tokens", "tok-1").expect(t, 0, "tok-1", "logout")
	a.run("bl", "has", "tokens", "nope", "-v").expect(t, 1, "nope is not on list tokens")
	chk := decodeJSON[rpc.BlacklistCheck](t, a.run("bl", "has", "tokens", "tok-1", "-o", "json").expect(t, 0))
	if !chk.Present || chk.Entry.Reason != "logout" {
		t.Errorf("bl has -o json: %+v", chk)
	}
	chk = decodeJSON[rpc.BlacklistCheck](t, a.run("bl", "has", "tokens", "nope", "-o", "json").expect(t, 1))
	if chk.Present {
		t.Errorf("bl has -o json (absent): %+v", chk)
	}

	a.run("bl", "ls", "tokens").expect(t, 0).table(t,
		"LIST ID REASON ADDED BY ADDED EXPIRES",
		`tokens tok-1 logout SELF0001 \ds ago in (59m|1h)`,
		`tokens tok-2 - SELF0001 \ds ago -`)
	if l := decodeJSON[[]rpc.BlacklistEntry](t, a.run("bl", "ls", "tokens", "-o", "json").expect(t, 0)); len(l) != 2 {
		t.Errorf("bl ls -o json: %+v", l)
	}
	a.run("bl", "rm", "tokens", "tok-1").expect(t, 0)
	a.run("bl", "has", "tokens", "tok-1").expect(t, 1)
	a.run("bl", "rm", "tokens", "tok-1").expect(t, 1).stderrHas(t, "not on list")
}

func TestTask(t *testing.T) {
	a := startAgent(t)
	a.run("task", "assign", "job-1").expect(t, 0).table(t,
		"ID OWNER STATE RESULT UPDATED BY UPDATED QUEUE ATTEMPT",
		`job-1 SELF0001 queued - SELF0001 \ds ago - -`)
	tk := decodeJSON[rpc.Task](t, a.run("task", "assign", "job-2", "--node", other, "-o", "json").expect(t, 0))
	if tk.Owner != other || tk.State != "queued" {
		t.Errorf("task assign -o json: %+v", tk)
	}
	a.run("task", "where", "job-2").expect(t, 0).table(t, other+" queued")
	tk = decodeJSON[rpc.Task](t, a.run("task", "where", "job-2", "-o", "json").expect(t, 0))
	if tk.Owner != other {
		t.Errorf("task where -o json: %+v", tk)
	}
	a.run("task", "state", "job-1", "running").expect(t, 0, "job-1", "running")
	tk = decodeJSON[rpc.Task](t, a.run("task", "state", "job-1", "done", "--result", "s3://out/1", "-o", "json").expect(t, 0))
	if tk.State != "done" || tk.Result != "s3://out/1" {
		t.Errorf("task state -o json: %+v", tk)
	}
	a.run("task", "state", "job-2", "running").expect(t, 3).stderrHas(t, "owned by node "+other)
	a.run("task", "cancel", "job-2").expect(t, 0, "cancel-requested")
	a.run("task", "where", "job-2").expect(t, 0).table(t, other+" cancel-requested")
	a.run("task", "where", "nope").expect(t, 1).stderrHas(t, "no task nope")
	a.run("task", "ls").expect(t, 0).table(t,
		"ID OWNER STATE RESULT UPDATED BY UPDATED QUEUE ATTEMPT",
		`job-1 SELF0001 done s3://out/1 SELF0001 \ds ago - -`,
		`job-2 OTHR0002 cancel-requested - SELF0001 \ds ago - -`)
	if l := decodeJSON[[]rpc.Task](t, a.run("-o", "json", "task", "ls").expect(t, 0)); len(l) != 2 {
		t.Errorf("task ls -o json: %+v", l)
	}
	a.run("task", "ls", "--state", "done").expect(t, 0).table(t,
		"ID OWNER STATE RESULT UPDATED BY UPDATED QUEUE ATTEMPT",
		`job-1 SELF0001 done s3://out/1 SELF0001 \ds ago - -`)
	a.run("task", "ls", "--owner", other, "-o", "json").expect(t, 0, "job-2")
	a.run("task", "ls", "--state", "bogus").expect(t, 2).stderrHas(t, `bad task state "bogus"`)
}

func TestTaskQueue(t *testing.T) {
	a := startAgent(t)
	a.run("task", "take", "jobs").expect(t, 4).stderrHas(t, "no task to take on queue jobs")
	a.run("task", "submit", "jobs", "--id", "low", "--payload", "first in").expect(t, 0).table(t,
		"ID OWNER STATE RESULT UPDATED BY UPDATED QUEUE ATTEMPT",
		`low - queued - SELF0001 \ds ago jobs 0/3`)
	file := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(file, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.run("task", "submit", "jobs", "--id", "high", "--priority", "5", "--payload", "@"+file).expect(t, 0)
	a.run("task", "submit", "jobs", "--id", "high").expect(t, 3).stderrHas(t, "task high exists")
	a.run("task", "submit", "jobs", "--payload", "@/nonexistent/file").expect(t, 2).stderrHas(t, "--payload @/nonexistent/file")
	a.run("task", "submit", "jobs", "--max-attempts", "0").expect(t, 2).stderrHas(t, "--max-attempts must be at least 1")
	// The table prints the payload alone, for a shell worker.
	if out := a.run("task", "take", "jobs").expect(t, 0).stdout; out != "from a file" {
		t.Errorf("task take: %q, want the payload of the higher-priority task", out)
	}
	tk := decodeJSON[rpc.Task](t, a.run("task", "take", "jobs", "-o", "json").expect(t, 0))
	if tk.ID != "low" || string(tk.Payload) != "first in" || tk.Attempt != 1 || tk.Epoch == 0 {
		t.Errorf("task take -o json: %+v", tk)
	}
	a.run("task", "touch", "low").expect(t, 0, "low", "running")
	a.run("task", "done", "low", "--result", "ok").expect(t, 0, "low", "done")
	a.run("task", "fail", "high", "--result", "bad input").expect(t, 0, "high", "failed")
	a.run("task", "ls", "--queue", "jobs", "--state", "failed").expect(t, 0, "high")
	a.run("task", "take", "jobs", "--visibility", "0s").expect(t, 2).stderrHas(t, "--visibility must be positive")
}

func TestKernel(t *testing.T) {
	a := startAgent(t)
	a.run("kernel", "claim", "gpu0", "--ttl", "30s", "--job", "train").expect(t, 0).table(t,
		"ID HOLDER EPOCH STATE JOB GRANTED EXPIRES WAITING",
		`gpu0 SELF0001 1 live train \ds ago in (29|30)s 0`)
	a.run("kernel", "who", "gpu0").expect(t, 0).table(t, self+" live")
	a.run("kernel", "renew", "gpu0", "--ttl", "1m").expect(t, 0, "gpu0", "live")
	kn := decodeJSON[rpc.Kernel](t, a.run("kernel", "who", "gpu0", "-o", "json").expect(t, 0))
	if kn.Holder != self || kn.Epoch != 1 || !kn.Live {
		t.Errorf("kernel who -o json: %+v", kn)
	}
	kn = decodeJSON[rpc.Kernel](t, a.run("kernel", "release", "gpu0", "-o", "json").expect(t, 0))
	if !kn.Released || kn.Live {
		t.Errorf("kernel release -o json: %+v", kn)
	}
	a.run("kernel", "who", "gpu0").expect(t, 0).table(t, self+" released")
	a.run("kernel", "renew", "gpu0").expect(t, 3).stderrHas(t, "not held by this node")
	res := decodeJSON[rpc.ClaimResult](t, a.run("kernel", "claim", "gpu0", "-o", "json").expect(t, 0))
	if !res.Granted || res.Kernel.Epoch != 2 {
		t.Errorf("kernel claim -o json: %+v", res)
	}

	// Held by another node: exit 3, holder named in full.
	a.fake.PutKernel(rpc.Kernel{ID: "gpu1", Holder: other, Epoch: 7, Job: "theirs", Expires: time.Now().Add(time.Hour)})
	r := a.run("kernel", "claim", "gpu1").expect(t, 3)
	if r.stdout != "" || r.stderr != "rumor: kernel gpu1 is held by "+other+" (epoch 7)\n" {
		t.Errorf("denied claim: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = a.run("kernel", "claim", "gpu1", "-o", "json").expect(t, 3).stderrHas(t, "held by "+other)
	if res := decodeJSON[rpc.ClaimResult](t, r); res.Granted || res.Kernel.Holder != other {
		t.Errorf("denied claim -o json: %+v", res)
	}

	a.run("kernel", "ls").expect(t, 0).table(t,
		"ID HOLDER EPOCH STATE JOB GRANTED EXPIRES WAITING",
		`gpu0 SELF0001 2 live - \ds ago in \d+s 0`,
		`gpu1 OTHR0002 7 live theirs - in (59m|1h) 0`)
	if l := decodeJSON[[]rpc.Kernel](t, a.run("kernel", "ls", "-o", "json").expect(t, 0)); len(l) != 2 {
		t.Errorf("kernel ls -o json: %+v", l)
	}
	a.run("kernel", "who", "nope").expect(t, 1).stderrHas(t, "no kernel nope")

	// The queue, first first, after the holder's line.
	since := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	a.fake.PutKernel(rpc.Kernel{ID: "gpu2", Holder: other, Epoch: 3, Expires: time.Now().Add(time.Hour),
		Waiters: []rpc.Waiter{{Node: self, Session: "s1", Since: since}, {Node: other, Session: "s2", Since: since.Add(time.Second)}}})
	a.run("kernel", "who", "gpu2").expect(t, 0).table(t, other+" live",
		"waiting "+self+" s1 2026-12-06T03:00:00Z", "waiting "+other+" s2 2026-12-06T03:00:01Z")
}

func TestStatusMembers(t *testing.T) {
	a := startAgent(t)
	a.run("status").expect(t, 0, "node:", self, "cluster:", "test", "addrs:", "/p2p/"+self, "version:", "test (0123456789ab)\n")
	st := decodeJSON[rpc.Status](t, a.run("status", "-o", "json").expect(t, 0))
	if st.Node != self || st.Cluster != "test" || st.Commit != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("status -o json: %+v", st)
	}

	a.fake.SetMembers([]rpc.Member{
		{Node: self, Self: true, State: "alive", Connected: true, Version: "v1"},
		{Node: other, State: "suspect", Connected: true, Region: "eu", Version: "v1", LastHeard: time.Now(), Services: 2, Leases: 1, Addrs: []string{"/ip4/10.0.0.2/tcp/7946"}, Found: "dns"},
	})
	a.run("members").expect(t, 0).table(t,
		"NODE STATE LINK FOUND REGION VERSION LAST HEARD SERVICES LEASES ADDRS",
		`SELF0001 alive self - - v1 - 0 0`,
		`OTHR0002 suspect connected dns eu v1 \ds ago 2 1 /ip4/10.0.0.2/tcp/7946`)
	out := a.run("members", "-o", "json").expect(t, 0, `"found": "dns"`)
	ms := decodeJSON[[]rpc.Member](t, out)
	if len(ms) != 2 || ms[1].Node != other || ms[1].Found != "dns" || ms[0].Found != "" {
		t.Errorf("members -o json: %+v", ms)
	}
}

// pipeLines returns a writer and the lines written to it.
func pipeLines(t *testing.T) (io.WriteCloser, <-chan string) {
	pr, pw := io.Pipe()
	ch := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	t.Cleanup(func() { pw.Close() })
	return pw, ch
}

func nextLine(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("output ended")
		}
		return l
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a line")
	}
	return ""
}

// TestWatch streams events until the agent goes away.
func TestWatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		json bool
	}{
		{"watch", []string{"watch", "svc/web/"}, false},
		{"svc watch", []string{"svc", "watch", "web"}, false},
		{"json", []string{"watch", "svc/web/", "-o", "json"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startAgent(t)
			out, lines := pipeLines(t)
			var errb bytes.Buffer
			done := make(chan int, 1)
			go func() {
				done <- cli.Run(append([]string{"--socket", a.sock}, tc.args...), out, &errb)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := a.fake.WaitWatchers(ctx, 1); err != nil {
				t.Fatal(err)
			}
			for _, inst := range []string{"i-1", "i-2"} {
				if _, err := a.fake.ServiceSet(ctx, "web", inst, rpc.ServiceSet{Status: "up", Addr: "h:" + inst}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := a.fake.ServiceSet(ctx, "db", "x", rpc.ServiceSet{Status: "up"}); err != nil {
				t.Fatal(err)
			}
			if err := a.fake.ServiceDelete(ctx, "web", "i-1"); err != nil {
				t.Fatal(err)
			}
			want := []struct{ op, key string }{{"put", "svc/web/i-1"}, {"put", "svc/web/i-2"}, {"delete", "svc/web/i-1"}}
			for i, w := range want {
				l := nextLine(t, lines)
				if tc.json {
					var ev rpc.Event
					if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Op != w.op || ev.Key != w.key || ev.Node != self {
						t.Errorf("line %d: %s (%v), want %s %s", i, l, err, w.op, w.key)
					}
					continue
				}
				f := strings.Fields(l)
				if len(f) < 4 || f[1] != w.op || f[2] != w.key || f[3] != "SELF0001" {
					t.Errorf("line %d: %q, want <time> %s %s SELF0001 ...", i, l, w.op, w.key)
				}
				if w.op == "put" && !strings.Contains(l, "status=up addr=h:") {
					t.Errorf("line %d: %q lacks the value summary", i, l)
				}
			}
			// The agent goes away: the watch ends with an error.
			a.stop()
			select {
			case code := <-done:
				if code != 1 || !strings.Contains(errb.String(), "closed the watch stream") {
					t.Errorf("exit %d, stderr %q", code, errb.String())
				}
			case <-time.After(testTimeout):
				t.Fatal("watch did not end")
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	a := startAgent(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"svc", "bogus"}, `unknown command "svc bogus"`},
		{[]string{"help", "bogus"}, `unknown command "bogus"`},
		{[]string{"svc", "get", "web"}, "missing argument <instance>"},
		{[]string{"svc", "get"}, "missing argument <service>"},
		{[]string{"bl", "add", "l"}, "missing argument <id>"},
		{[]string{"explain"}, "missing argument <key>"},
		{[]string{"task", "ls", "extra"}, `unexpected argument "extra"`},
		{[]string{"svc", "ls", "a", "b"}, `unexpected argument "b"`},
		{[]string{"bl", "add", "l", "i", "--ttl", "5x"}, "invalid value"},
		{[]string{"kernel", "claim", "k", "--ttl", "soon"}, "invalid value"},
		{[]string{"bl", "add", "l", "i", "--ttl", "-5s"}, "--ttl must be positive"},
		{[]string{"kernel", "claim", "k", "--ttl", "0s"}, "--ttl must be positive"},
		{[]string{"kernel", "renew", "k", "--ttl", "500us"}, "--ttl must be positive"},
		{[]string{"--timeout", "-1s", "status"}, "--timeout must not be negative"},
		{[]string{"--timeout", "later", "status"}, "invalid value"},
		{[]string{"--socket", "", "status"}, "--socket must not be empty"},
		{[]string{"status", "-o", "yaml"}, `bad output format "yaml"`},
		{[]string{"-o", "xml", "members"}, `bad output format "xml"`},
		{[]string{"task", "state", "t", "paused"}, `bad task state "paused"`},
		{[]string{"svc", "set", "web", "i", "--tag", "novalue"}, `bad --tag "novalue"`},
		{[]string{"svc", "set", "web", "i", "--status", ""}, "--status must not be empty"},
		{[]string{"svc", "ls", "--colour"}, "flag provided but not defined: -colour"},
		{[]string{"--nope", "status"}, "flag provided but not defined: -nope"},
	} {
		r := a.run(tc.args...).expect(t, 2).stderrHas(t, tc.msg)
		if r.stdout != "" {
			t.Errorf("%v: stdout %q", tc.args, r.stdout)
		}
		if !strings.Contains(r.stderr, "--help") {
			t.Errorf("%v: stderr %q does not point at --help", tc.args, r.stderr)
		}
	}
	// No command, or a group without a subcommand: help on stderr, exit 2.
	if r := a.run().expect(t, 2); !strings.Contains(r.stderr, "COMMANDS") || !strings.HasSuffix(r.stderr, "rumor: missing command\n") {
		t.Errorf("rumor: stderr %q", r.stderr)
	}
	r := a.run("kernel").expect(t, 2)
	if !strings.Contains(r.stderr, "claim") || !strings.Contains(r.stderr, "rumor: missing subcommand for kernel") {
		t.Errorf("rumor kernel: stderr %q", r.stderr)
	}
	// The agent refusing a request as malformed is a usage error too.
	a.fake.SetError("TaskList", rpc.BadRequest("nope"))
	a.run("task", "ls").expect(t, 2).stderrHas(t, "nope")
}

func TestAgentErrors(t *testing.T) {
	a := startAgent(t)
	a.fake.SetError("ServiceSet", rpc.Denied("not you"))
	a.run("svc", "set", "web", "w1").expect(t, 3).stderrHas(t, "not you")
	a.fake.SetError("Status", io.ErrUnexpectedEOF)
	a.run("status").expect(t, 1).stderrHas(t, "unexpected EOF")
	a.fake.SetError("ServiceGet", rpc.NotFound("gone"))
	a.run("svc", "get", "web", "w1").expect(t, 1).stderrHas(t, "gone")
}

func TestAgentNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "rumor.sock")
	for _, args := range [][]string{{"status"}, {"svc", "ls"}, {"watch", "svc/"}, {"bl", "has", "l", "i"}} {
		r := runCLI(append([]string{"--socket", sock}, args...)...).expect(t, 1)
		want := "rumor: cannot reach the rumor agent at " + sock + `: is "rumor agent" running? (`
		if !strings.HasPrefix(r.stderr, want) {
			t.Errorf("%v: stderr %q, want prefix %q", args, r.stderr, want)
		}
	}
	// RUMOR_SOCKET picks the socket.
	t.Setenv("RUMOR_SOCKET", sock)
	runCLI("status").expect(t, 1).stderrHas(t, "agent at "+sock)
}

func TestFlagPlacement(t *testing.T) {
	a := startAgent(t)
	a.run("svc", "set", "web", "i-1").expect(t, 0)
	for _, args := range [][]string{
		{"--socket", a.sock, "-o", "json", "svc", "ls"},
		{"--socket", a.sock, "svc", "-o", "json", "ls"},
		{"--socket", a.sock, "svc", "ls", "-o", "json"},
		{"--socket", a.sock, "svc", "ls", "web", "--output=json"},
		{"svc", "ls", "--socket", a.sock, "-o", "json"},
		{"svc", "--socket=" + a.sock, "ls", "web", "-o", "json", "--up"},
		{"-o", "table", "--socket", a.sock, "svc", "ls", "-o", "json"}, // the command's own -o wins
	} {
		r := runCLI(args...).expect(t, 0)
		var l []rpc.Service
		if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l) != 1 {
			t.Errorf("%v: stdout %q (%v)", args, r.stdout, err)
		}
	}
	// "--" ends the flags: an id may start with '-'.
	a.run("bl", "add", "--reason", "r", "--", "l", "-weird").expect(t, 0, "-weird")
	a.run("bl", "has", "l", "--", "-weird").expect(t, 0)
	// Extra commands take their own flags, and may choose their exit code.
	runCLI("agent", "--config", "x.yaml").expect(t, 0, "agent config=x.yaml")
	runCLI("agent", "--config", "fail").expect(t, 4).stderrHas(t, "bad config")
}

func TestHelp(t *testing.T) {
	r := runCLI("help").expect(t, 0, "svc", "bl", "task", "kernel", "watch", "members", "status", "agent", "Exit codes", "--socket")
	if strings.Contains(r.stdout, "version") {
		t.Errorf("help mentions a version flag:\n%s", r.stdout)
	}
	runCLI("--help").expect(t, 0, "COMMANDS")
	runCLI("svc", "--help").expect(t, 0, "set", "get", "ls", "rm", "watch")
	runCLI("svc", "set", "--help").expect(t, 0, "<service> <instance>", "--addr", "--status", "--tag", "--ttl", "--output")
	runCLI("svc", "set", "web", "i", "--help").expect(t, 0, "--addr")
	runCLI("help", "kernel").expect(t, 0, "claim", "renew", "release", "who", "fencing")
	runCLI("help", "task").expect(t, 0, "assign", "where", "cancel", "state")
	runCLI("bl", "has", "-h").expect(t, 0, "exit 0")
}

func TestTimeout(t *testing.T) {
	a := startAgent(t)
	a.fake.SetHook("Status", func(ctx context.Context) error {
		<-ctx.Done() // the server passes on the client's departure
		return ctx.Err()
	})
	a.run("--timeout", "50ms", "status").expect(t, 1).stderrHas(t, "the agent did not answer within 50ms (see --timeout)")
}

func TestKernelWatchShowsLeaseEvents(t *testing.T) {
	a := startAgent(t)
	out, lines := pipeLines(t)
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- cli.Run([]string{"--socket", a.sock, "kernel", "watch", "k1"}, out, &errb) }()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := a.fake.WaitWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.fake.Emit(rpc.Event{Key: "kernel/k10", Op: "claim", Node: other, Time: now}) // another kernel: filtered out
	a.fake.Emit(rpc.Event{Key: "kernel/k1", Op: "lease", Lease: rpc.LeaseLost, Node: self, Time: now,
		Value: rpc.Kernel{ID: "k1", Holder: other, Epoch: 7, Live: true}})
	l := nextLine(t, lines)
	if f := strings.Fields(l); len(f) < 4 || f[1] != "lease:lost" || f[2] != "kernel/k1" {
		t.Fatalf("line %q, want <time> lease:lost kernel/k1 ...", l)
	}
	a.stop()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("watch did not end")
	}
}

func TestLock(t *testing.T) {
	a := startAgent(t)
	r := a.run("lock", "gpu0", "--ttl", "30s", "--", "sh", "-c", `echo "$RUMOR_LOCK_NAME $RUMOR_LOCK_EPOCH $RUMOR_LOCK_SESSION"; exit 5`).expect(t, 5)
	if r.stdout != "gpu0 1 fake-session\n" {
		t.Errorf("lock: stdout %q", r.stdout)
	}
	if k := decodeJSON[rpc.Kernel](t, a.run("kernel", "who", "gpu0", "-o", "json").expect(t, 0)); !k.Released {
		t.Errorf("after the command: %+v", k)
	}
	a.fake.PutKernel(rpc.Kernel{ID: "gpu1", Holder: other, Epoch: 7, Expires: time.Now().Add(time.Hour)})
	a.run("lock", "gpu1", "--", "true").expect(t, 3).stderrHas(t, "lock gpu1 is held by "+other+" (epoch 7)")
	a.run("lock", "gpu0").expect(t, 2).stderrHas(t, "missing argument <command>")
	a.run("lock", "gpu0", "--signal", "BOGUS", "--", "true").expect(t, 2).stderrHas(t, `unknown signal "BOGUS"`)
	a.run("lock", "gpu0", "--wait", "-1s", "--", "true").expect(t, 2).stderrHas(t, "--wait must not be negative")
	a.run("lock", "gpu0", "--grace", "1h", "--", "true").expect(t, 2).stderrHas(t, "leaves the command no time")
	a.run("lock", "gpu0", "--", "/nonexistent/cmd").expect(t, 1).stderrHas(t, "start /nonexistent/cmd")
}

// TestWatchSinceAndMarkers: the watch flags reach the API (--since,
// --keepalive 0 for none), and the table output shows synced and resync
// lines with their cursor and reason, and leaves keepalives out.
func TestWatchSinceAndMarkers(t *testing.T) {
	a := startAgent(t)
	out, lines := pipeLines(t)
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run([]string{"--socket", a.sock, "watch", "", "--since", "abc-7", "--keepalive", "0"}, out, &errb)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := a.fake.WaitWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := a.fake.WatchRequests(); len(got) != 1 || got[0] != (rpc.WatchRequest{Since: "abc-7", Keepalive: -1}) {
		t.Fatalf("requests %+v", got)
	}
	a.fake.Emit(rpc.Event{Op: rpc.OpResync, Reason: rpc.ResyncTooOld})
	a.fake.Emit(rpc.Event{Op: rpc.OpKeepalive, Cursor: "abc-8"})
	a.fake.Emit(rpc.Event{Op: rpc.OpSynced, Cursor: "abc-9"})
	for _, want := range []string{" resync reason=too-old", " synced cursor=abc-9"} {
		if l := nextLine(t, lines); !strings.HasSuffix(l, want) {
			t.Fatalf("line %q, want it to end with %q", l, want)
		}
	}
	a.stop()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("watch did not end")
	}
}
