package rpc

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen bounds a name a client creates (see NameRule).
const MaxNameLen = 128

// NameRule is the rule, in words, for the names a client creates: service
// and instance names, blacklist list names, queue names, task ids, kernel
// ids and run-once slots. It keeps them safe in a shell, a URL path, a
// table column and a key.
const NameRule = "1 to 128 characters, each an ASCII letter, digit, '.', '_', ':', '@' or '-', the first a letter or digit"

// MaxBlacklistIDLen bounds a blacklist id (see BlacklistIDRule).
const MaxBlacklistIDLen = 200

// BlacklistIDRule is the rule, in words, for the ids put on a blacklist:
// looser than NameRule, for user ids, e-mail addresses, token ids and IP
// addresses as they come.
const BlacklistIDRule = "1 to 200 bytes of printable UTF-8 (letters, digits, punctuation, symbols) with no whitespace or '/'"

// CheckName reports, as a bad request naming NameRule, why s cannot be
// the name of a new what (service, instance, list, queue, task id,
// kernel id). The agent checks the names of new entries with it; names
// already held (written by an older agent, or replicated from a peer)
// are not held to it when read, changed or removed.
func CheckName(what, s string) error {
	if validName(s) {
		return nil
	}
	return BadRequest("%s %q is not a valid name: want %s", what, s, NameRule)
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && !strings.ContainsRune("._:@-", rune(c)) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// CheckBlacklistID reports, as a bad request naming BlacklistIDRule, why
// id cannot be put on a blacklist.
func CheckBlacklistID(id string) error {
	ok := len(id) > 0 && len(id) <= MaxBlacklistIDLen && utf8.ValidString(id)
	for _, r := range id {
		if !ok {
			break
		}
		ok = r != '/' && !unicode.IsSpace(r) && !unicode.IsControl(r) && unicode.IsPrint(r)
	}
	if ok {
		return nil
	}
	return BadRequest("blacklist id %q is not valid: want %s", id, BlacklistIDRule)
}

// CheckSegment says whether v can be one path segment of a route (a
// service, list, id...): not empty, without '/'.
func CheckSegment(name, v string) error {
	if v == "" {
		return BadRequest("%s must not be empty", name)
	}
	if strings.Contains(v, "/") {
		return BadRequest("%s %q must not contain '/'", name, v)
	}
	return nil
}
