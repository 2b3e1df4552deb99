// Package sigmemo remembers signature checks that passed, by content, so
// that a fleet verifying the same signature over the same bytes with the
// same key pays for one verification. A check is a pure function of its
// inputs, so remembering it changes no result; a run can switch the memo
// off (a nil *Memo) to show that.
package sigmemo

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// Memo remembers signature checks that passed: the key's material, the
// signature and the signed bytes, hashed together. It is safe for
// concurrent use and holds at most its capacity of entries (forgetting
// them all when full: a miss only costs a verification).
type Memo struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]struct{}
}

// New returns a memo of at most capacity entries (at least 1).
func New(capacity int) *Memo {
	return &Memo{max: max(capacity, 1), entries: map[[sha256.Size]byte]struct{}{}}
}

// Verify reports whether check passes for the signature sig over msg with
// the key whose material is key, calling check only when that triple has
// not passed before. A nil Memo always calls check.
func (m *Memo) Verify(key, sig, msg []byte, check func() bool) bool {
	if m == nil {
		return check()
	}
	id := m.id(key, sig, msg)
	if m.seen(id) {
		return true
	}
	if !check() {
		return false
	}
	m.add(id)
	return true
}

// id names one check: SHA-256 over the three inputs, each prefixed by its
// length so that no two different triples collide by concatenation.
func (m *Memo) id(key, sig, msg []byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, b := range [][]byte{key, sig, msg} {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var id [sha256.Size]byte
	h.Sum(id[:0])
	return id
}

func (m *Memo) seen(id [sha256.Size]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.entries[id]
	return ok
}

func (m *Memo) add(id [sha256.Size]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) >= m.max {
		clear(m.entries)
	}
	m.entries[id] = struct{}{}
}

// Len is how many passed checks the memo holds.
func (m *Memo) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
