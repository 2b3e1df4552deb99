// Package mcuboot is fleetsim's MCUboot-style bootloader: the image trailer
// (magic, image_ok, copy_done, swap_info, swap_size, swap status area), the
// swap-type decision table, the application's boot-control API (set pending,
// confirm), the boot flow that resumes an interrupted upgrade, validates and
// installs a new image, reverts an unconfirmed one and enforces downgrade and
// hardware-rollback protection, and the upgrade strategies (overwrite-only,
// swap-scratch, swap-move, swap-offset: one file each, registered in
// strategy.go, with what the swaps share in swap.go).
// Section numbers (§) in this package refer to the team's MCUboot reference
// notes (shared/reference/mcuboot.md): §2 trailer, §3 swap table, §4 algorithms.
//
// It reaches flash only through flashsim.Area and images only through its
// subpackage image. It knows nothing of boards, devices, the agent or the
// fleet, never reads the clock and never draws randomness: a boot is a pure
// function of the flash contents and the Config.
package mcuboot
