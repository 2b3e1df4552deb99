// Package bootsweep is the bootloader's power-cut sweep, after MCUboot's
// simulator (reference mcuboot.md §5.2, §5.4) and harsher: for a board and an
// upgrade strategy it counts the flash operations of a clean upgrade (and of
// a revert), then cuts the power before, after and during (a torn program or
// erase) each of them in turn on a clone of the prepared device, boots again
// without faults and checks the invariants: the operation completes, the
// slots hold exactly the expected images, the trailers are exactly as
// expected, an unconfirmed test image reverts at the next boot and a
// permanent one never does, and the flash never refused an operation. Seeded
// runs with several cuts in a row, of mixed kinds, anywhere in a permanent
// upgrade or in a test upgrade and the revert that follows it, complete the
// picture.
//
// It owns the fixtures (signed images sized to the board, the prepared
// device) and the checks; it knows nothing of the CLI or of how results are
// printed. Every run is a pure function of its seed: randomness comes from
// seeded sources only and results are reported in a fixed order.
package bootsweep
