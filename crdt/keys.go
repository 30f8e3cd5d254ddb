package crdt

import (
	"fmt"
	"strings"
)

// MaxNameLen bounds one key segment (service, instance, list, id).
const MaxNameLen = 200

// CheckName reports why s cannot be a key segment; what names it in the
// message.
func CheckName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s must not be empty", what)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%s is %d bytes, limit %d", what, len(s), MaxNameLen)
	case strings.ContainsAny(s, "/\x00\n"):
		return fmt.Errorf("%s %q must not contain '/', NUL or newline", what, s)
	}
	return nil
}

// segments is how many '/'-separated segments a key of each namespace has.
var segments = map[Namespace]int{
	NSService: 3, NSBlacklist: 3, NSTask: 2, NSKernel: 2, NSNode: 2, NSWait: 3,
}

// also is a second segment count a namespace's keys may have: node/ holds
// members (node/<id>) and accusations (node/<target>/<accuser>).
var also = map[Namespace]int{NSNode: 3}

// CheckKey reports why key is not a well-formed key of a known namespace.
func CheckKey(key string) error {
	ns := NamespaceOf(key)
	if ns == NSKV {
		return checkKVKey(key)
	}
	n, ok := segments[ns]
	if !ok {
		return fmt.Errorf("key %q: unknown namespace", key)
	}
	parts := strings.Split(key, "/")
	if len(parts) != n && (also[ns] == 0 || len(parts) != also[ns]) {
		return fmt.Errorf("key %q: want %d segments", key, n)
	}
	for _, p := range parts[1:] {
		if err := CheckName("key segment", p); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	return nil
}

// ServiceKey is the key of a service instance.
func ServiceKey(service, instance string) string { return "svc/" + service + "/" + instance }

// BlacklistKey is the key of an id on a blacklist.
func BlacklistKey(list, id string) string { return "bl/" + list + "/" + id }

// TaskKey is the key of a task.
func TaskKey(id string) string { return "task/" + id }

// KernelKey is the key of a kernel's lease records.
func KernelKey(id string) string { return "kernel/" + id }

// WaitKey is the key of a claim of kernel queued by session of node.
func WaitKey(kernel, node, session string) string {
	return "wait/" + kernel + "/" + node + "." + session
}

// WaitNode returns the node of a wait key's waiter ("" if the key is not
// one): the only node that may write it.
func WaitNode(key string) string {
	node, _, ok := strings.Cut(LastSegment(key), ".")
	if !ok || NamespaceOf(key) != NSWait {
		return ""
	}
	return node
}

// NodeKey is the key of a node's member entry: what it says about itself.
func NodeKey(id string) string { return "node/" + id }

// SuspectKey is the key of accuser's accusation of target.
func SuspectKey(target, accuser string) string { return "node/" + target + "/" + accuser }

// SplitNodeKey returns the node a node/ key is about and, for an
// accusation, its accuser ("" for a member entry). ok is false for a key
// of another namespace or shape.
func SplitNodeKey(key string) (node, accuser string, ok bool) {
	rest, found := strings.CutPrefix(key, "node/")
	if !found || rest == "" {
		return "", "", false
	}
	node, accuser, two := strings.Cut(rest, "/")
	if node == "" || (two && (accuser == "" || strings.Contains(accuser, "/"))) {
		return "", "", false
	}
	return node, accuser, true
}

// IsMemberKey reports whether key is a member entry node/<id>.
func IsMemberKey(key string) bool {
	_, accuser, ok := SplitNodeKey(key)
	return ok && accuser == ""
}

// LastSegment returns what follows a key's last '/'.
func LastSegment(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }

// MaxKVDepth bounds how many segments a kv path has.
const MaxKVDepth = 32

// KVKey is the store key of a kv path such as /config/app/env/name.
func KVKey(path string) string { return string(NSKV) + path }

// KVPath is the path of a kv store key: KVKey's inverse.
func KVPath(key string) string { return strings.TrimPrefix(key, string(NSKV)) }

// CheckKVPath reports why path cannot name a kv entry. A path starts with
// '/' and has 1 to MaxKVDepth segments separated by '/', none empty and
// each a valid name (CheckName).
func CheckKVPath(path string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("kv key %q must start with '/' (like /config/app/env/name)", path)
	}
	parts := strings.Split(path[1:], "/")
	if len(parts) > MaxKVDepth {
		return fmt.Errorf("kv key %q has %d segments, limit %d", path, len(parts), MaxKVDepth)
	}
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("kv key %q has an empty segment (a doubled or trailing '/')", path)
		}
		if err := CheckName("kv key segment", p); err != nil {
			return fmt.Errorf("kv key %q: %w", path, err)
		}
	}
	return nil
}

func checkKVKey(key string) error {
	if err := CheckKVPath(KVPath(key)); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}
