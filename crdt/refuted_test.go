package crdt

import "testing"

func TestRefutedAndAnnounced(t *testing.T) {
	mk := func(key string, op Op, val string) Delta {
		return Delta{Key: key, Stamp: Stamp{HLC: 1, Node: "n"}, Op: op, Value: []byte(val)}
	}
	for _, c := range []struct {
		d    Delta
		want uint64
	}{
		{mk("node/t", OpPut, `{"inc":3}`), 3},
		{mk("node/t", OpDelete, `{"inc":3}`), 0},
		{mk("node/t", OpPut, `{`), 0},
		{mk("node/t/a", OpPut, `{"inc":3}`), 0},
		{mk("svc/t/a", OpPut, `{"inc":3}`), 0},
	} {
		if got := Announced(c.d); got != c.want {
			t.Errorf("Announced(%s %s %s) = %d, want %d", c.d.Key, c.d.Op, c.d.Value, got, c.want)
		}
	}
	for _, c := range []struct {
		d    Delta
		inc  uint64
		want bool
	}{
		{mk("node/t/a", OpPut, `{"inc":2}`), 3, true},
		{mk("node/t/a", OpPut, `{"inc":2,"dead":true}`), 3, true},
		{mk("node/t/a", OpPut, `{"inc":3}`), 3, false},
		{mk("node/t/a", OpPut, `{"inc":4}`), 3, false},
		{mk("node/t/a", OpPut, `{"inc":2}`), 0, false},
		{mk("node/t/a", OpPut, `{`), 3, false},
		{mk("node/t/a", OpDelete, `{"inc":2}`), 3, false},
		{mk("node/t", OpPut, `{"inc":2}`), 3, false},
		{mk("bl/t/a", OpPut, `{"inc":2}`), 3, false},
	} {
		if got := Refuted(c.d, c.inc); got != c.want {
			t.Errorf("Refuted(%s %s %s, %d) = %v, want %v", c.d.Key, c.d.Op, c.d.Value, c.inc, got, c.want)
		}
	}
}
