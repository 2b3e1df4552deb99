// Package flashtest is the conformance suite for flashsim.Flash: every rule
// of a NOR part that fleetsim's bootloaders rely on (read-back, write-size
// alignment, write-once-until-erased at byte granularity, sector-bounded
// erases on mixed layouts, bounds, both erase values, and flash area offset
// translation), stated as subtests that any implementation must pass.
//
// It knows only the Flash interface and the Geometry and Area types of
// flashsim; fault injection (power cuts, wear, bit errors) is specific to
// flashsim.Device and tested there.
package flashtest
