package crdt

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestHLCPacking(t *testing.T) {
	for _, tc := range []struct {
		wall    int64
		logical uint16
	}{
		{0, 0}, {0, 1}, {1, 0}, {1_700_000_000_000, 0}, {1_700_000_000_000, 65535}, {1<<48 - 1, 65535},
	} {
		h := MakeHLC(tc.wall, tc.logical)
		if h.WallMS() != tc.wall || h.Logical() != tc.logical {
			t.Errorf("MakeHLC(%d, %d) unpacks to (%d, %d)", tc.wall, tc.logical, h.WallMS(), h.Logical())
		}
	}
	if got := MakeHLC(1234, 5).String(); got != "1234.5" {
		t.Errorf("String = %q, want 1234.5", got)
	}
	// Packed order is (wall, logical) order.
	if !(MakeHLC(10, 65535) < MakeHLC(11, 0)) || !(MakeHLC(10, 1) < MakeHLC(10, 2)) {
		t.Error("packed HLC does not order by wall then logical")
	}
}

// nowChecked calls c.Now(wall) and checks it is strictly after prev and not
// behind wall.
func nowChecked(t *testing.T, c *Clock, prev HLC, wall int64) HLC {
	t.Helper()
	h := c.Now(wall)
	if h <= prev {
		t.Fatalf("Now(%d) = %v, not after previous reading %v", wall, h, prev)
	}
	if h < MakeHLC(wall, 0) {
		t.Fatalf("Now(%d) = %v, behind the wall clock", wall, h)
	}
	if c.Last() != h {
		t.Fatalf("Last() = %v after Now returned %v", c.Last(), h)
	}
	return h
}

func TestClockNowZeroValue(t *testing.T) {
	var c Clock
	prev := nowChecked(t, &c, 0, 0) // the zero clock at wall 0 must still move
	prev = nowChecked(t, &c, prev, 0)
	nowChecked(t, &c, prev, 5)
}

func TestClockNowFollowsWall(t *testing.T) {
	var c Clock
	if h := c.Now(1000); h != MakeHLC(1000, 0) {
		t.Fatalf("first Now(1000) = %v, want 1000.0", h)
	}
	if h := c.Now(1000); h != MakeHLC(1000, 1) {
		t.Fatalf("second Now(1000) = %v, want 1000.1", h)
	}
	if h := c.Now(1005); h != MakeHLC(1005, 0) {
		t.Fatalf("Now(1005) = %v, want 1005.0 (wall moved on, logical resets)", h)
	}
}

func TestClockNowWallGoesBackwards(t *testing.T) {
	var c Clock
	prev := nowChecked(t, &c, 0, 5000)
	for _, wall := range []int64{4000, 4999, 5000, 1, 0, 4500, 5000, 5001, 3000, 5001} {
		prev = nowChecked(t, &c, prev, wall)
	}
	if prev.WallMS() != 5001 {
		t.Errorf("final reading %v, want wall 5001", prev)
	}
}

func TestClockNowStallCarriesLogicalOverflow(t *testing.T) {
	const wall = 1_700_000_000_000
	var c Clock
	const n = 70_000 // more readings than fit the logical counter
	prev := HLC(0)
	for range n {
		prev = nowChecked(t, &c, prev, wall)
	}
	// Readings are consecutive integers from wall.0, so the counter carried.
	if want := MakeHLC(wall, 0) + n - 1; prev != want {
		t.Fatalf("after %d readings at one ms: %v, want %v", n, prev, want)
	}
	if prev.WallMS() != wall+1 || prev.Logical() != n-1-65536 {
		t.Fatalf("after overflow: %v, want %d.%d", prev, wall+1, n-1-65536)
	}

	// The exact carry, from a restored reading.
	var d Clock
	d.Restore(MakeHLC(wall, 65534))
	for _, want := range []HLC{MakeHLC(wall, 65535), MakeHLC(wall+1, 0), MakeHLC(wall+1, 1)} {
		if h := d.Now(wall); h != want {
			t.Fatalf("Now(%d) = %v, want %v", wall, h, want)
		}
	}
	// The wall catching up with the carried reading does not go back either.
	if h := d.Now(wall + 1); h != MakeHLC(wall+1, 2) {
		t.Fatalf("Now(%d) = %v, want %v", wall+1, h, MakeHLC(wall+1, 2))
	}
}

func TestClockNowRandomWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var c Clock
	wall := int64(1_000_000)
	prev := HLC(0)
	for range 20_000 {
		switch r.IntN(4) {
		case 0: // stall
		case 1:
			wall -= r.Int64N(50) // clock stepped back
		default:
			wall += r.Int64N(3)
		}
		prev = nowChecked(t, &c, prev, wall)
	}
}

