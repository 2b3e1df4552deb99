// Package flashsim models NOR flash as a microcontroller sees it: a geometry of
// (possibly mixed-size) sectors, program and erase rules that a real part
// enforces, partitions (flash areas), wear, and power cuts that leave the part
// exactly as real silicon would (torn programs and erases included).
//
// Sector contents are immutable, content-addressed pages shared by every
// device that holds the same bytes, so a fleet of a million devices stores
// each distinct sector once. A program or an erase makes a new page.
//
// flashsim imports nothing of fleetsim's and never reads the wall clock or
// global randomness: faults are chosen by a seeded source given to it.
package flashsim
