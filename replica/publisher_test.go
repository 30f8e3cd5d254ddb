package replica

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rumor-dev/rumor/clock"
	"github.com/rumor-dev/rumor/crdt"
	"github.com/rumor-dev/rumor/wire"
)

func TestClassesCoverEveryNamespaceOnce(t *testing.T) {
	var all []crdt.Namespace
	for c := range nClasses {
		all = append(all, classes[c]...)
	}
	if len(all) != len(crdt.Namespaces) {
		t.Fatalf("classes list %v, want each of %v once", all, crdt.Namespaces)
	}
	for _, ns := range crdt.Namespaces {
		if !slices.Contains(all, ns) {
			t.Errorf("namespace %q is in no class: its deltas would never be published", ns)
		}
		if !slices.Contains(classes[classOf(ns)], ns) {
			t.Errorf("classOf(%q) = %d, whose list %v lacks it", ns, classOf(ns), classes[classOf(ns)])
		}
	}
	for ns, want := range map[crdt.Namespace]bool{crdt.NSBlacklist: true, crdt.NSKernel: true, crdt.NSWait: true, crdt.NSNode: true, crdt.NSService: false, crdt.NSTask: false} {
		if InLane(ns) != want {
			t.Errorf("InLane(%q) = %v, want %v", ns, !want, want)
		}
	}
}

// gate is a Publisher that holds every publish on a bulk topic until
// released, and reports each publish by topic.
type gate struct {
	published chan published
	release   chan struct{}
}

type published struct {
	topic  string
	deltas []crdt.Delta
}

func (g *gate) Publish(ctx context.Context, topic string, data []byte) error {
	ds, err := wire.Decode(data, wire.Limits{})
	if err != nil {
		return err
	}
	if !InLane(crdt.Namespace(topic)) {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.published <- published{topic, ds}
	return nil
}

// TestLaneDoesNotWaitForBulk: while an svc batch is being published and
// more svc deltas are queued behind it, a bl write is published at once,
// and the svc deltas follow when the publish completes.
func TestLaneDoesNotWaitForBulk(t *testing.T) {
	r := open(t, newNode(t), clock.System{}, nil)
	g := &gate{published: make(chan published, 64), release: make(chan struct{})}
	r.Start(g)
	t.Cleanup(func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	})
	write := func(d crdt.Delta) {
		t.Helper()
		if _, _, err := r.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	// The first svc write leaves at once and is held in its publish; the
	// next ones queue behind it.
	write(put("svc/web/0", "up"))
	const queued = 300 // more than a batch (256)
	for i := 1; i <= queued; i++ {
		write(put("svc/web/"+string(rune('a'+i%26))+string(rune('a'+i/26)), "up"))
	}
	write(crdt.Delta{Key: "bl/fraud/u1", Op: crdt.OpPut, Value: crdt.Encode(crdt.BlacklistValue{Reason: "r"})})
	select {
	case p := <-g.published:
		if p.topic != "bl" || len(p.deltas) != 1 || p.deltas[0].Key != "bl/fraud/u1" {
			t.Fatalf("first publish on %q of %d deltas, want the bl write alone", p.topic, len(p.deltas))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bl write was not published while an svc publish was held")
	}
	close(g.release)
	svc := 0
	deadline := time.After(10 * time.Second)
	for svc < 1+queued {
		select {
		case p := <-g.published:
			if p.topic != "svc" {
				t.Fatalf("publish on %q, want svc", p.topic)
			}
			svc += len(p.deltas)
		case <-deadline:
			t.Fatalf("%d of %d svc deltas published after the release", svc, 1+queued)
		}
	}
}
