package crdt

import (
	"errors"
	"fmt"
)

// logicalBits is the width of the logical counter in a packed HLC value.
const logicalBits = 16

const logicalMask = 1<<logicalBits - 1

// HLC is a hybrid logical clock reading: wall milliseconds in the high 48
// bits and a logical counter in the low 16. Larger is later.
type HLC uint64

// MakeHLC packs wall milliseconds and a logical counter.
func MakeHLC(wallMS int64, logical uint16) HLC {
	return HLC(uint64(wallMS)<<logicalBits | uint64(logical))
}

// WallMS returns the wall-clock part in milliseconds since the Unix epoch.
func (h HLC) WallMS() int64 { return int64(uint64(h) >> logicalBits) }

// Logical returns the logical counter.
func (h HLC) Logical() uint16 { return uint16(uint64(h) & logicalMask) }

// String formats the reading as "<wallms>.<logical>".
func (h HLC) String() string { return fmt.Sprintf("%d.%d", h.WallMS(), h.Logical()) }

// ErrClockSkew is returned by Clock.Observe for a remote reading too far
// ahead of the local wall clock.
var ErrClockSkew = errors.New("crdt: remote clock too far ahead")

// Clock is a hybrid logical clock. It is not safe for concurrent use; the
// owner serialises access. The zero value is ready and starts at zero.
type Clock struct {
	last HLC
}

// Last returns the highest reading the clock has issued or observed. Persist
// it and pass it to Restore after a restart so stamps are never reused.
func (c *Clock) Last() HLC { return c.last }

// Restore raises the clock to at least h (used after a restart).
func (c *Clock) Restore(h HLC) {
	if h > c.last {
		c.last = h
	}
}

// Now returns a reading strictly greater than every earlier reading and not
// behind wallMS.
func (c *Clock) Now(wallMS int64) HLC {
	wall := MakeHLC(wallMS, 0)
	if wall > c.last {
		c.last = wall
	} else {
		c.last++ // a logical overflow carries into the wall part, which stays monotonic
	}
	return c.last
}

// Observe merges a remote reading into the clock, so that later local
// readings order after it. A remote reading whose wall part is more than
// maxSkewMS ahead of wallMS is refused with ErrClockSkew and leaves the clock
// unchanged.
func (c *Clock) Observe(remote HLC, wallMS, maxSkewMS int64) error {
	if err := CheckSkew(remote, wallMS, maxSkewMS); err != nil {
		return err
	}
	if remote > c.last {
		c.last = remote
	}
	return nil
}

// CheckSkew reports ErrClockSkew if remote is more than maxSkewMS ahead of
// wallMS.
func CheckSkew(remote HLC, wallMS, maxSkewMS int64) error {
	if ahead := remote.WallMS() - wallMS; ahead > maxSkewMS {
		return fmt.Errorf("%w: %d ms ahead, limit %d ms", ErrClockSkew, ahead, maxSkewMS)
	}
	return nil
}
