package mcuboot

import "errors"

// Sentinel errors, tested with errors.Is. Flash errors (including
// flashsim.ErrPowerLoss) are never replaced by these: they are returned
// wrapped, so errors.Is(err, flashsim.ErrPowerLoss) tells a cut boot.
var (
	// ErrNoBootableImage: the primary slot holds no image that may run
	// (absent, invalid, or rolled back below the hardware security
	// counter) and no upgrade could provide one.
	ErrNoBootableImage = errors.New("no bootable image")
	// ErrBadImage is BOOT_EBADIMAGE: SetPending found a corrupt magic in
	// the secondary slot's trailer.
	ErrBadImage = errors.New("secondary slot trailer magic is corrupt")
	// ErrBadVector is BOOT_EBADVECT: Confirm found a corrupt magic in the
	// primary slot's trailer.
	ErrBadVector = errors.New("primary slot trailer magic is corrupt")
	// ErrUnknownStrategy: Config.Strategy names no registered strategy.
	ErrUnknownStrategy = errors.New("unknown upgrade strategy")
	// ErrIncompatibleSlots: the slot and scratch geometry does not allow
	// the configured strategy (sector boundaries, scratch too small, too
	// many sectors for the status area).
	ErrIncompatibleSlots = errors.New("slots are incompatible with the upgrade strategy")
	// ErrInconsistentStatus: the swap status area has a written entry after
	// an erased one, which no sequence of writes and power cuts produces.
	ErrInconsistentStatus = errors.New("inconsistent swap status")
	// ErrCounterDecrease: a security-counter store was asked to lower a
	// counter; hardware counters only rise.
	ErrCounterDecrease = errors.New("security counter may not decrease")
)
