package clock

import (
	"testing"
	"time"
)

func TestOffsetAndFake(t *testing.T) {
	base := time.Unix(1000, 0)
	f := NewFake(base)
	o := Offset{Base: f, Offset: 1500 * time.Millisecond}
	if got := o.Now(); !got.Equal(base.Add(1500 * time.Millisecond)) {
		t.Fatalf("offset Now = %v", got)
	}
	f.Advance(time.Second)
	if got := f.Now(); !got.Equal(base.Add(time.Second)) {
		t.Fatalf("fake Now after Advance = %v", got)
	}
	for in, want := range map[string]time.Duration{"+1.5s": 1500 * time.Millisecond, "-200ms": -200 * time.Millisecond, "": 0, "0": 0} {
		if got, err := ParseOffset(in); err != nil || got != want {
			t.Errorf("ParseOffset(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseOffset("soon"); err == nil {
		t.Error("ParseOffset(soon) succeeded")
	}
}
