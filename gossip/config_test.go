package gossip

import "testing"

func TestParamsOfADegree(t *testing.T) {
	for _, c := range []struct{ d, D, lo, hi int }{{0, DefaultMeshDegree, 3, 6}, {1, 1, 1, 1}, {3, 3, 2, 4}, {4, 4, 3, 6}, {6, 6, 4, 9}, {12, 12, 8, 18}} {
		p := Params(c.d)
		if p.D != c.D || p.Dlo != c.lo || p.Dhi != c.hi || p.Dscore > p.Dhi || p.Dout != 0 {
			t.Errorf("Params(%d): D %d, Dlo %d, Dhi %d, Dscore %d, Dout %d; want D %d, %d..%d, Dout 0", c.d, p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout, c.D, c.lo, c.hi)
		}
	}
}
