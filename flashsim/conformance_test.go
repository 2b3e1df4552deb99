package flashsim_test

import (
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/flashsim/flashtest"
)

// TestConformance runs the Flash conformance suite on every representation
// of Device (shared pages of several sizes, so that operations span many
// pages or pages exceed the copy-on-write stack buffer, and the plain
// private copy), each with and without the WriteOnce discipline.
func TestConformance(t *testing.T) {
	for _, r := range representations {
		for _, writeOnce := range []bool{false, true} {
			name, opts := r.name, r.opts
			if writeOnce {
				name += "-write-once"
				opts.WriteOnce = true
			}
			t.Run(name, func(t *testing.T) {
				flashtest.Run(t, func(g *flashsim.Geometry) flashsim.Flash { return flashsim.New(g, opts) })
			})
		}
	}
}
