package flashsim_test

import (
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/flashsim/flashtest"
)

// TestConformance runs the Flash conformance suite on every representation
// of Device: shared pages at the default, a small and a large page size (so
// that operations span many pages, or pages exceed the copy-on-write stack
// buffer), the plain private copy, and both with the WriteOnce discipline.
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts flashsim.Options
	}{
		{"shared", flashsim.Options{}},
		{"shared-512B-pages", flashsim.Options{PageSize: 512}},
		{"shared-64K-pages", flashsim.Options{PageSize: 64 << 10}}, // above the stack buffer of copy on write
		{"plain", flashsim.Options{NoSharing: true}},
		{"shared-write-once", flashsim.Options{WriteOnce: true}},
		{"plain-write-once", flashsim.Options{NoSharing: true, WriteOnce: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			flashtest.Run(t, func(g *flashsim.Geometry) flashsim.Flash { return flashsim.New(g, c.opts) })
		})
	}
}
