// Package lint holds tests that enforce fleetsim's architecture: which
// packages may import which, and which packages must stay pure (no wall
// clock, no global randomness, no operating system, no network). It has no
// non-test code.
package lint
