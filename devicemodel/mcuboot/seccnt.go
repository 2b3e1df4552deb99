package mcuboot

import "fmt"

// SecurityCounterStore is the device's hardware rollback-protection
// counter (MCUBOOT_HW_ROLLBACK_PROT): one non-volatile counter per image
// that only ever rises. The device provides it (an OTP or secure-element
// counter); MemSecurityCounters is an in-memory one for tests.
type SecurityCounterStore interface {
	// SecurityCounter returns the stored counter of image.
	SecurityCounter(image int) (uint32, error)
	// RaiseSecurityCounter stores v for image. v equal to the stored value
	// is a no-op; v below it fails with ErrCounterDecrease and changes
	// nothing.
	RaiseSecurityCounter(image int, v uint32) error
}

// MemSecurityCounters is an in-memory SecurityCounterStore.
type MemSecurityCounters struct {
	counters []uint32
}

// NewMemSecurityCounters returns a store whose counters (for images 0 and
// up) start at the given values; images beyond them start at 0.
func NewMemSecurityCounters(initial ...uint32) *MemSecurityCounters {
	return &MemSecurityCounters{counters: append([]uint32(nil), initial...)}
}

// SecurityCounter implements SecurityCounterStore.
func (m *MemSecurityCounters) SecurityCounter(image int) (uint32, error) {
	if image < 0 {
		return 0, fmt.Errorf("security counter of image %d: no such image", image)
	}
	if image >= len(m.counters) {
		return 0, nil
	}
	return m.counters[image], nil
}

// RaiseSecurityCounter implements SecurityCounterStore.
func (m *MemSecurityCounters) RaiseSecurityCounter(image int, v uint32) error {
	cur, err := m.SecurityCounter(image)
	if err != nil {
		return err
	}
	if v < cur {
		return fmt.Errorf("%w: image %d counter is %d, asked for %d", ErrCounterDecrease, image, cur, v)
	}
	for len(m.counters) <= image {
		m.counters = append(m.counters, 0)
	}
	m.counters[image] = v
	return nil
}
