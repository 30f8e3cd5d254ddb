package sim

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/rumor-dev/rumor/internal/cluster"
)

// summary adds up what the scenarios of one test binary run measured.
var summary struct {
	sync.Mutex
	scenarios, agents int
	virtual, wall     time.Duration
	waits             []time.Duration
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if summary.scenarios > 0 {
		slices.Sort(summary.waits)
		q := func(p float64) time.Duration {
			if len(summary.waits) == 0 {
				return 0
			}
			return summary.waits[int(p*float64(len(summary.waits)-1))]
		}
		fmt.Printf("sim: %d scenarios, %d agents, simulated %v, wall %v; observations held after p50 %v, p99 %v, max %v\n",
			summary.scenarios, summary.agents, summary.virtual.Round(time.Millisecond), summary.wall.Round(time.Millisecond),
			q(0.5), q(0.99), q(1))
	}
	os.Exit(code)
}

// TestScenarios runs every scenario of testdata/scenarios on the simulated
// network in virtual time.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		runScenario(t, path, false)
	})
}

// TestScenariosOnRealTCP runs the scenarios that say how many agents to
// run on real TCP (real-n) with that many agents on 127.0.0.1, in real
// time: the simulation checked against the network it simulates.
func TestScenariosOnRealTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("real time: skipped with -short")
	}
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), " real-n=") {
			t.Skip("no real-n: simulated only")
		}
		runScenario(t, path, true)
	})
}

// runScenario runs one scenario file and adds what it measured to the
// summary.
func runScenario(t *testing.T, path string, real bool) {
	var rep *Report
	var virtual time.Duration
	wall := time.Now()
	run := func(t *testing.T) {
		start := time.Now()
		s := NewScript(t, real)
		if raceEnabled {
			s.MaxAgents = 16
		}
		datadriven.RunTest(t, path, s.Run)
		s.Finish()
		rep, virtual = s.Report, time.Since(start)
	}
	if real {
		run(t)
	} else {
		cluster.Test(t, run)
	}
	if rep == nil {
		return // failed
	}
	took := time.Since(wall)
	slowest := time.Duration(0)
	for _, w := range rep.Waits {
		slowest = max(slowest, w)
	}
	clock := "virtual"
	if real {
		clock = "real"
	}
	traffic := ""
	if rep.Packets > 0 {
		traffic = fmt.Sprintf("; %d packets (%.1f MB), %d dropped", rep.Packets, float64(rep.Bytes)/1e6, rep.Dropped)
	}
	var each []string
	for i, w := range rep.Waits {
		each = append(each, fmt.Sprintf("line %s %v", rep.Lines[i], w.Round(time.Millisecond)))
	}
	t.Logf("observations held after: %s", strings.Join(each, ", "))
	t.Logf("%d agents: %s %v, wall %v; %d observations, the slowest held after %v%s",
		rep.Agents, clock, virtual.Round(time.Millisecond), took.Round(time.Millisecond), len(rep.Waits), slowest.Round(time.Millisecond), traffic)
	summary.Lock()
	defer summary.Unlock()
	summary.scenarios++
	summary.agents += rep.Agents
	summary.virtual += virtual
	summary.wall += took
	summary.waits = append(summary.waits, rep.Waits...)
}
