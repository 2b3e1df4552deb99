package tufnano

import "github.com/fleetsim/fleetsim/internal/sigmemo"

// Memo remembers signature checks that passed, by content (the key's
// material, the signature and the signed bytes), so that a fleet of
// clients verifying the same metadata pays for one verification.
type Memo = sigmemo.Memo

// NewMemo returns a memo of at most capacity entries (at least 1).
func NewMemo(capacity int) *Memo { return sigmemo.New(capacity) }
