//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/config"
	"github.com/rumor-dev/rumor/rpc"
)

// chromium finds a headless browser: $RUMOR_CHROMIUM, or chromium (Debian's
// package, which `make test-deps` installs) or chromium-browser on PATH.
func chromium() (string, error) {
	if p := os.Getenv("RUMOR_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH")
}

// render loads url in headless Chromium, lets its scripts run for a few
// seconds of virtual time, saves a screenshot and returns the DOM. The
// browser runs in its own process group, killed if it outlives ctx.
func render(ctx context.Context, browser, profile, url, screenshot string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless=new", "--disable-gpu", "--no-sandbox",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
		"--user-data-dir="+profile, "--window-size=1200,900", "--virtual-time-budget=3000",
		"--screenshot="+screenshot, "--dump-dom", url)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS=disabled:")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w; stderr: %s", browser, err, lastLines(stderr.String(), 5))
	}
	return string(out), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// section returns the part of dom from <table id="id" to its </table>.
func section(dom, id string) string {
	i := strings.Index(dom, `<table id="`+id+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(dom[i:], "</table>")
	if j < 0 {
		return dom[i:]
	}
	return dom[i : i+j]
}

// TestStatusPageBrowser opens the status page of one of three agents in
// headless Chromium and waits until it shows all three members alive and a
// kernel claimed on another agent, then keeps the screenshot
// ($RUMOR_STATUS_SCREENSHOT, or a temporary directory).
func TestStatusPageBrowser(t *testing.T) {
	browser, err := chromium()
	if err != nil {
		t.Skipf("SKIPPED: the status page browser test needs headless Chromium: %v. "+
			"Install it with `make test-deps` (as root: apt-get install chromium) or set RUMOR_CHROMIUM.", err)
	}
	start := time.Now()
	agents := startCluster(t, 3, func(c *config.Config) { c.MetricsAddr = "127.0.0.1:0" })
	ctx := context.Background()
	if r, err := agents[1].KernelClaim(ctx, "jupyter-0", rpc.KernelClaim{Keep: true, Job: "notebook-1"}); err != nil || !r.Granted {
		t.Fatalf("claim: %+v, %v", r, err)
	}
	for i, a := range agents {
		if _, err := a.ServiceSet(ctx, "web", fmt.Sprintf("w%d", i), rpc.ServiceSet{Status: "up", Addr: fmt.Sprintf("10.0.0.%d:8080", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := agents[2].BlacklistAdd(ctx, "fraud", "user42", rpc.BlacklistAdd{Reason: "chargeback"}); err != nil {
		t.Fatal(err)
	}
	shot, kept := os.Getenv("RUMOR_STATUS_SCREENSHOT"), ""
	if shot == "" {
		shot, kept = filepath.Join(t.TempDir(), "status.png"), " (removed after the test: set RUMOR_STATUS_SCREENSHOT=file.png to keep it)"
	} else if shot, err = filepath.Abs(shot); err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	url := "http://" + agents[0].MetricsAddr() + "/"
	var dom string
	eventually(t, 90*time.Second, "the status page shows 3 members and the kernel", func() error {
		if dom, err = render(ctx, browser, profile, url, shot); err != nil {
			return err
		}
		members, kernels := section(dom, "members"), section(dom, "kernels")
		for _, a := range agents {
			if !strings.Contains(members, `title="`+a.ID()+`"`) {
				return fmt.Errorf("member %s not shown: %.2000s", shortID(a.ID()), members)
			}
		}
		if n := strings.Count(members, `class="alive"`); n != 3 {
			return fmt.Errorf("%d members alive, want 3: %.2000s", n, members)
		}
		for _, want := range []string{"jupyter-0", `title="` + agents[1].ID() + `"`, "notebook-1", `class="live"`} {
			if !strings.Contains(kernels, want) {
				return fmt.Errorf("kernels table lacks %q: %.2000s", want, kernels)
			}
		}
		return nil
	})
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("status page rendered in %v (including cluster start); screenshot: %s%s", time.Since(start).Round(time.Millisecond), shot, kept)
}