func TestClockObserveAdvancesPastRemote(t *testing.T) {
	const wall, skew = 10_000, 2_000
	var c Clock
	c.Now(wall)
	remote := MakeHLC(wall+1500, 7) // ahead, within the skew bound
	if err := c.Observe(remote, wall, skew); err != nil {
		t.Fatalf("Observe within skew: %v", err)
	}
	if c.Last() != remote {
		t.Fatalf("Last() = %v after observing %v", c.Last(), remote)
	}
	// Later local readings order after the remote one, even with the local
	// wall clock behind it.
	prev := remote
	for range 3 {
		prev = nowChecked(t, &c, prev, wall)
	}

	// An older remote reading does not move the clock back.
	before := c.Last()
	if err := c.Observe(MakeHLC(wall-5000, 0), wall, skew); err != nil {
		t.Fatalf("Observe of an old reading: %v", err)
	}
	if c.Last() != before {
		t.Fatalf("Observe of an old reading moved Last from %v to %v", before, c.Last())
	}
	nowChecked(t, &c, before, wall)
}

func TestClockObserveAtSkewBoundary(t *testing.T) {
	const wall, skew = 10_000, 2_000
	var c Clock
	c.Now(wall)
	edge := MakeHLC(wall+skew, 0) // exactly max-skew ahead: allowed
	if err := CheckSkew(edge, wall, skew); err != nil {
		t.Fatalf("CheckSkew at exactly max-skew: %v", err)
	}
	if err := c.Observe(edge, wall, skew); err != nil {
		t.Fatalf("Observe at exactly max-skew: %v", err)
	}
	if c.Last() != edge {
		t.Fatalf("Last() = %v, want %v", c.Last(), edge)
	}
	if h := c.Now(wall); h <= edge {
		t.Fatalf("Now after observing %v = %v", edge, h)
	}
}

func TestClockRefusesSkew(t *testing.T) {
	const wall, skew = 10_000, 2_000
	for _, remote := range []HLC{
		MakeHLC(wall+skew+1, 0),
		MakeHLC(wall+skew+1, 65535),
		MakeHLC(wall+1_000_000, 3),
		MakeHLC(1<<48-1, 65535),
	} {
		err := CheckSkew(remote, wall, skew)
		if !errors.Is(err, ErrClockSkew) {
			t.Errorf("CheckSkew(%v, %d, %d) = %v, want ErrClockSkew", remote, wall, skew, err)
		}
		var c Clock
		c.Now(wall)
		c.Now(wall)
		before := c.Last()
		err = c.Observe(remote, wall, skew)
		if !errors.Is(err, ErrClockSkew) {
			t.Errorf("Observe(%v, %d, %d) = %v, want ErrClockSkew", remote, wall, skew, err)
		}
		if c.Last() != before {
			t.Errorf("refused Observe(%v) moved the clock from %v to %v", remote, before, c.Last())
		}
		if h := c.Now(wall); h != before+1 {
			t.Errorf("Now after a refused Observe = %v, want %v", h, before+1)
		}
	}
	// Zero skew tolerance: only readings not ahead of the wall pass.
	if err := CheckSkew(MakeHLC(wall, 9), wall, 0); err != nil {
		t.Errorf("CheckSkew same ms, zero skew: %v", err)
	}
	if err := CheckSkew(MakeHLC(wall+1, 0), wall, 0); !errors.Is(err, ErrClockSkew) {
		t.Errorf("CheckSkew 1 ms ahead, zero skew: %v, want ErrClockSkew", err)
	}
	// Readings from the past are never skew.
	if err := CheckSkew(MakeHLC(0, 0), wall, skew); err != nil {
		t.Errorf("CheckSkew of an old reading: %v", err)
	}
}

func TestClockRestoreNeverLowers(t *testing.T) {
	var c Clock
	c.Restore(MakeHLC(5000, 3))
	if c.Last() != MakeHLC(5000, 3) {
		t.Fatalf("Restore on a zero clock: Last = %v", c.Last())
	}
	c.Restore(MakeHLC(4000, 9))
	if c.Last() != MakeHLC(5000, 3) {
		t.Fatalf("Restore lowered the clock to %v", c.Last())
	}
	c.Restore(0)
	if c.Last() != MakeHLC(5000, 3) {
		t.Fatalf("Restore(0) lowered the clock to %v", c.Last())
	}
	// After a restart with the wall clock behind the persisted mark, no
	// stamp is reused.
	if h := c.Now(4000); h <= MakeHLC(5000, 3) {
		t.Fatalf("Now after Restore = %v, reuses a persisted reading", h)
	}
	hi := c.Now(4000)
	c.Restore(hi - 1)
	if c.Last() != hi {
		t.Fatalf("Restore below Last moved it from %v to %v", hi, c.Last())
	}
	c.Restore(MakeHLC(9000, 0))
	if c.Last() != MakeHLC(9000, 0) {
		t.Fatalf("Restore did not raise the clock: %v", c.Last())
	}
}
