package daemon

import (
	"fmt"
	"strings"

	"github.com/rumor-dev/rumor/crdt"
)

// maxNameLen bounds one key segment (service, instance, list, id).
const maxNameLen = 200

// checkName reports why s cannot be a key segment.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s must not be empty", what)
	case len(s) > maxNameLen:
		return fmt.Errorf("%s is %d bytes, limit %d", what, len(s), maxNameLen)
	case strings.ContainsAny(s, "/\x00\n"):
		return fmt.Errorf("%s %q must not contain '/', NUL or newline", what, s)
	}
	return nil
}

// segments is how many '/'-separated segments a key of each namespace has.
var segments = map[crdt.Namespace]int{
	crdt.NSService: 3, crdt.NSBlacklist: 3, crdt.NSTask: 2, crdt.NSKernel: 2, crdt.NSNode: 2,
}

// checkKey reports why key is not a well-formed key of a known namespace.
func checkKey(key string) error {
	ns := crdt.NamespaceOf(key)
	n, ok := segments[ns]
	if !ok {
		return fmt.Errorf("key %q: unknown namespace", key)
	}
	parts := strings.Split(key, "/")
	if len(parts) != n {
		return fmt.Errorf("key %q: want %d segments", key, n)
	}
	for _, p := range parts[1:] {
		if err := checkName("key segment", p); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	return nil
}

func serviceKey(service, instance string) string { return "svc/" + service + "/" + instance }
func blacklistKey(list, id string) string        { return "bl/" + list + "/" + id }
func taskKey(id string) string                   { return "task/" + id }
func kernelKey(id string) string                 { return "kernel/" + id }
func nodeKey(id string) string                   { return "node/" + id }

// lastSegment returns what follows the last '/'.
func lastSegment(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }
