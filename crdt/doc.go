// Package crdt holds rumor's replicated data types: the hybrid logical clock,
// stamps, deltas, per-key entries and their merge, and the kernel lease rule.
//
// The package is pure: no IO, no goroutines and no wall clock. Time comes in
// as arguments (wall milliseconds), so every function here is deterministic
// and can be tested exhaustively.
//
// Every key lives in a namespace, the first path segment of the key:
//
//	svc/<service>/<instance>  LWW register by stamp, written by its owner
//	bl/<list>/<id>            add/remove element, later stamp wins, remove wins a tie
//	task/<id>                 LWW register with a state-order guard
//	kernel/<id>               set of lease records, only those that can still matter; holder computed by Resolve
//	node/<id>                 LWW register by stamp, written by the node itself
//	kv/<path...>              LWW register by stamp; the value carries a version (see KVValue)
//
// An Entry is the merged state of one key. Merge on entries is commutative,
// associative and idempotent, so replicas that have seen the same deltas, in
// any order and with any duplicates, hold equal entries.
package crdt
