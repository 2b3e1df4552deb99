// Package gatewaytest holds what the tests of the gateway and of the CLI
// share: a clock the test moves, seeded randomness for keys and
// certificates, and signed MCUboot images. It imports no gateway package,
// so the gateway's own in-package tests can use it too.
package gatewaytest

import (
	"crypto"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
)

// Clock is a gateway clock the test moves: renewals, expiries and rate
// limits happen when the test says so, not when the wall clock does.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Rand is a deterministic random source keyed by seed (ChaCha8): the same
// seed gives the same keys on every run.
func Rand(seed ...byte) io.Reader {
	var key [32]byte
	copy(key[:], seed)
	return rand.NewChaCha8(key)
}

// SignedImage builds an MCUboot image of a size-byte payload with build
// number build (the target version devices compare), signed by key.
func SignedImage(tb testing.TB, key crypto.Signer, build uint32, size int) []byte {
	tb.Helper()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*7 + int(build))
	}
	img, err := image.Sign(payload, image.SignOptions{
		Key: key, Version: image.Version{Major: 1, Build: build}, HeaderSize: 0x200, PadHeader: true, Align: 4,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return img
}
