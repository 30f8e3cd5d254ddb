//go:build race

package store

// raceEnabled reports that the race detector is on; timings are then meaningless.
const raceEnabled = true
